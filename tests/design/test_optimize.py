"""The optimizer finds the exhaustive-grid optimum (1 and 2 levels), keeps identical hardware
uniformly spaced, and the CLI works. Small problems, so the whole file runs in about a minute."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

import qnjax
from qnjax import delivery
from qnjax.design import StepProblem, optimize, scenario_from_dict
from qnjax.design.step import MIN_STEPS


def grid_best(levels, kw, T, g):
    L = len(levels)
    grid = np.array(np.meshgrid(*[np.arange(g)] * L, indexing="ij")).reshape(L, -1).T.astype(float)
    grid = np.concatenate([grid, np.full((1, L), np.inf)])
    r = delivery(levels, cutoff=jnp.asarray(grid), t_trunc=T, warn=False, **kw)
    skr = np.asarray(r.secret_key_rate)
    return skr.max(), grid[int(np.argmax(skr))]


def test_one_level_matches_grid():
    kw = dict(p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=40.0)
    best, arg = grid_best(("swap",), kw, 512, 512)
    res = qnjax.optimize(StepProblem(("swap",), t_trunc=512, **kw), seed=0)
    assert float(res.secret_key_rate) >= best * (1 - 1e-9)
    assert list(np.asarray(res.design["cutoff"])) == [int(arg[0])]
    # the clipped rate is zero without a cut-off here: the surrogate still finds the optimum
    assert float(res.baselines["no_cutoff_secret_key_rate"]) == 0.0
    assert res.history.shape[0] >= MIN_STEPS and np.isfinite(res.history[-1])


def test_two_levels_match_grid():
    kw = dict(p_gen=0.4, p_swap=0.9, w0=0.97, t_coh=80.0)
    best, arg = grid_best(("swap", "swap"), kw, 256, 64)
    res = optimize(StepProblem("swap,swap", t_trunc=256, **kw), seed=1)
    assert float(res.secret_key_rate) >= best * (1 - 1e-9)
    assert res.to_json()["cutoff"] == [int(a) for a in arg]


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_jitted_gradient_modes_reach_the_grid_optimum(mode):
    """The jitted forward- / reverse-mode Adam steps (``optimize_step(mode=...)``) find the
    same integer optimum as the grid and as the default forward differences."""
    from qnjax.design.step import optimize_step

    kw = dict(p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=40.0)
    best, arg = grid_best(("swap",), kw, 256, 256)
    prob = StepProblem(("swap",), t_trunc=256, **kw)
    res = optimize_step(prob, mode=mode, n_starts=4, n_steps=20, progress=False)[0]
    assert float(res.secret_key_rate) >= best * (1 - 1e-9)
    assert res.to_json()["cutoff"] == [int(arg[0])] == optimize(prob, seed=0).to_json()["cutoff"]
    assert res.history.shape == (20,) and np.all(np.isfinite(res.history))
    with pytest.raises(ValueError, match="mode must be one of fd, fwd, rev; got 'adam'"):
        optimize_step(prob, mode="adam")


def test_batch_of_problems_is_deterministic():
    a = dict(p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=40.0)
    b = dict(p_gen=0.2, p_swap=0.5, w0=0.97, t_coh=30.0)
    probs = [StepProblem(("swap",), t_trunc=512, **a), StepProblem(("swap",), t_trunc=512, **b)]
    r1 = optimize(probs, seed=0)
    r2 = optimize(probs, seed=0)
    assert len(r1) == 2
    for x, y in zip(r1, r2):
        assert x.to_json()["cutoff"] == y.to_json()["cutoff"]
        assert float(x.secret_key_rate) == float(y.secret_key_rate)
    best_b, _ = grid_best(("swap",), b, 512, 512)
    assert float(r1[1].secret_key_rate) >= best_b * (1 - 1e-9)


def test_each_problem_stops_on_its_own():
    """fd_adam stops every problem by its own criterion and no longer evaluates a stopped one,
    so a problem's search is the same alone as in a batch."""
    from qnjax.design.step import fd_adam

    fixed = {"p_gen": np.array([0.1, 0.05]), "w0": np.array([0.98, 0.97]),
             "p_swap": np.array([0.5, 0.5]), "t_coh": np.array([40.0, 20.0])}  # stop after 8, 12 steps
    S = 4
    u0 = np.log(np.array([[3.0], [9.0], [30.0], [100.0]] * 2))
    both = fd_adam(("swap",), {k: np.repeat(v, S) for k, v in fixed.items()}, u0, 512, 0.15, 60,
                   np.float64, group=S)
    for q in range(2):
        rows = slice(q * S, (q + 1) * S)
        alone = fd_adam(("swap",), {k: np.repeat(v[q:q + 1], S) for k, v in fixed.items()}, u0[rows],
                        512, 0.15, 60, np.float64, group=S)
        np.testing.assert_allclose(both[0][rows], alone[0], rtol=1e-12)
        np.testing.assert_allclose(both[1][rows], alone[1], rtol=1e-12)


