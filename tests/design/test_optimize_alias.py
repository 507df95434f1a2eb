"""``qnjax.optimize`` is the function; the old package path ``qnjax.optimize.*`` is a deprecated
alias of ``qnjax.design.*`` giving the same objects (each case in a fresh interpreter, so
``sys.modules`` starts clean)."""

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning:__main__", "-c",
                          textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_qnjax_imports_no_jax():
    _run("""
        import sys, qnjax, qnjax.optimize
        assert not any(m == "jax" or m.startswith("jax.") for m in sys.modules), "jax imported"
        assert "qnjax.design" not in sys.modules
    """)


def test_optimize_is_the_function():
    _run("""
        import inspect, qnjax, qnjax.design
        assert qnjax.optimize is qnjax.design.optimize
        assert inspect.isfunction(qnjax.optimize)
        assert qnjax.sweep is qnjax.design.sweep
    """)


@pytest.mark.parametrize("code", [
    # from the old package
    """
    import warnings, qnjax
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        from qnjax.optimize import StepProblem, OptimizeResult
    assert any(issubclass(x.category, DeprecationWarning) for x in w)
    import qnjax.design
    assert StepProblem is qnjax.design.StepProblem and OptimizeResult is qnjax.design.OptimizeResult
    assert callable(qnjax.optimize) and qnjax.optimize is qnjax.design.optimize
    """,
    # a submodule by its old path: the same module object, no copy
    """
    import sys, warnings
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        import qnjax.optimize.search
    assert any(issubclass(x.category, DeprecationWarning) for x in w)
    import qnjax.design.search
    assert sys.modules["qnjax.optimize.search"] is qnjax.design.search
    assert qnjax.design.search.__spec__.name == "qnjax.design.search"
    assert qnjax.optimize is qnjax.design.optimize
    assert qnjax.optimize.search is qnjax.design.search
    import qnjax.optimize as opt
    assert opt is qnjax.design.optimize and opt.StepProblem is qnjax.design.StepProblem
    copies = [m for m in sys.modules.values()
              if getattr(m, "__file__", None) == qnjax.design.search.__file__]
    assert set(map(id, copies)) == {id(qnjax.design.search)}
    """,
    # attribute paths through the old package
    """
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    import qnjax.optimize.chain
    from qnjax.design.chain import Structure
    assert qnjax.optimize.chain.Structure is Structure
    from qnjax.optimize.chain import hardware
    from qnjax.optimize import chain
    import qnjax.design.chain
    assert hardware is qnjax.design.chain.hardware and chain is qnjax.design.chain
    assert qnjax.optimize is qnjax.design.optimize
    assert qnjax.optimize.NoFeasibleDesign is qnjax.design.NoFeasibleDesign
    assert qnjax.optimize.StepProblem is qnjax.design.StepProblem
    assert qnjax.optimize.search is qnjax.design.search
    import qnjax.optimize as opt
    assert opt is qnjax.design.optimize and opt.StepProblem is qnjax.design.StepProblem
    """,
    # the new package, without the old one
    """
    import qnjax.design, qnjax
    from qnjax.design import StepProblem, optimize
    assert optimize is qnjax.optimize
    """,
])
def test_old_paths_are_aliases(code):
    _run(code)
