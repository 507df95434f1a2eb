"""Monte Carlo step-counter range and slot-cap censoring: times beyond the counters are computed
exactly or refused, never wrapped; cut-offs and caps beyond int32 are never wrapped either."""

from __future__ import annotations

import time

import jax
import numpy as np
import pytest

from qnjax.montecarlo import nested as nested_mod
from qnjax.montecarlo import simulate_nested, simulate_swap_asap
from qnjax.montecarlo._estimate import levels_estimate, swap_asap_censored_bound

Z = 4.0  # agreement within 4 standard errors


@pytest.fixture
def int32_steps():
    """JAX without x64: the engines count steps in int32 (restored afterwards)."""
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", True)


def test_cutoff0_mean_beyond_int32_is_exact():
    """Fuzzing issue: cut-off 0 at p_gen 2e-5 has mean 1/p_gen² = 2.5e9 steps > 2**31; int32
    counters wrapped it to ~5e8. With cut-off 0 both links must arrive in the same step:
    E[min] / P(same step) = (1 / (p (2 − p))) / (p / (2 − p)) = 1 / p² exactly."""
    p = 2e-5
    r = simulate_nested("swap", p_gen=p, cutoff=[0], samples=200, seed=5)
    assert int(r.undelivered) == 0 and int(r.samples) == 200
    assert abs(float(r.mean_time) - 1 / p**2) < Z * float(r.mean_time_stderr)
    assert np.all(np.asarray(r.times) > 0)
    assert levels_estimate(["swap"], p, 1.0, [0.0])[0] == pytest.approx(1 / p**2, rel=1e-9)


def test_mean_beyond_counter_range_is_refused_up_front():
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"mean delivery time is about 1e\+12 steps.*int64 step counters"):
        simulate_nested("swap", p_gen=1e-6, cutoff=[0], samples=1000)
    assert time.perf_counter() - t0 < 5


def test_int32_counters_refuse_or_detect_overflow(int32_steps, monkeypatch):
    import jax.numpy as jnp

    with pytest.raises(ValueError, match=r"int32 step counters.*jax_enable_x64"):
        simulate_nested("swap", p_gen=2e-4, cutoff=[0], samples=100, dtype=jnp.float32)
    # past the estimate (forced low here), a time beyond 2**30 raises instead of wrapping
    monkeypatch.setattr(nested_mod, "nested_estimate", lambda *a: (np.ones(1), np.ones(1), np.ones(1)))
    with pytest.raises(ValueError, match=r"exceeded 1\.07e\+09 steps.*int32 step counters"):
        simulate_nested("swap", p_gen=3e-5, cutoff=[0], samples=100, dtype=jnp.float32)


def test_int32_counters_small_p_gen_no_cutoff(int32_steps):
    """p_gen 1e-6: a chunk's running time would pass 2**31 at the default chunk size; the chunk
    shrinks instead, and the mean is E[max of two geometrics] = (3 − 2p) / (p (2 − p))."""
    import jax.numpy as jnp

    p = 1e-6
    r = simulate_nested("swap", p_gen=p, samples=2_000, seed=2, dtype=jnp.float32)
    exact = (3 - 2 * p) / (p * (2 - p))
    assert abs(float(r.mean_time) - exact) < Z * float(r.mean_time_stderr)


def test_swap_asap_cutoff_and_cap_beyond_int32_are_not_wrapped():
    kw = dict(p_gen=0.5, samples=300, seed=1, keep=300)
    a = simulate_swap_asap(3, **kw)
    b = simulate_swap_asap(3, cutoff=1e12, **kw)  # as int32 this wrapped to a negative cut-off
    np.testing.assert_array_equal(np.asarray(a.times), np.asarray(b.times))
    assert int(b.undelivered) == 0
    for cap in (2**31, 2**32 + 5):
        with pytest.raises(ValueError, match=r"max_time must be a number of slots in \[1, 2\*\*30\]"):
            simulate_swap_asap(3, max_time=cap, **kw)


def test_swap_asap_censored_bound_is_a_lower_bound():
    assert swap_asap_censored_bound([1e-6, 1e-6], 100_000) == pytest.approx(1 - (1 - np.exp(-0.1)) ** 2, rel=1e-5)
    p, cap, n = 0.05, 20, 4_000
    low = float(swap_asap_censored_bound([p, p], cap))
    r = simulate_swap_asap(3, p_gen=p, samples=n, seed=3, max_time=cap, keep=0)
    frac = int(r.undelivered) / n
    assert frac >= low - Z * np.sqrt(low * (1 - low) / n)


# ---------------------------------------------------------------- work / mean-time estimate

# (levels, p_gen, p_swap, cutoff) -> (mean time, node attempts) of levels_estimate before it became
# a wrapper of nested_estimate (its own scalar walk over the levels, distillation with p_op = 1)
OLD_ESTIMATES = [
    ((("swap",), 0.1, 1.0, None), (14.736842105263158, 3.0)),
    ((("swap", "swap", "swap"), 0.05, 0.8, [10, 20, 40]), (735.9928426769145, 903.6173185179784)),
    ((("swap", "swap"), 0.3, 0.5, [0, 3]), (190.0910305031699, 925.7746912959475)),
    ((("swap",) * 5, 0.01, 0.9, [np.inf, 100, np.inf, 1000, 5000]), (1963.613328016798, 276.2370310050812)),
    ((("swap", "swap"), 1.0, 0.7, None), (2.5117739403453694, 13.673469387755102)),
    ((("distill", "swap"), 0.2, 0.9, [5, 10]), (14.684380515022593, 14.056506202299524)),
    ((("swap", "distill", "swap"), 0.3, 1.0, [4, 8, 16]), (11.667365731426294, 23.333618548794362)),
]


