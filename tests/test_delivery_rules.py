"""The rules that keep the exact engine's numbers honest: a result is physical or NaN with
a ``status`` bit and a reason; invalid parameters under ``jit`` give NaN (or raise with
``checks=True``); tiny probabilities stay finite; memory is estimated before use."""

import math
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qnjax as q
from qnjax import _truncation as TR

from support import delivery_reference as ref

FLOAT_FIELDS = ("pmf", "state_t", "coverage", "mean_time", "mean_werner", "mean_state", "mean_fidelity",
                "key_fraction", "key_fraction_smooth", "secret_key_rate", "secret_key_rate_smooth",
                "success_probability")


def all_nan(r, i=None):
    for k in FLOAT_FIELDS:
        x = np.asarray(getattr(r, k))
        x = x if i is None else x[i]
        assert np.all(np.isnan(x)), (k, x)


# ----------------------------------------------------------------- issue reproducers


def test_short_truncation_gives_nan_and_a_reason_not_garbage():
    """Was mean_werner 262, mean_fidelity 197, key_fraction 1856 (issue 10)."""
    with pytest.warns(UserWarning, match="attempt_coverage"):
        r = q.delivery("swap,swap", p_gen=1e-4, p_swap=1, w0=0.9, t_coh=100, cutoff=[5, 5], t_trunc=256)
    assert int(r.status) == TR.TRUNCATED
    all_nan(r)
    assert 0 <= float(r.attempt_coverage) < 1 - TR.ATTEMPT_DEFICIT_MAX
    assert "t_trunc = 256" in r.reason and "raise t_trunc" in r.reason


def test_tiny_p_gen_mean_time_is_never_below_its_bound():
    """Was mean_time 8.84 for p_gen 1e-6 (it must be about 1e6)."""
    r = q.delivery("swap,distill", p_gen=1e-6, w0=0.9, t_coh=100, cutoff=[5, 5], t_trunc=1024, warn=False)
    assert int(r.status) == TR.TRUNCATED
    all_nan(r)
    r = q.delivery("swap,distill", p_gen=1e-6, w0=0.9, max_t_trunc=2**14, warn=False)  # t_trunc="auto"
    assert int(r.status) & TR.TRUNCATED and np.isnan(float(r.mean_time))


def test_default_truncation_is_auto_and_exact():
    p = 1e-3
    r = q.delivery("swap", p_gen=p, w0=0.9)
    assert int(r.status) == 0 and r.reason is None
    assert float(r.mean_time) == pytest.approx((3 - 2 * p) / (p * (2 - p)), rel=1e-9)
    assert float(r.coverage) >= 1 - 1e-9 and r.pmf.shape[-1] > 4096
    with pytest.raises(ValueError, match="t_trunc='auto'.*integer t_trunc"):
        jax.jit(lambda x: q.delivery("swap", p_gen=x, w0=0.9).mean_time)(0.5)


def test_well_covered_results_unchanged_and_flag_free():
    r = q.delivery("swap", p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=400.0, cutoff=[17], t_trunc=4000)
    assert int(r.status) == 0 and float(r.attempt_coverage) == pytest.approx(1.0, abs=1e-12)
    assert float(r.mean_time) == pytest.approx(31.251331, abs=5e-7)


def test_batch_flags_only_the_designs_that_need_it():
    pg = jnp.array([0.3, 1e-5, 0.5])
    kw = dict(w0=0.95, t_coh=50.0, cutoff=jnp.array([4.0, 8.0]), t_trunc=512, warn=False)
    r = q.delivery("swap,swap", p_gen=pg, **kw)
    np.testing.assert_array_equal(np.asarray(r.status), [0, TR.TRUNCATED, 0])
    all_nan(r, 1)
    for i in (0, 2):
        alone = q.delivery("swap,swap", p_gen=pg[i], **kw)
        assert float(r.mean_time[i]) == float(alone.mean_time)
    assert "1 of 3 design(s)" in r.reason
    # gradients of the good designs stay finite with a flagged design in the batch
    g = jax.grad(lambda x: jnp.nansum(q.delivery("swap,swap", p_gen=x, **kw).secret_key_rate_smooth))(pg)
    assert np.all(np.isfinite(np.asarray(g)))


