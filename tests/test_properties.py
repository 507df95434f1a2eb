"""Property suite over the whole valid parameter box of the engines (issue 10).

For every valid input a result is physical (probabilities and coverages in [0, 1],
fidelity in [0, 1], Werner parameter in [-1/3, 1], key fraction in [0, 1], mean time at
least 1 / p_gen, pmf >= 0) or it is NaN in every field with a ``status`` bit saying why
(never an invalid-parameter bit for valid input), and gradients are finite, including at
the boundaries (p = 1, cut-off 0, t_coh = inf) and at tiny probabilities (1e-12).

CI-sized: fixed shapes (one compilation per test), ``derandomize=True``, a few dozen
examples each; the file runs in well under two minutes on two cores.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

import qnjax as q
from qnjax import _truncation as TR
from qnjax.protocol import Distill, Link, Swap

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
N = 256

FLOAT_FIELDS = ("pmf", "state_t", "coverage", "mean_time", "mean_werner", "mean_state", "mean_fidelity",
                "key_fraction", "key_fraction_smooth", "secret_key_rate", "secret_key_rate_smooth",
                "success_probability")


def log_uniform(lo, hi):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10.0 ** e)


prob = st.one_of(st.just(1.0), st.just(1e-12), log_uniform(1e-12, 1.0))
werner = st.one_of(st.just(1.0), st.just(-1 / 3), st.floats(-1 / 3, 1.0))
t_coh = st.one_of(st.just(math.inf), log_uniform(1e-3, 1e6))
cut = st.one_of(st.just(math.inf), st.just(0.0), st.floats(0.0, 300.0))


def bell_state():
    return st.tuples(*[st.floats(0.0, 1.0)] * 4).filter(lambda v: sum(v) > 1e-3).map(
        lambda v: tuple(x / sum(v) for x in v))


def assert_physical_or_flagged(r, p_gen_min, dtype=np.float64):
    status = int(r.status)
    assert status in (0, TR.TRUNCATED, TR.UNPHYSICAL if dtype == np.float32 else 0), status
    assert 0 <= float(r.attempt_coverage) <= 1
    if status:
        for k in FLOAT_FIELDS:
            assert np.all(np.isnan(np.asarray(getattr(r, k)))), k
        assert r.reason
        return
    slack = 1e-9 if dtype == np.float64 else 1e-5
    for k in FLOAT_FIELDS:
        assert np.all(np.isfinite(np.asarray(getattr(r, k)))), k
    pmf = np.asarray(r.pmf)
    assert np.all(pmf >= 0)
    assert 0 <= float(r.coverage) <= 1 and 0 < float(r.success_probability) <= 1
    assert 0 <= float(r.mean_fidelity) <= 1 and -1 / 3 <= float(r.mean_werner) <= 1
    lam = np.asarray(r.mean_state)
    assert np.all(lam >= 0) and np.all(lam <= 1) and abs(lam.sum() - 1) < 1e-4
    assert 0 <= float(r.key_fraction) <= 1 and float(r.key_fraction_smooth) <= 1
    assert float(r.mean_time) >= (1 - slack) / p_gen_min
    assert 0 <= float(r.secret_key_rate) <= p_gen_min * (1 + slack)


# ----------------------------------------------------------------- delivery, levels, Werner


def _levels(p_gen, p_swap, w0, t_coh, c1, c2):
    return q.delivery("swap,distill", p_gen=p_gen, p_swap=p_swap, w0=w0, t_coh=t_coh,
                      cutoff=jnp.stack([c1, c2]), t_trunc=N, warn=False)


_levels_jit = jax.jit(_levels)


def _skr(args):
    r = _levels(*args)
    return jnp.where(r.status == 0, r.secret_key_rate_smooth, 0.0)


_levels_grad = jax.jit(jax.grad(_skr))


@settings(max_examples=30, **SETTINGS)
@given(prob, prob, werner, t_coh, cut, cut)
def test_delivery_levels_physical_or_flagged(p_gen, p_swap, w0, tc, c1, c2):
    args = tuple(jnp.float64(x) for x in (p_gen, p_swap, w0, tc, c1, c2))
    assert_physical_or_flagged(_levels_jit(*args), p_gen)
    # the host path (validation, warnings) agrees with the jitted one
    if p_gen > 0.05:
        r = q.delivery("swap,distill", p_gen=p_gen, p_swap=p_swap, w0=w0, t_coh=tc, cutoff=[c1, c2],
                       t_trunc=N, warn=False)
        assert int(r.status) == int(_levels_jit(*args).status)


@settings(max_examples=20, **SETTINGS)
@given(prob, prob, werner, t_coh, cut, cut)
def test_delivery_levels_gradients_finite(p_gen, p_swap, w0, tc, c1, c2):
    args = tuple(jnp.float64(x) for x in (p_gen, p_swap, w0, tc, c1, c2))
    g = _levels_grad(args)
    assert all(np.isfinite(float(x)) for x in g), g


@settings(max_examples=20, **SETTINGS)
@given(prob, prob, werner, t_coh, cut, cut)
def test_delivery_float32_physical_or_flagged(p_gen, p_swap, w0, tc, c1, c2):
    args = tuple(jnp.float32(x) for x in (p_gen, p_swap, w0, tc, c1, c2))
    assert_physical_or_flagged(_levels_jit(*args), float(args[0]), np.float32)


# ----------------------------------------------------------------- delivery, tree, Bell-diagonal

TREE = Swap(Swap(Link(0), Link(1)), Distill(Link(2)))


@jax.jit
def _tree(p_gen, p_swap, lam0, t_coh, cutoff):
    return q.delivery(TREE, p_gen=p_gen, p_swap=p_swap, lam0=lam0, t_coh=t_coh, cutoff=cutoff,
                      bsm_noise=q.bsm_noise_walsh(0.01, 0.005), t_trunc=N, warn=False)


@settings(max_examples=20, **SETTINGS)
@given(st.tuples(prob, prob, prob), st.tuples(prob, prob, prob), bell_state(), t_coh, st.tuples(cut, cut, cut))
def test_delivery_tree_bell_physical_or_flagged(p_gen, p_swap, lam0, tc, cutoff):
    lam = jnp.tile(jnp.asarray(lam0), (3, 1))  # one state per segment
    r = _tree(jnp.asarray(p_gen), jnp.asarray(p_swap), lam, jnp.float64(tc), jnp.asarray(cutoff))
    assert_physical_or_flagged(r, min(p_gen))


# ----------------------------------------------------------------- Monte Carlo engines

mc_prob = st.one_of(st.just(1.0), st.just(1e-6), log_uniform(1e-6, 1.0))
mc_cut = st.one_of(st.none(), st.integers(0, 50))
seed = st.one_of(st.just(0), st.just(2**64 - 1), st.integers(0, 2**64 - 1))


def assert_mc_physical(r, p_gen_min):
    n = int(r.samples)
    assert n + int(r.undelivered) == int(r.trajectories)
    if n == 0:
        return
    for k in ("mean_time", "mean_werner", "mean_fidelity", "key_fraction", "secret_key_rate"):
        assert np.isfinite(float(getattr(r, k))), k
    assert float(r.mean_time) >= 1
    assert 0 <= float(r.mean_fidelity) <= 1 + 1e-12 and -1 / 3 - 1e-12 <= float(r.mean_werner) <= 1 + 1e-12
    assert 0 <= float(r.key_fraction) <= 1
    t = np.asarray(r.times)
    assert np.all(t[t >= 0] >= 1)


@settings(max_examples=10, **SETTINGS)
@given(mc_prob, mc_prob, werner, t_coh, mc_cut, seed)
def test_simulate_nested_physical(p_gen, p_swap, w0, tc, c, s):
    r = q.simulate_nested("swap", p_gen=p_gen, p_swap=p_swap, w0=w0, t_coh=tc,
                          cutoff=None if c is None else [c], samples=64, seed=s, max_time=20_000,
                          keep=64, chunk_size=256, dtype=jnp.float64)
    assert_mc_physical(r, p_gen)


@settings(max_examples=10, **SETTINGS)
@given(mc_prob, mc_prob, werner, t_coh, mc_cut, seed)
def test_simulate_swap_asap_physical(p_gen, p_swap, w0, tc, c, s):
    r = q.simulate_swap_asap(3, p_gen=p_gen, p_swap=p_swap, w0=w0, t_coh=tc, cutoff=c, samples=64, seed=s,
                             max_time=2_000, keep=64, lanes=64, slots_per_chunk=64, dtype=jnp.float64)
    assert_mc_physical(r, p_gen)