def test_step_objective_is_one_formula_on_host_and_device():
    """The NumPy objective the search ranks by is the jitted one of the fwd / rev modes."""
    import jax

    from qnjax.design.fd_adam import objective_np, step_objective

    f = np.array([-0.2, 0.0, 5e-4, 1e-3, 0.3])
    t = np.array([3.0, 10.0, 40.0, 7.0, 1e4])
    c = np.array([1.0, 0.99, 1 - 1e-12, 0.5, 1.0])
    dev = jax.jit(step_objective)(f, t, c)
    host = objective_np({"key_fraction_smooth": f, "mean_time": t, "coverage": c})
    np.testing.assert_allclose(host, np.asarray(dev), rtol=1e-12)
    with pytest.raises(ValueError, match="do not split"):
        from qnjax.design.fd_adam import fd_adam

        fd_adam(("swap",), {}, np.zeros((5, 1)), 256, 0.1, 5, np.float64, group=2)


def test_working_truncation_is_covered_and_reproduces_the_full_length():
    """``t_trunc`` is an upper bound: fast links are searched at a shorter working truncation,
    the winner is covered there to 1e-9, and its figures at the problem's ``t_trunc`` agree to
    1e-9 (the reported "no cut-off" is ``t_trunc``). Then no integer design one step away is
    better (the integer hill climb ends at a local optimum)."""
    kw = dict(p_gen=0.4, p_swap=0.9, w0=0.97, t_coh=80.0)
    T = 4096
    res = optimize(StepProblem("swap,swap", t_trunc=T, **kw), seed=0)
    tw = dict(res.candidates[0])["working_t_trunc"]
    assert tw < T and float(res.coverage) >= 1 - 1e-9
    cut = np.asarray(res.design["cutoff"], float)
    assert np.all((cut < tw) | (cut == T))
    ref = delivery(chain=res.chain, t_trunc=T, warn=False)
    for k in ("secret_key_rate", "mean_time", "mean_fidelity"):
        assert float(getattr(ref, k)) == pytest.approx(float(getattr(res, k)), rel=1e-9)
    moves = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b], float)
    near = np.clip(cut + moves, 0, T)
    r = delivery("swap,swap", cutoff=jnp.asarray(near), t_trunc=T, warn=False, **kw)
    assert np.max(np.asarray(r.secret_key_rate)) <= float(res.secret_key_rate) * (1 + 1e-9)


def test_mean_time_scale_bounds_one_level():
    """For one swap or distill level without cut-offs the scale is an upper bound on the
    exact mean delivery time (later of two geometric links, over the success probability)."""
    from qnjax.design.step import mean_time_scale

    for p in (0.02, 0.3, 0.9):
        for level, ps, w0 in (("swap", 0.5, 0.9), ("swap", 1.0, 0.9), ("distill", 1.0, -1 / 3), ("distill", 1.0, 0.6)):
            r = delivery((level,), p_gen=p, p_swap=ps, w0=w0, t_trunc=4096, warn=False)
            assert float(r.mean_time) <= mean_time_scale((level,), p, ps) * (1 + 1e-9), (level, p, ps, w0)


def test_working_truncation_grows_until_the_winner_is_covered():
    """Cut-offs of zero make delivery slow: the first working truncation (256) does not cover
    the winner, so the search runs again at four times the length (here the problem's 1024)."""
    kw = dict(p_gen=0.5, p_swap=0.9, w0=0.85, t_coh=60.0)
    res = optimize(StepProblem("distill,swap", t_trunc=1024, **kw), seed=0)
    assert dict(res.candidates[0])["working_t_trunc"] == 1024
    ref = delivery(chain=res.chain, t_trunc=1024, warn=False)
    assert float(ref.secret_key_rate) == pytest.approx(float(res.secret_key_rate), rel=1e-9)
    assert float(ref.coverage) == pytest.approx(float(res.coverage), rel=1e-12)


