"""The package layout rules of DESIGN.md, checked on the source: modules stay short, no module
imports another module's private names, the tests mirror the package."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "qnjax"
MAX_LINES = 420  # "no module over ~400 lines"
MODULES = sorted(PKG.rglob("*.py"))


def _resolve(path: Path, level: int, module: str | None) -> Path:
    base = path.parent
    for _ in range(level - 1):
        base = base.parent
    return base.joinpath(*module.split(".")) if module else base


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_short(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines; split it by idea"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_names_of_other_modules(path):
    """``from .x import _name`` reaches into another module; a private *module*
    (``from . import _formulas``) is fine, and so is a public name renamed locally."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        target = _resolve(path, node.level, node.module)
        for alias in node.names:
            name = alias.name
            if not name.startswith("_") or name.startswith("__"):
                continue
            if (target / f"{name}.py").exists() or (target / name / "__init__.py").exists():
                continue  # a private module of the package, not a private name
            bad.append(f"line {node.lineno}: {name} from {'.' * node.level}{node.module or ''}")
    assert not bad, f"{path.relative_to(ROOT)} imports private names: {bad}"


def test_tests_mirror_the_packages():
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    packages = {p.parent.name for p in PKG.glob("*/__init__.py") if not p.parent.name.startswith("_")}
    assert folders - {"support"} <= packages, f"test folders without a package: {folders - {'support'} - packages}"
    assert {"design", "network", "sizing", "cli", "montecarlo", "interop"} <= folders
