"""`qnjax evaluate`: the issue's command line, JSON keys, table output and exit codes."""

import importlib
import json
import math

import numpy as np
import pytest
from support.cli import stderr_of
from typer.testing import CliRunner

from qnjax.cli import app

runner = CliRunner()
ev = importlib.import_module("qnjax.cli.evaluate")  # the module (the package exports the command)


def test_evaluate_json_issue_example():
    res = runner.invoke(app, ["evaluate", "--protocol", "swap,swap,swap", "--p-gen", "0.1", "--p-swap", "0.5",
                              "--w0", "0.98", "--t-coh", "400", "--cutoff", "17,32,56", "--t-trunc", "6000",
                              "--json"])
    assert res.exit_code == 0, res.output
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")][0]
    out = json.loads(line)
    for key in ("mean_time", "mean_werner", "mean_fidelity", "coverage", "key_fraction", "secret_key_rate"):
        assert key in out
    assert out["dtype"] == "float64"
    assert out["t_trunc"] == 6000
    assert out["secret_key_rate"] == pytest.approx(out["key_fraction"] / out["mean_time"])


def test_evaluate_table_and_distill(tmp_path):
    png = tmp_path / "pmf.png"
    res = runner.invoke(app, ["evaluate", "--protocol", "swap,distill", "--p-gen", "0.3", "--w0", "0.99",
                              "--t-coh", "1000", "--t-trunc", "1024", "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "secret key rate" in res.stdout
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("args,needle", [
    (["--protocol", "swap,purify"], "--protocol"),
    (["--cutoff", "1,2"], "--cutoff"),
    (["--cutoff=-1,2,3"], "cutoff"),
    (["--p-gen", "0"], "--p-gen"),
    (["--p-swap", "1.5"], "--p-swap"),
    (["--t-trunc", "many"], "--t-trunc"),
])
def test_evaluate_bad_input_exits_2(args, needle):
    res = runner.invoke(app, ["evaluate", "--t-trunc", "64", *args])
    assert res.exit_code == 2
    assert needle in res.output
    assert len([ln for ln in res.output.splitlines() if ln.strip()]) == 1


# ----------------------------------------------------------------------------- depth out of reach
_err = stderr_of


@pytest.mark.parametrize("protocol", ["swap,swap", "distill,swap"])
@pytest.mark.parametrize("cut", [None, 3.0, 0.0])
@pytest.mark.parametrize("p_gen,p_swap", [(0.3, 0.6), (0.9, 0.3)])
def test_delivery_time_is_at_least_the_geometric_bound(protocol, cut, p_gen, p_swap):
    """The refusal's premise, against the engine: T >= Geom(π_L) in distribution, so the
    survival function lies above (1 − π_L)^t and the mean above 1 / π_L."""
    from qnjax.exact import delivery

    levels = protocol.split(",")
    cuts = None if cut is None else [cut] * len(levels)
    r = delivery(protocol, p_gen=p_gen, p_swap=p_swap, w0=0.95, t_coh=50.0,
                 cutoff=None if cuts is None else np.array(cuts), t_trunc=1024, warn=False)
    assert np.isfinite(float(r.mean_time))  # the attempt decomposition holds at 1024 steps
    pi = math.exp(ev._log_pi(levels, p_gen, p_swap, cuts)[-1])
    survival = 1 - np.cumsum(np.asarray(r.pmf, float))
    assert np.all(survival >= (1 - pi) ** np.arange(survival.size) - 1e-9)
    assert float(r.mean_time) >= 1 / pi * (1 - 1e-9)


@pytest.mark.parametrize("args,needle", [
    (["--protocol", ",".join(["swap"] * 25)], "above 1.55e+09 steps"),
    (["--protocol", ",".join(["swap"] * 32), "--json"], "32 level(s)"),
    (["--protocol", ",".join(["swap"] * 17)], "beyond the 2097152 steps"),
    (["--protocol", ",".join(["swap"] * 25), "--max-memory", "64MiB"], "within --max-memory"),
    (["--protocol", ",".join(["swap"] * 20), "--p-swap", "0.2", "--cutoff", ",".join(["5"] * 20)], "p_swap 0.2"),
    (["--protocol", "swap,swap", "--p-gen", "1e-9"], "at least 4e+09 steps"),
    (["--protocol", "swap,swap", "--p-gen", "1e-13"], "--p-gen below 1e-12"),
])
def test_evaluate_refuses_an_unreachable_truncation_before_any_work(monkeypatch, args, needle):
    import qnjax.exact

    def boom(*a, **k):
        raise AssertionError("computed before the check")

    monkeypatch.setattr(qnjax.exact, "delivery", boom)
    res = runner.invoke(app, ["evaluate", *args])
    err = _err(res)
    assert res.exit_code == 2 and "Traceback" not in err, res.output
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qnjax: error: --t-trunc auto: the result would not be "
                                                   "trustworthy:"), err
    assert needle in lines[0], err


def test_depths_that_evaluate_today_are_not_refused(monkeypatch):
    """At the defaults (p_gen 0.1, p_swap 0.5, no cut-offs) 10 levels evaluate; the refusal
    starts at 17 (where even 2 x 2^21 steps leave a sub-protocol more than 1e-4 undelivered)."""
    cap = 2**21
    assert all(ev._out_of_reach(("swap",) * n, 0.1, 0.5, None, cap) is None for n in range(1, 17))
    assert all(ev._out_of_reach(("swap",) * n, 0.1, 0.5, None, cap) is not None for n in range(17, 33))
    assert ev._out_of_reach(("swap",) * 32, 1.0, 1.0, None, 1024) is None
    assert ev._out_of_reach(("distill",) * 32, 0.5, 0.01, [0.0] * 32, 1024) is None
    import qnjax.exact

    def stop(*a, **k):
        raise ValueError("engine reached")

    monkeypatch.setattr(qnjax.exact, "delivery", stop)
    for args in (["--protocol", ",".join(["swap"] * 10)],  # auto, within reach
                 ["--protocol", ",".join(["swap"] * 25), "--t-trunc", "64"]):  # explicit: not this check's
        res = runner.invoke(app, ["evaluate", *args])
        assert res.exit_code == 2 and "engine reached" in _err(res), res.output


@pytest.mark.parametrize("protocol,cut", [("swap,swap", None), ("distill,swap", "3,3")])
def test_refused_cases_also_fail_when_computed(monkeypatch, protocol, cut):
    """Just past the refusal's edge (a p_gen 5 % below it, a 1024-step cap from --max-memory) the
    computation it skips ends in the same 'not trustworthy' refusal."""
    levels = protocol.split(",")
    cuts = None if cut is None else [float(c) for c in cut.split(",")]
    lo, hi = -20.0, 0.0
    for _ in range(60):  # log p_gen at the edge: ratio (steps needed) / (2 max_t) = 1
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ev._out_of_reach(levels, math.exp(mid), 0.5, cuts, 1024) else (lo, mid)
    args = ["evaluate", "--protocol", protocol, "--p-gen", repr(0.95 * math.exp(hi)), "--json",
            "--max-memory", str(ev._bytes(levels, 1024))] + ([] if cut is None else ["--cutoff", cut])
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "--t-trunc auto: the result would not be trustworthy" in _err(res)
    monkeypatch.setattr(ev, "_out_of_reach", lambda *a, **k: None)
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "the result is not trustworthy" in _err(res), res.output
    assert "automatic truncation stopped at 1024 steps" in _err(res)