def test_identical_hardware_gives_uniform_spacing():
    scen = scenario_from_dict({
        "distance_km": 60.0,
        "heralding": {"scheme": "direct", "efficiency": 0.8, "source_fidelity": 0.99},
        "memory": {"t_coh_s": 0.02},
        "repeater": {"gate_depolarizing": 0.01},
        "search": {"segments": [2], "starts": 4, "steps": 60, "seed": 3},
    })
    res = optimize(scen)
    L = np.asarray(res.design["lengths_km"])
    assert L.sum() == pytest.approx(60.0)
    np.testing.assert_allclose(L, 30.0, rtol=0.01)
    # the starts that were free to move the repeaters also end at uniform spacing
    np.testing.assert_allclose(np.asarray(res.baselines["free_spacing_lengths_km"]), 30.0, rtol=0.01)
    j = res.to_json()
    assert j["segments"] == 2 and len(j["cutoff"]) == 1 and j["skr_bits_per_s"] > 0
    assert j["gain_over_uniform_spacing"] >= 1.0 and j["gain_over_no_cutoff"] >= 1.0
    assert j["cutoff_s"][0] == pytest.approx(j["cutoff"][0] * j["clock_s"])


def _app():
    try:
        from qnjax.cli import app
    except ImportError as exc:  # another command's module not there yet
        pytest.skip(f"CLI not importable: {exc}")
    return app


def test_cli_step_json():
    from typer.testing import CliRunner

    out = CliRunner().invoke(_app(), ["optimize", "--protocol", "swap", "--p-gen", "0.1", "--p-swap", "0.5",
                                      "--w0", "0.98", "--t-coh", "40", "--t-trunc", "512", "--json"])
    assert out.exit_code == 0, out.output
    j = json.loads(out.stdout.strip().splitlines()[-1])
    for k in ("protocol", "cutoff", "secret_key_rate", "mean_time", "mean_werner", "wall_s"):
        assert k in j
    assert j["protocol"] == "swap" and isinstance(j["cutoff"][0], int)


@pytest.mark.parametrize("args, msg", [
    (["optimize", "--protocol", "swap,teleport", "--p-gen", "0.1"], "protocol"),
    (["optimize", "--protocol", "swap", "--p-gen", "1.5"], "--p-gen"),
    (["optimize", "--protocol", "swap"], "--p-gen"),
    (["optimize", "examples/does_not_exist.toml"], "does not exist"),
    (["sweep", "examples/metro_link.toml", "--distances", "10:5:1"], "--distances"),
    (["sweep", "examples/backbone_300_600km.toml", "--distances", "50:100:50"], "min_segment_km"),
])
def test_cli_errors_exit_2(args, msg):
    from typer.testing import CliRunner

    out = CliRunner().invoke(_app(), args)
    assert out.exit_code == 2
    assert msg in out.output and len(out.output.strip().splitlines()) == 1


def test_cli_bad_scenario_file(tmp_path):
    from typer.testing import CliRunner

    p = tmp_path / "s.toml"
    p.write_text("distance = 300\n[memory]\nt_coh_s = 1.0\n")
    out = CliRunner().invoke(_app(), ["optimize", str(p), "--json"])
    assert out.exit_code == 2 and "missing unit" in out.output


def test_integer_climb_reuses_known_designs(monkeypatch):
    """The hill climb sends only designs it has not seen to the engine: started with every
    neighbour already evaluated it ends without an engine call, at the same design and figures
    as a climb that evaluates them again."""
    from qnjax.design import step as ST

    levels, T = ("swap", "swap"), 256
    kw = dict(p_gen=0.4, p_swap=0.9, w0=0.97, t_coh=80.0)
    fixed = {k: np.array([v]) for k, v in kw.items()}
    box = np.array(np.meshgrid(np.arange(0, 7), np.arange(2, 9), indexing="ij")).reshape(2, -1).T.astype(float)
    r = ST.evaluate_levels(levels, {k: np.repeat(v, len(box)) for k, v in fixed.items()}, box, T)
    skr, j = ST._scores(r)
    i = int(np.lexsort((-j, -skr))[0])
    assert 0 < box[i, 0] < 6 and 2 < box[i, 1] < 8  # an interior optimum of the box: [2, 4]
    seen = [{tuple(c): (skr[a], j[a], {k: v[a] for k, v in r.items()}) for a, c in enumerate(box)}]
    start = lambda: [[skr[i], j[i], box[i], {k: v[i] for k, v in r.items()}, {}]]
    calls = []
    real = ST.evaluate_levels
    monkeypatch.setattr(ST, "evaluate_levels", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    known, fresh = start(), start()
    ST._polish(levels, fixed, known, T, seen)
    assert calls == []
    ST._polish(levels, fixed, fresh, T)
    assert calls == [8]
    assert list(known[0][2]) == list(fresh[0][2]) == [2.0, 4.0]
    for k in ("secret_key_rate", "mean_time", "coverage"):
        assert known[0][3][k] == fresh[0][3][k]
