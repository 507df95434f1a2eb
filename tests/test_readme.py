"""The README's tour runs as written (the optimizer line is exercised by the optimizer tests)."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tour_runs():
    text = README.read_text()
    block = re.search(r"## A 60-second tour\s+```python\n(.*?)```", text, re.S).group(1)
    code = "\n".join(ln for ln in block.splitlines() if "q.optimize(" not in ln)
    ns: dict = {}
    exec(compile(code, "README tour", "exec"), ns)
    assert ns["rates"].shape == (1000,)
    assert np.all(np.isfinite(np.asarray(ns["g"])))
    assert abs(float(ns["r"].mean_time) - 455.858) < 1e-2
    assert ns["mc"].samples >= 200_000


def test_readme_has_exactly_two_setup_commands():
    text = README.read_text()
    quick = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    cmds = re.findall(r"```bash\n(.*?)```", quick, re.S)
    assert len(cmds) == 2
    assert cmds[1].strip().endswith('pip install -e ".[test]" && pytest')
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && pytest' in ci