@pytest.mark.parametrize("args,old", OLD_ESTIMATES)
def test_levels_estimate_unchanged_without_w0(args, old):
    """Swap-only protocols (and any protocol without ``w0``) keep the values of the scalar walk."""
    np.testing.assert_allclose(levels_estimate(*args), old, rtol=1e-12)
    if "distill" not in args[0]:  # w0 only matters to distillation
        np.testing.assert_allclose(levels_estimate(*args, w0=0.3), old, rtol=1e-12)


def test_levels_estimate_matches_the_simulators_arrays():
    """levels_estimate builds the same per-node arrays (cut-off of a node's level, post-order) as
    simulate_nested does before calling nested_estimate."""
    from qnjax.montecarlo import _params as P
    from qnjax.montecarlo._estimate import nested_estimate, node_levels
    from qnjax.protocol import levels_to_tree

    for levels, cut in [(("swap", "distill", "swap"), [3, 7, 20]),
                        (("distill", "swap", "swap", "distill"), [1, 4, np.inf, 9])]:
        tree = levels_to_tree(levels)
        _, _, flat = P.nested_arrays(tree, levels, node_levels(tree), p_gen=0.2, w0=0.7, lam0=None,
                                     p_swap=0.6, t_coh=np.inf, rates=None, cutoff=cut)
        m, w, _ = nested_estimate(tree, flat["log_q"], flat["p_swap"], flat["tau"], flat["s0"][..., 0])
        np.testing.assert_allclose(levels_estimate(levels, 0.2, 0.6, cut, w0=0.7), (m[0], w[0]), rtol=1e-12)


def test_distill_bounds_dominate_bbpssw_on_a_grid():
    """The corner rule of _distill_bounds / _swap_bound: over a grid of Werner inputs in
    [−1/3, u]² the BBPSSW success probability, output Werner parameter and the swap output
    stay below the bounds at u (attained at a corner), and the bounds increase with u."""
    from qnjax.montecarlo._estimate import _distill_bounds, _swap_bound

    F = np.linspace(0, 1, 201)  # fidelity form of the success probability (Bennett et al. 1996)
    p_equal = F**2 + 2 * F * (1 - F) / 3 + 5 * ((1 - F) / 3) ** 2
    bound = _distill_bounds((4 * F - 1) / 3)[0]
    assert np.all(bound >= p_equal - 1e-12)
    np.testing.assert_allclose(bound[F >= 0.5], p_equal[F >= 0.5], rtol=1e-12)  # increasing there
    prev = (-1.0, -1.0, -1.0)
    for u in np.linspace(-1 / 3, 1, 41):
        g = np.linspace(-1 / 3, u, 61)
        wa, wb = np.meshgrid(g, g)
        p = (1 + wa * wb) / 2
        w_out = (wa + wb + 4 * wa * wb) / (3 * (1 + wa * wb))
        # waiting moves a stored w towards 0: inputs anywhere in [−1/3, max(u, 0)]
        h = np.linspace(-1 / 3, max(u, 0.0), 61)
        ha, hb = np.meshgrid(h, h)
        pb, wbnd = _distill_bounds(u)
        sb = _swap_bound(u, u)
        assert p.max() <= pb + 1e-12 and w_out.max() <= wbnd + 1e-12 and (wa * wb).max() <= sb + 1e-12
        hp, hw = (1 + ha * hb) / 2, (ha + hb + 4 * ha * hb) / (3 * (1 + ha * hb))
        assert hp.max() == pytest.approx(pb, abs=1e-12) and hw.max() == pytest.approx(wbnd, abs=1e-12)
        assert (ha * hb).max() == pytest.approx(sb, abs=1e-12)
        assert pb >= prev[0] and wbnd >= prev[1] and sb >= prev[2]
        prev = (pb, wbnd, sb)
    assert _distill_bounds(1.0) == (1.0, 1.0)


@pytest.mark.parametrize("levels,kw,exact", [
    # one level over fresh links (geometric inputs): the estimate is the model's exact mean
    (("distill",), dict(p_gen=0.3, w0=0.8, cutoff=[2]), True),
    (("distill",), dict(p_gen=0.3, w0=0.8, t_coh=5.0, cutoff=[4]), False),  # decay: success lower
    # above: distillation over distillation (output above w0), one compiled structure for both
    (("distill", "distill"), dict(p_gen=0.4, w0=0.5, t_coh=10.0, cutoff=[3, 6]), False),
    (("distill", "distill"), dict(p_gen=0.3, w0=0.8, t_coh=5.0, cutoff=[2, 8]), False),
])
def test_distill_estimate_between_old_and_monte_carlo(levels, kw, exact):
    """With w0 the estimate counts BBPSSW's success probability (bounded above), so it is at
    least the old p_op = 1 estimate and stays below the Monte Carlo mean delivery time."""
    old = levels_estimate(levels, kw["p_gen"], 1.0, kw["cutoff"])
    new = levels_estimate(levels, kw["p_gen"], 1.0, kw["cutoff"], w0=kw["w0"])
    assert new[0] > old[0] and new[1] > old[1]
    r = simulate_nested(",".join(levels), samples=3000, seed=7, keep=0, **kw)
    mt, se = float(r.mean_time), float(r.mean_time_stderr)
    assert int(r.undelivered) == 0 and new[0] <= mt + Z * se
    if exact:
        assert abs(new[0] - mt) <= Z * se
