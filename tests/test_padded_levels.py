"""The padded level program (one compiled program for every level protocol up to a depth)
against the exact engine's own per-protocol program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qnjax.exact import delivery
from qnjax._engine import padded_levels as PL
from support.traces import count_traces

FIELDS = ("mean_time", "mean_fidelity", "key_fraction_smooth", "coverage", "attempt_coverage",
          "success_probability")
PROTOCOLS = [("swap",), ("distill", "swap"), ("swap", "distill", "swap"),
             ("distill", "swap", "distill", "swap")]


def _designs(rng, B, L):
    cut = rng.uniform(0.5, 40, (B, L))
    cut[0] = np.inf  # no cut-off
    cut[1] = np.round(cut[1])  # integer cut-offs
    return dict(p_gen=rng.uniform(0.2, 0.6, B), w0=rng.uniform(0.85, 1, B), p_swap=rng.uniform(0.5, 1, B),
                t_coh=rng.uniform(20, 400, B)), cut


def test_every_protocol_matches_the_engine_with_one_program():
    rng = np.random.default_rng(7)
    B, T = 6, 128
    with count_traces("_run") as traces:
        _every_protocol(rng, B, T)
    # four protocols, one truncation, one batch: one program, traced once (depth 4, t_trunc 128,
    # batch 6 is this test's own shape)
    assert traces[0] == 1


def _every_protocol(rng, B, T):
    for levels in PROTOCOLS:
        kw, cut = _designs(rng, B, len(levels))
        ref = delivery(levels, cutoff=cut, t_trunc=T, warn=False, **kw)
        got = PL.delivery_padded(levels, 4, cutoff=cut, t_trunc=T, **kw)
        np.testing.assert_array_equal(np.asarray(got.status), np.asarray(ref.status))
        # the internal length is T + 4 + 1 instead of T + L + 1: the figures differ by rounding
        # and by what the sub-protocols' missing mass (1 - attempt_coverage) carries, at most
        # (internal length) x that mass relative to a mean of at least one step
        tol = 1e-11 + 2 * (T + 6) * (1 - np.asarray(ref.attempt_coverage))
        for k in FIELDS + ("secret_key_rate",):
            a, b = np.asarray(getattr(got, k)), np.asarray(getattr(ref, k))
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            ok = ~np.isnan(b)
            assert np.all(np.abs(a - b)[ok] <= (tol * np.abs(b))[ok] + 1e-15), (levels, k, a, b, tol)
        assert np.any(tol < 1e-9)


def test_truncated_designs_are_flagged_as_by_the_engine():
    """A truncation too short for the attempt decomposition gives NaN and the TRUNCATED bit in
    both programs (never a number)."""
    kw = dict(p_gen=np.array([0.01, 0.5]), w0=np.array([0.99, 0.99]), p_swap=np.array([0.5, 0.5]),
              t_coh=np.array([100.0, 100.0]))
    cut = np.full((2, 2), 3.0)
    ref = delivery(("swap", "swap"), cutoff=cut, t_trunc=64, warn=False, **kw)
    got = PL.delivery_padded(("swap", "swap"), 3, cutoff=cut, t_trunc=64, **kw)
    np.testing.assert_array_equal(np.asarray(got.status), np.asarray(ref.status))
    assert np.isnan(np.asarray(got.mean_time)[0]) and np.asarray(got.status)[0] != 0


def test_float32():
    rng = np.random.default_rng(3)
    kw, cut = _designs(rng, 4, 2)
    kw32 = {k: jnp.asarray(v, jnp.float32) for k, v in kw.items()}
    got = PL.delivery_padded(("swap", "swap"), 2, cutoff=jnp.asarray(cut, jnp.float32), t_trunc=128, **kw32)
    ref = delivery(("swap", "swap"), cutoff=cut, t_trunc=128, warn=False, **kw)
    assert got.mean_time.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got.mean_time), np.asarray(ref.mean_time), rtol=1e-4)


def test_codes_and_depth():
    assert PL.op_codes("swap,distill", 4).tolist() == [PL.SKIP, PL.SKIP, PL.SWAP, PL.DISTILL]
    with pytest.raises(ValueError, match="does not fit the padded depth 2"):
        PL.op_codes(("swap",) * 3, 2)
    with pytest.raises(ValueError):
        PL.op_codes(("swap", "teleport"), 4)


def test_memory_is_estimated_before_the_call():
    kw = dict(p_gen=np.array([0.5]), w0=np.array([0.9]), p_swap=np.array([0.9]), t_coh=np.array([50.0]))
    with pytest.raises(ValueError, match="padded level program at t_trunc=4096 for 1 design.*needs about"):
        PL.delivery_padded(("swap",), 2, cutoff=np.ones((1, 1)), t_trunc=4096, max_memory=1e3, **kw)


def test_figures_are_the_program_figures_in_one_array():
    """``figures_padded`` (what the step optimizer calls) returns the scalar fields of
    ``delivery_padded`` (status exactly, as int32; the coverage summed without the pmf, so to
    rounding), for every protocol, for designs the truncation does not cover and for
    truncated designs."""
    rng = np.random.default_rng(11)
    low = []
    for levels in PROTOCOLS[:3]:
        kw, cut = _designs(rng, 6, len(levels))
        kw["p_gen"][2] = 0.005  # truncated at t_trunc 64: NaN figures and a status bit
        kw["p_gen"][3] = 0.08  # the root is not covered at t_trunc 64
        full = PL.delivery_padded(levels, 4, cutoff=cut, t_trunc=64, **kw)
        got = PL.figures_padded(levels, 4, cutoff=cut, t_trunc=64, **kw)
        assert set(got) == set(PL.FIGURES)
        np.testing.assert_array_equal(got["status"], np.asarray(full.status))
        assert got["status"].dtype == np.int32 and got["status"][2] != 0
        np.testing.assert_allclose(got["coverage"], np.asarray(full.coverage), rtol=0, atol=1e-14)
        for k in set(PL.FIGURES) - {"status", "coverage"}:
            np.testing.assert_allclose(got[k], np.asarray(getattr(full, k)), rtol=1e-13, atol=0, err_msg=k)
        low.append(np.nanmin(got["coverage"]))
    assert min(low) < 0.999  # the sum was checked where it is not 1


def test_figures_refuse_memory_before_the_call():
    kw = dict(p_gen=np.array([0.5]), w0=np.array([0.9]), p_swap=np.array([0.9]), t_coh=np.array([50.0]))
    for _ in range(2):  # a refusal is not remembered as a shape that fits
        with pytest.raises(ValueError, match="padded level program at t_trunc=4096 for 1 design.*needs about"):
            PL.figures_padded(("swap",), 2, cutoff=np.ones((1, 1)), t_trunc=4096, max_memory=1e3, **kw)


def test_root_coverage_flags_a_negative_density():
    """The figures-only root cannot check its pmf (it never forms it); it flags a successful
    attempt density or renewal density below ``−slack`` instead, and sums the pmf exactly."""
    from qnjax._engine.kernels import root_coverage

    plan = PL.padded_plan(2, True, 8, figures_only=True)
    rng = np.random.default_rng(5)
    s = rng.uniform(0, 0.1, (3, plan.n_int))
    g = rng.uniform(0, 1, (3, plan.n_int))
    s[1, 3] = -1e-6  # below float64's slack (1e-8)
    g[2, 7] = -1e-6
    cov, low = root_coverage(plan, jnp.asarray(s), jnp.asarray(g))
    n = plan.n_out
    pmf = np.array([np.convolve(s[b, :n], g[b, :n])[:n] for b in range(3)])
    np.testing.assert_allclose(np.asarray(cov), pmf.sum(-1), rtol=1e-13)
    assert np.asarray(low).tolist() == [False, True, True]
    g[2, 7] = -1e-9  # within the slack: rounding, not a failure
    s[1, 3] = -1e-9
    assert not np.any(np.asarray(root_coverage(plan, jnp.asarray(s), jnp.asarray(g))[1]))
    g[2, n] = -1.0  # beyond t_trunc: not part of the coverage
    assert not np.any(np.asarray(root_coverage(plan, jnp.asarray(s), jnp.asarray(g))[1]))


def test_figures_float32_status_is_the_full_programs():
    """In float32 (where rounding is largest) the figures-only check flags exactly the designs
    the full program flags: none of these, whose figures are physical."""
    rng = np.random.default_rng(13)
    for levels in PROTOCOLS[:3]:
        kw, cut = _designs(rng, 8, len(levels))
        kw32 = {k: v.astype(np.float32) for k, v in kw.items()}
        full = PL.delivery_padded(levels, 4, cutoff=cut.astype(np.float32), t_trunc=128, **kw32)
        got = PL.figures_padded(levels, 4, cutoff=cut.astype(np.float32), t_trunc=128, **kw32)
        np.testing.assert_array_equal(got["status"], np.asarray(full.status))
        assert got["coverage"].dtype == np.float32
        np.testing.assert_allclose(got["mean_time"], np.asarray(full.mean_time), rtol=1e-5)
