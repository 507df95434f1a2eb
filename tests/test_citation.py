"""CITATION.cff stays in step with the package metadata."""

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_citation_version_and_license_match_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cff = (ROOT / "CITATION.cff").read_text()
    fields = dict(re.findall(r"^(cff-version|version|license|title): *\"?([^\"\n]+)\"?$", cff, re.M))
    assert fields["cff-version"] == "1.2.0"
    assert fields["version"] == meta["version"]
    assert fields["license"] == meta["license"]
    assert fields["title"].startswith(meta["name"])


def test_cli_version():
    import subprocess
    import sys

    import qnjax

    out = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['qnjax', '--version']; "
                          "from qnjax.cli import main\ntry:\n    main()\nexcept SystemExit as e:\n    assert not e.code\n"
                          "print('jax' in sys.modules)"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.split("\n")
    assert out[0].startswith(f"qnjax {qnjax.__version__} (jax ")
    assert out[1] == "False"  # --version does not import JAX