# ----------------------------------------------------------------- root renewal without wrap-around


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("ps", [1e-2, 1e-12])
def test_root_pmf_is_exact_when_little_is_covered(dtype, ps):
    """The root's renewal used to wrap the uncovered mass around (coverage 0.47 instead of
    4e-10 at p_swap = 1e-12; inf pmfs in float32); now it matches the causal reference."""
    n, p, w0 = 120, 0.45, 0.9
    la = ref.leaf(p, np.array([1.0, w0, w0, w0]) @ ref.H / 4, n)
    l1, s1, f1 = ref.node(la, la, np.inf, np.zeros(4), "swap", ps)
    r = q.delivery("swap", p_gen=dtype(p), p_swap=dtype(ps), w0=dtype(w0), t_trunc=n, warn=False)
    assert int(r.status) == 0
    tol = dict(rtol=1e-9, atol=0) if dtype == jnp.float64 else dict(rtol=2e-4, atol=0)
    # pmf(0) is 0 exactly; an FFT convolution leaves rounding of order eps times the pmf's
    # scale (which is proportional to p_swap) there, of either sign (a negative one clips to 0)
    eps = 1e-7 if dtype == jnp.float32 else 1e-15
    np.testing.assert_allclose(np.asarray(r.pmf, np.float64), l1[:, 0], **{**tol, "atol": eps * ps})
    assert float(r.coverage) == pytest.approx(l1[:, 0].sum(), rel=tol["rtol"])
    et = (3 - 2 * p) / (p * (2 - p) * ps)
    assert float(r.mean_time) == pytest.approx(et, rel=1e-9 if dtype == jnp.float64 else 1e-5)
    g = jax.grad(lambda x: q.delivery("swap", p_gen=dtype(p), p_swap=x, w0=dtype(w0), t_trunc=n,
                                      warn=False).secret_key_rate)(dtype(ps))
    assert np.isfinite(float(g)) and float(g) > 0


@pytest.mark.parametrize("p", [1e-12, 1e-100, 1e-300])
def test_tiny_p_gen_is_finite_and_flagged(p):
    r = q.delivery("swap", p_gen=p, w0=0.9, t_trunc=1024, warn=False)
    assert int(r.status) == TR.TRUNCATED
    assert float(r.attempt_coverage) == pytest.approx(-math.expm1(1023 * math.log1p(-p)), rel=1e-9)
    g = jax.grad(lambda x: q.delivery("swap", p_gen=x, w0=0.9, t_trunc=1024, warn=False).attempt_coverage)(p)
    assert np.isfinite(float(g))


def test_float32_underflowing_parameters_are_refused():
    w32 = jnp.float32(0.9)
    with pytest.raises(ValueError, match="p_gen must be at least 1.18e-38 in float32"):
        q.delivery("swap", p_gen=1e-50, w0=w32, t_trunc=64)
    with pytest.raises(ValueError, match="t_coh must be at least"):
        q.delivery("swap", p_gen=0.5, w0=w32, t_coh=1e-300, t_trunc=64)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_deep_protocol_is_physical(dtype):
    """25 swap levels: exact in float64; float32 rounding grows about twofold per level, and
    where it leaves the tolerances the design is flagged (NaN), never reported."""
    r = q.delivery(("swap",) * 25, p_gen=dtype(0.5), w0=dtype(0.999), t_trunc=256, warn=False)
    if dtype == jnp.float32 and int(r.status):
        all_nan(r)
        assert "float64" in r.reason
        r = q.delivery(("swap",) * 8, p_gen=dtype(0.5), w0=dtype(0.999), t_trunc=256)
    assert int(r.status) == 0
    pmf = np.asarray(r.pmf)
    assert np.all(pmf >= 0) and 0 <= float(r.coverage) <= 1
    assert float(r.mean_time) >= 2 and -1 / 3 <= float(r.mean_werner) <= 1
    assert 0 <= float(r.key_fraction) <= 1


# ----------------------------------------------------------------- invalid parameters under jit


BAD_UNDER_JIT = [
    ("w0", jnp.nan), ("t_coh", 0.0), ("t_coh", jnp.nan), ("t_coh", -5.0), ("p_gen", jnp.nan),
    ("p_gen", 0.0), ("p_gen", 1.5), ("p_swap", jnp.nan), ("w0", 1.5), ("cutoff", jnp.nan),
]


@pytest.mark.parametrize("name,bad", BAD_UNDER_JIT)
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_invalid_parameters_under_jit_give_nan_never_a_key(name, bad, dtype):
    base = dict(p_gen=0.5, p_swap=0.9, w0=0.95, t_coh=40.0, cutoff=6.0)

    def run(x):
        kw = {k: dtype(v) for k, v in base.items()}
        kw[name] = x
        cut = jnp.stack([kw.pop("cutoff")] * 2)
        return q.delivery("swap,distill", cutoff=cut, t_trunc=128, **kw)

    r = jax.jit(run)(dtype(bad))
    assert int(r.status) == TR.INVALID
    all_nan(r)
    assert "checks=True" in r.reason
    assert int(jax.jit(run)(dtype(base[name])).status) == 0


