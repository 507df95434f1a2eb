"""``qnjax simulate`` limits: one named error line (exit 2) for runs whose figures would be
censored by the slot cap, overflow the step counters or lack a standard error."""

from __future__ import annotations

import time

import jax
import pytest


@pytest.fixture
def cli():
    from typer.testing import CliRunner

    from qnjax.cli import app

    yield app, CliRunner()
    jax.config.update("jax_enable_x64", True)  # --float32 flips the global flag


def _refused(cli, args, *words, after_progress=False):
    app, runner = cli
    t0 = time.perf_counter()
    res = runner.invoke(app, ["simulate", *args])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    if after_progress:  # progress lines on stderr, then the error line
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("qnjax: error:"), res.output
    for w in words:
        assert w in lines[0], lines[0]
    return time.perf_counter() - t0


def test_limits_match_the_library():
    from qnjax.cli import simulate as sim
    from qnjax.montecarlo._common import MAX_SAMPLES
    from qnjax.montecarlo.swap_asap import MAX_NODES

    assert sim.NODES_MAX == MAX_NODES and sim.SAMPLES_MAX == MAX_SAMPLES


@pytest.mark.parametrize("args,words", [
    # a standard error needs two samples (was blamed on --p-gen / --t-coh / --cutoff)
    (["--p-gen", "0.1", "--protocol", "swap", "--samples", "1"], ["--samples", "at least 2", "standard error"]),
    # mean 1/p_gen² = 1e12 steps: beyond the step counters (was a negative or wrapped mean)
    (["--p-gen", "1e-6", "--protocol", "swap", "--cutoff", "0", "--samples", "1000"],
     ["mean delivery time", "step counters"]),
    # most trajectories would hit the 100,000-slot cap (was a biased mean after 47 s)
    (["--p-gen", "1e-6", "--policy", "swap-asap", "--nodes", "3", "--samples", "1000"], ["slot cap", "biasing"]),
    (["--p-gen", "2e-5", "--policy", "swap-asap", "--nodes", "3", "--samples", "500", "--json"], ["slot cap"]),
    # the library stops at 2**14 nodes (the CLI used to accept 65536, then hang)
    (["--p-gen", "0.5", "--policy", "swap-asap", "--nodes", "16385", "--samples", "2"], ["--nodes", "16384"]),
])
def test_refused_up_front(cli, args, words):
    assert _refused(cli, args, *words) < 10


def test_censored_run_is_refused_not_averaged(cli, monkeypatch):
    """A run in which trajectories hit the cap is refused after running (here a cap of 3 slots)."""
    import qnjax.montecarlo as mc

    real = mc.simulate_swap_asap
    monkeypatch.setattr(mc, "simulate_swap_asap", lambda *a, **k: real(*a, max_time=3, **k))
    _refused(cli, ["--p-gen", "0.3", "--policy", "swap-asap", "--nodes", "5", "--samples", "200"],
             "of 200 trajectories hit the slot cap", "biased", after_progress=True)


def test_work_estimate_counts_distillation_failures(cli, monkeypatch):
    """The work estimate takes --w0 into account: BBPSSW on w0 = 0 links fails at least 4 times
    in 9, so 2e8 samples of distill,distill,distill (about 3e9 node updates if distillation always
    succeeded) need over 1e10 and are refused; at --w0 1 they pass the check (and reach the
    simulator, stubbed here)."""
    import qnjax.montecarlo as mc

    def stub(*a, **k):
        raise ValueError("simulator reached")

    monkeypatch.setattr(mc, "simulate_nested", stub)
    args = ["--p-gen", "0.5", "--protocol", "distill,distill,distill", "--samples", "200000000"]
    _refused(cli, [*args, "--w0", "0"], "node updates", "limit is 1e+10")
    _refused(cli, [*args, "--w0", "1"], "simulator reached")
