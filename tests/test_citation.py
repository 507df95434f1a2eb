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
