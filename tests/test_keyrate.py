"""Key fractions, QBERs and repeaterless bounds (qnjax.keyrate)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import brentq

import qnjax as q
from support.transforms_check import check_transforms

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)

bell_st = st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4).filter(
    lambda v: sum(v) > 1e-3).map(lambda v: np.asarray(v) / np.sum(v))


def depolarized_with_qber(e):
    """Werner state whose Z and X QBERs both equal e: λ = (1 − 3e/2, e/2, e/2, e/2)."""
    return np.array([1 - 1.5 * e, e / 2, e / 2, e / 2])


# ------------------------------------------------------------------ known values

def test_bb84_threshold_qber():
    f = lambda e: float(q.key_fraction_bb84_smooth(depolarized_with_qber(e)))
    e0 = brentq(f, 0.05, 0.2, xtol=1e-12)
    assert abs(e0 - 0.1100279) < 1e-7
    assert float(q.key_fraction_bb84(depolarized_with_qber(0.12))) == 0.0
    assert f(0.12) < 0


def test_six_state_threshold_qber():
    f = lambda e: float(q.key_fraction_six_state_smooth(depolarized_with_qber(e)))
    e0 = brentq(f, 0.05, 0.2, xtol=1e-12)
    assert abs(e0 - 0.1261931) < 1e-7
    assert float(q.key_fraction_six_state(depolarized_with_qber(0.13))) == 0.0


def test_qber_and_entropies():
    lam = np.array([0.7, 0.1, 0.15, 0.05])
    ex, ez = q.qber(lam)
    np.testing.assert_allclose([ex, ez], [0.2, 0.25])
    np.testing.assert_allclose(q.binary_entropy(np.array([0.0, 0.5, 1.0])), [0, 1, 0])
    np.testing.assert_allclose(q.binary_entropy(0.11), -0.11 * np.log2(0.11)
                               - 0.89 * np.log2(0.89))
    np.testing.assert_allclose(q.shannon_entropy(np.full(4, 0.25)), 2.0)
    np.testing.assert_allclose(q.key_fraction_bb84(np.array([1.0, 0, 0, 0])), 1.0)
    np.testing.assert_allclose(q.key_fraction_six_state(np.array([1.0, 0, 0, 0])), 1.0)
    # BB84 fraction 1 − h(e_X) − h(e_Z) with log base 2
    np.testing.assert_allclose(q.key_fraction_bb84_smooth(lam),
                               1 - q.binary_entropy(0.2) - q.binary_entropy(0.25))


def test_plob_and_tgw_values():
    assert np.isposinf(q.plob_bound(1.0)) and np.isposinf(q.tgw_bound(1.0))
    np.testing.assert_allclose(q.plob_bound(0.5), 1.0)
    np.testing.assert_allclose(q.tgw_bound(0.5), np.log2(3))
    np.testing.assert_allclose(q.plob_bound(0.0), 0.0)
    # 0 km: eta = 1 -> +inf
    assert np.isposinf(q.plob_bound(q.fiber_transmissivity(0.0)))


def test_plob_decreases_with_distance_and_tgw_dominates():
    L = np.array([0.0, 1.0, 10.0, 50.0, 100.0, 300.0])
    eta = q.fiber_transmissivity(L)
    plob, tgw = np.asarray(q.plob_bound(eta)), np.asarray(q.tgw_bound(eta))
    assert np.isposinf(plob[0])
    assert np.all(np.diff(plob) < 0)
    assert np.all(tgw[1:] >= plob[1:])
    # PLOB ≈ 1.44 η for small η
    np.testing.assert_allclose(plob[-1], eta[-1] / np.log(2), rtol=1e-5)


# -------------------------------------------------------------------- properties

@SETTINGS
@given(bell_st)
def test_fraction_properties(lam):
    bb, six = float(q.key_fraction_bb84_smooth(lam)), float(q.key_fraction_six_state_smooth(lam))
    assert six >= bb - 1e-12  # subadditivity: H(λ) <= h(e_X) + h(e_Z)
    assert bb <= 1 + 1e-12 and six <= 1 + 1e-12
    assert float(q.key_fraction_bb84(lam)) == pytest.approx(max(bb, 0.0), abs=1e-15)
    assert float(q.key_fraction_six_state(lam)) == pytest.approx(max(six, 0.0), abs=1e-15)


@SETTINGS
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_bounds_monotone_in_eta(a, b):
    lo, hi = sorted((a, b))
    if hi < 1:
        assert float(q.plob_bound(lo)) <= float(q.plob_bound(hi)) + 1e-15
        assert float(q.tgw_bound(hi)) >= float(q.plob_bound(hi)) - 1e-15


# -------------------------------------------------------------------- gradients

def test_finite_gradients_at_boundaries():
    g = jax.jit(jax.vmap(jax.grad(lambda p: q.binary_entropy(p))))(jnp.array([0.0, 1.0]))
    assert np.all(np.isfinite(g))
    perfect = jnp.array([1.0, 0.0, 0.0, 0.0])
    for fn in (q.key_fraction_bb84, q.key_fraction_bb84_smooth, q.key_fraction_six_state,
               q.key_fraction_six_state_smooth, q.shannon_entropy):
        assert np.all(np.isfinite(jax.jit(jax.grad(fn))(perfect))), fn
    np.testing.assert_allclose(jax.jit(jax.grad(q.plob_bound))(0.0), 1 / np.log(2))
    np.testing.assert_allclose(jax.jit(jax.grad(q.tgw_bound))(0.0), 2 / np.log(2))
    # rate against distance is differentiable end to end
    g = jax.jit(jax.grad(lambda L: q.plob_bound(q.fiber_transmissivity(L))))(50.0)
    assert np.isfinite(g) and g < 0


# ----------------------------------------------------------- jit / vmap / grad

LAM3 = np.array([[0.7, 0.1, 0.1, 0.1], [0.9, 0.02, 0.03, 0.05], [0.4, 0.3, 0.2, 0.1]])
P3 = np.array([0.1, 0.5, 0.8])
ETA3 = np.array([0.0, 0.3, 0.9])
KEY_FNS = [
    ("binary_entropy", q.binary_entropy, (P3,)),
    ("shannon_entropy", q.shannon_entropy, (LAM3,)),
    ("qber", q.qber, (LAM3,)),
    ("key_fraction_bb84", q.key_fraction_bb84, (LAM3,)),
    ("key_fraction_bb84_smooth", q.key_fraction_bb84_smooth, (LAM3,)),
    ("key_fraction_six_state", q.key_fraction_six_state, (LAM3,)),
    ("key_fraction_six_state_smooth", q.key_fraction_six_state_smooth, (LAM3,)),
    ("plob_bound", q.plob_bound, (ETA3,)),
    ("tgw_bound", q.tgw_bound, (ETA3,)),
]


@pytest.mark.parametrize("name,fn,args", KEY_FNS, ids=[f[0] for f in KEY_FNS])
def test_keyrate_transform_and_dtypes(name, fn, args):
    check_transforms(fn, args)


# ----------------------------------------------------------------- NaN never becomes a key


NAN_STATES = [[np.nan, 0.1, 0.1, 0.1], [0.7, 0.1, 0.1, np.nan], [np.nan] * 4]


@pytest.mark.parametrize("lam", NAN_STATES)
@pytest.mark.parametrize("fn", [q.key_fraction_bb84, q.key_fraction_bb84_smooth, q.key_fraction_six_state,
                                q.key_fraction_six_state_smooth, lambda x: q.qber(x)[0],
                                lambda x: q.qber(x)[1]])
def test_nan_state_gives_nan_figures(fn, lam):
    """key_fraction_bb84([nan, .1, .1, .1]) used to be 0 (and 1 inside jit for NaN inputs)."""
    assert np.isnan(float(fn(np.array(lam))))
    assert np.isnan(float(jax.jit(fn)(jnp.asarray(lam))))
    assert np.isnan(float(fn(jnp.asarray(lam, jnp.float32))))


def test_nan_entropy_under_jit_is_nan_and_good_rows_unaffected():
    assert np.isnan(float(jax.jit(q.binary_entropy)(jnp.nan)))
    lam = jnp.array([[0.9, 0.05, 0.03, 0.02], [jnp.nan, 0.1, 0.1, 0.1]])
    kf = np.asarray(q.key_fraction_bb84(lam))
    assert np.isfinite(kf[0]) and np.isnan(kf[1])
    assert kf[0] == pytest.approx(float(q.key_fraction_bb84(lam[0])), rel=1e-15)