def test_invalid_bell_state_under_jit_and_vmap():
    lam = jnp.array([[0.9, 0.05, 0.03, 0.02], [jnp.nan, 0.1, 0.1, 0.1], [0.8, 0.3, 0.0, 0.0]])
    r = jax.jit(jax.vmap(lambda l: q.delivery("swap", p_gen=0.5, lam0=l, t_trunc=64)))(lam)
    np.testing.assert_array_equal(np.asarray(r.status), [0, TR.INVALID, TR.INVALID])
    assert np.isfinite(float(r.key_fraction[0])) and np.all(np.isnan(np.asarray(r.key_fraction[1:])))


@pytest.mark.parametrize("name,bad,host", [
    ("p_gen", 1.5, "p_gen must lie in (0.0, 1.0]"), ("t_coh", 0.0, "t_coh must lie in (0.0, inf]"),
    ("w0", jnp.nan, "w0 must lie in [-0.3333333333333333, 1.0]"),
])
def test_checks_raise_under_jit_with_the_host_message(name, bad, host):
    base = dict(p_gen=0.5, w0=0.95, t_coh=40.0)
    with pytest.raises(ValueError) as e:
        q.delivery("swap", t_trunc=64, **{**base, name: bad})
    assert str(e.value).startswith(host)

    def run(x):
        return q.delivery("swap", t_trunc=64, checks=True, **{**base, name: x}).mean_time

    with pytest.raises(Exception, match=host.replace("(", r"\(").replace("[", r"\[").replace("]", r"\]")):
        jax.block_until_ready(jax.jit(run)(jnp.float64(bad)))
    assert np.isfinite(float(jax.jit(run)(jnp.float64(base[name]))))


def test_checks_raise_for_a_nan_bell_state_under_jit():
    f = jax.jit(lambda l: q.delivery("swap", p_gen=0.5, lam0=l, t_trunc=64, checks=True).mean_time)
    with pytest.raises(Exception, match="lam0 must not contain NaN"):
        jax.block_until_ready(f(jnp.array([jnp.nan, 0.1, 0.1, 0.1])))


def test_infinite_rates_are_refused_on_the_host():
    with pytest.raises(ValueError, match=r"rates must lie in \[0.0, inf\)"):
        q.delivery("swap", p_gen=0.5, w0=0.9, rates=np.inf, t_trunc=64)


# ----------------------------------------------------------------- resources


def test_memory_is_estimated_before_allocating():
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"t_trunc=1000000000 .* needs about .* GiB; the limit is .*max_memory"):
        q.delivery("swap,swap", p_gen=0.1, w0=0.9, t_trunc=10**9)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(ValueError, match="lower t_trunc"):
        q.delivery("swap", p_gen=jnp.full(1000, 0.5), w0=0.9, t_trunc=4096, max_memory=2**20)


def test_auto_grows_only_as_far_as_memory_allows():
    need = TR.delivery_bytes(16 * 2 * TR.fast_len(2 * (2048 + 3)) * 6, 1, 1, 2048, 1, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = q.delivery("swap,swap", p_gen=1e-3, w0=0.9, max_memory=need + 1)
    assert r.pmf.shape[-1] <= 2048
    assert int(r.status) == TR.TRUNCATED and np.isnan(float(r.mean_time))


def test_auto_truncation_grows_geometrically_when_the_first_length_says_nothing():
    """At 1024 steps a link with p_gen = 0.005 is still undelivered with probability 0.6 %, so
    the attempt decomposition is truncated and the figures are NaN. The search must then grow
    the length (here to 8192), not extrapolate from an unknown deficit (it jumped to 2**21
    steps: 256 times the work for the same numbers)."""
    kw = dict(p_gen=0.005, w0=0.99, t_coh=2000.0, cutoff=[800])
    r = q.delivery("swap", **kw)
    assert r.pmf.shape[-1] <= 16384
    assert 1 - float(r.coverage) <= 1e-9
    ref = q.delivery("swap", t_trunc=2**15, **kw)
    assert float(r.mean_time) == pytest.approx(float(ref.mean_time), rel=1e-9)
    assert float(r.secret_key_rate) == pytest.approx(float(ref.secret_key_rate), rel=1e-9)
