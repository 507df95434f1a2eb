"""Exact delivery engine against closed forms, an independent O(N^2) reference, and
finite differences; transforms, batching, truncation and input errors."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qnjax as q
from qnjax.protocol import Distill, Link, Swap

from support import delivery_reference as ref
from support.traces import count_traces

from qnjax._engine import prepare as engine_prepare
f32 = jnp.float32


def two_seg_closed(p, ps, w0, tc, tau=None):
    """Closed forms for 2 segments (issue #3 ground truth)."""
    qq, lam = 1 - p, math.exp(-1 / tc)
    if tau is None:
        return (3 - 2 * p) / (p * (2 - p) * ps), w0**2 * p * (1 + qq * lam) / ((2 - p) * (1 - qq * lam))
    P = (p + 2 * qq * (1 - qq**tau)) / (2 - p)
    x = qq * lam
    et = (1 / (1 - qq**2) + 2 * qq * (1 - qq**tau) / (p * (2 - p))) / (ps * P)
    w = w0**2 * (p / (2 - p)) * (1 + 2 * x * (1 - x**tau) / (1 - x)) / P
    return et, w


@pytest.mark.parametrize("p,ps,w0,tc", [(0.1, 0.5, 0.98, 400.0), (0.3, 0.9, 0.9, 20.0), (0.02, 1.0, 1.0, 50.0)])
def test_two_segments_no_cutoff(p, ps, w0, tc):
    et, w = two_seg_closed(p, ps, w0, tc)
    r = q.delivery("swap", p_gen=p, p_swap=ps, w0=w0, t_coh=tc, t_trunc="auto")
    assert float(r.mean_time) == pytest.approx(et, rel=1e-9)
    assert float(r.mean_werner) == pytest.approx(w, rel=1e-9)
    r32 = q.delivery("swap", p_gen=f32(p), p_swap=f32(ps), w0=f32(w0), t_coh=f32(tc), t_trunc=int(r.pmf.shape[-1]))
    assert r32.mean_time.dtype == jnp.float32
    assert float(r32.mean_time) == pytest.approx(et, rel=1e-4)
    assert float(r32.mean_werner) == pytest.approx(w, rel=1e-4)


@pytest.mark.parametrize("tau", [0, 1, 5, 17, 60])
def test_two_segments_cutoff(tau):
    p, ps, w0, tc = 0.1, 0.5, 0.98, 400.0
    et, w = two_seg_closed(p, ps, w0, tc, tau)
    r = q.delivery("swap", p_gen=p, p_swap=ps, w0=w0, t_coh=tc, cutoff=[tau], t_trunc=4000)
    assert float(r.mean_time) == pytest.approx(et, rel=1e-9)
    assert float(r.mean_werner) == pytest.approx(w, rel=1e-9)


def test_issue_reference_numbers():
    r = q.delivery("swap", p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=400.0, cutoff=[17], t_trunc=4000)
    assert float(r.mean_time) == pytest.approx(31.251331, abs=5e-7)
    assert float(r.mean_werner) == pytest.approx(0.94572834, abs=5e-9)


@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_inclusion_exclusion(levels, p):
    m = 2**levels
    et = sum((-1) ** (k + 1) * math.comb(m, k) / (1 - (1 - p) ** k) for k in range(1, m + 1))
    r = q.delivery(("swap",) * levels, p_gen=p, w0=0.9, t_coh=100.0, t_trunc=2000)
    assert float(r.mean_time) == pytest.approx(et, rel=1e-9)
    t = np.arange(2000)
    assert float((t * np.asarray(r.pmf)).sum()) == pytest.approx(et, rel=1e-9)
    r32 = q.delivery(("swap",) * levels, p_gen=f32(p), w0=f32(0.9), t_coh=f32(100.0), t_trunc=2000)
    assert float(r32.mean_time) == pytest.approx(et, rel=1e-4)


# ----------------------------------------------------------------- independent reference

N_REF = 120


def _engine_levels(levels, p, lam0, rates, cutoffs, ps, werner):
    kw = dict(w0=q.bell_to_werner(jnp.asarray(lam0))) if werner else dict(lam0=jnp.asarray(lam0))
    r = q.delivery(levels, p_gen=p, p_swap=ps, rates=rates, cutoff=jnp.asarray(cutoffs, float),
                   t_trunc=N_REF, warn=False, **kw)
    return r


@pytest.mark.parametrize("werner", [True, False])
@pytest.mark.parametrize("cutoffs", [(2.0, 4.0), (1.6, 3.25), (np.inf, 0.0)])
def test_against_reference_swap_distill(werner, cutoffs):
    p, ps = 0.45, 0.8
    lam0 = np.array([0.93, 0.02, 0.01, 0.04]) if not werner else np.array([0.94, 0.02, 0.02, 0.02])
    walsh_rates = np.array([0.0, 0.02, 0.05, 0.03]) if not werner else np.array([0.0, 0.03, 0.03, 0.03])
    la = ref.leaf(p, lam0, N_REF)
    l1, _, _ = ref.node(la, la, cutoffs[0], walsh_rates, "swap", ps)
    l2, s2, f2 = ref.node(l1, l1, cutoffs[1], walsh_rates, "bbpssw" if werner else "dejmps")
    rates = walsh_rates[1] if werner else walsh_rates
    r = _engine_levels(("swap", "distill"), p, lam0, rates, cutoffs, ps, werner)
    # The renewal is summed circularly over 2 t_trunc steps: mass beyond that (at most the
    # coverage deficit) may wrap around; attempt-level quantities below are exact regardless.
    alias = max(1e-12, 1 - l2[:, 0].sum())
    np.testing.assert_allclose(np.asarray(r.pmf), l2[:, 0], atol=alias, rtol=1e-8)
    assert float(r.success_probability) == pytest.approx(s2[:, 0].sum(), rel=1e-10)
    ok = l2[:, 0] > 1e-6 * l2[:, 0].max() + 1e3 * alias  # FFT round-off is ~eps * max(pmf); the ratio is conditioned here
    if werner:
        np.testing.assert_allclose(np.asarray(r.state_t)[ok], l2[ok, 1] / l2[ok, 0], rtol=1e-8)
    else:
        np.testing.assert_allclose(np.asarray(r.state_t)[ok], (l2[ok] @ ref.H / 4) / l2[ok, :1], rtol=1e-8,
                                   atol=1e-12)
    t = np.arange(N_REF)
    assert float(r.mean_time) == pytest.approx((t * (s2[:, 0] + f2)).sum() / s2[:, 0].sum(), rel=1e-9)


def test_against_reference_heterogeneous_tree():
    """Three segments, per-segment p_gen / state, per-node memories and p_swap."""
    tree = Swap(Swap(Link(0), Link(1)), Distill(Link(2)))
    p = np.array([0.5, 0.35, 0.6])
    lam0 = np.array([[0.95, 0.02, 0.01, 0.02], [0.9, 0.05, 0.03, 0.02], [0.97, 0.01, 0.01, 0.01]])
    station = np.array([[0, 0.01, 0.02, 0.02], [0, 0.03, 0.01, 0.01], [0, 0.0, 0.05, 0.05], [0, 0.02, 0.02, 0.02]])
    rates = np.asarray(q.delivery_station_rates(tree, station))  # (K, 2, 4)
    cut = np.array([3.0, 2.5, 6.0])
    ps = np.array([0.7, 1.0, 0.9])
    l0, l1, l2 = (ref.leaf(p[i], lam0[i], N_REF) for i in range(3))
    # reference: waiting-child decay depends on the side; emulate with per-side rates
    a, _, _ = _node_sides(l0, l1, cut[0], rates[0], "swap", ps[0])
    b, _, _ = ref.node(l2, l2, cut[1], rates[1, 0], "dejmps")
    root, s, f = _node_sides(a, b, cut[2], rates[2], "swap", ps[2])
    r = q.delivery(tree, p_gen=p, lam0=lam0, p_swap=ps, rates=rates, cutoff=cut, t_trunc=N_REF, warn=False)
    np.testing.assert_allclose(np.asarray(r.pmf), root[:, 0], atol=1e-12, rtol=1e-8)
    assert float(r.mean_fidelity) == pytest.approx((s.sum(0) @ ref.H / 4)[0] / s[:, 0].sum(), rel=1e-8)


def _node_sides(la, lb, cutoff, side_rates, op, ps):
    """Reference node where the waiting left / right child decays with its own rates."""
    n = la.shape[0]
    s, f = np.zeros((n, 4)), np.zeros(n)
    k0, fr = np.floor(cutoff), cutoff - np.floor(cutoff)
    for k, wgt in ((k0, 1 - fr), (k0 + 1, fr)):
        if wgt == 0:
            continue
        for ta in range(1, n):
            for tb in range(1, n):
                ma, mb = la[ta, 0], lb[tb, 0]
                d = abs(ta - tb)
                if d > k:
                    if min(ta, tb) + k < n:
                        f[int(min(ta, tb) + k)] += wgt * ma * mb
                    continue
                x = la[ta] * (np.exp(-d * side_rates[0]) if ta < tb else 1)
                y = lb[tb] * (np.exp(-d * side_rates[1]) if tb < ta else 1)
                out = ps * x * y
                s[max(ta, tb)] += wgt * out
                f[max(ta, tb)] += wgt * (ma * mb - out[0])
    return ref.renewal(s, f), s, f


def test_tree_equals_levels_and_mirror():
    kw = dict(p_swap=0.5, w0=0.97, t_coh=300.0, t_trunc=3000, warn=False)
    a = q.delivery("swap,distill,swap", p_gen=0.1, cutoff=[10.0, 20.0, 30.0], **kw)
    b = q.delivery(q.levels_to_tree("swap,distill,swap"), p_gen=0.1, cutoff=jnp.array([10.0, 20, 10, 20, 30]), **kw)
    np.testing.assert_allclose(np.asarray(a.pmf), np.asarray(b.pmf), atol=1e-15)
    tree = q.swap_asap_tree(3)
    pg = jnp.array([0.2, 0.3, 0.4])
    c = q.delivery(tree, p_gen=pg, cutoff=jnp.array([5.0, 8.0]), **kw)
    mirror = Swap(Link(0), Swap(Link(1), Link(2)))
    d = q.delivery(mirror, p_gen=pg[::-1], cutoff=jnp.array([5.0, 8.0]), **kw)
    assert float(c.mean_time) == pytest.approx(float(d.mean_time), rel=1e-12)
    assert float(c.mean_werner) == pytest.approx(float(d.mean_werner), rel=1e-12)


def test_werner_and_bell_modes_agree_on_swaps():
    kw = dict(p_gen=0.1, p_swap=0.5, t_coh=400.0, cutoff=jnp.array([17.0, 32, 56]), t_trunc=3000, warn=False)
    a = q.delivery("swap,swap,swap", w0=0.98, **kw)
    b = q.delivery("swap,swap,swap", lam0=q.werner_to_bell(0.98), **kw)
    assert float(a.mean_time) == pytest.approx(float(b.mean_time), rel=1e-12)
    assert float(a.mean_werner) == pytest.approx(float(b.mean_werner), rel=1e-12)
    assert float(a.secret_key_rate) == pytest.approx(float(b.secret_key_rate), rel=1e-10, abs=1e-15)


def test_bsm_noise_matches_closed_form_swap():
    """One swap, p_gen = 1: delivered state is the noisy swap of the two fresh links."""
    lam0 = jnp.array([0.9, 0.04, 0.03, 0.03])
    bsm = q.bsm_noise_walsh(0.02, 0.01)
    r = q.delivery("swap", p_gen=1.0, lam0=lam0, bsm_noise=bsm, t_trunc=16)
    expect = q.swap(lam0, lam0, gate_depolarizing=0.02, measurement_error=0.01)
    np.testing.assert_allclose(np.asarray(r.mean_state), np.asarray(expect), atol=1e-14)
    assert float(r.mean_time) == pytest.approx(1.0)


# ----------------------------------------------------------------- relaxation and gradients


def test_relaxation_interpolates_integer_model():
    kw = dict(p_gen=0.2, p_swap=0.6, w0=0.95, t_coh=60.0, t_trunc=1500, warn=False)
    r = [q.delivery("swap,swap", cutoff=jnp.array([3.0, c]), **kw) for c in (7.0, 7.25, 8.0)]
    # per attempt the two integer models mix linearly: success probability and E[D] are linear
    ps = [float(x.success_probability) for x in r]
    assert ps[1] == pytest.approx(0.75 * ps[0] + 0.25 * ps[2], rel=1e-12)
    g = jax.grad(lambda c: q.delivery("swap,swap", cutoff=jnp.array([3.0, c]), **kw).secret_key_rate_smooth)(7.5)
    assert np.isfinite(float(g)) and float(g) != 0.0


def _fd(fun, x, h):
    return (fun(x + h) - fun(x - h)) / (2 * h)


@pytest.mark.parametrize("name,x0,h", [("p_gen", 0.3, 1e-6), ("p_swap", 0.6, 1e-6), ("w0", 0.97, 1e-6),
                                       ("t_coh", 80.0, 1e-3)])
def test_gradient_matches_finite_differences(name, x0, h):
    base = dict(p_gen=0.3, p_swap=0.6, w0=0.97, t_coh=80.0)

    def skr(x):
        kw = dict(base, **{name: x})
        return q.delivery("swap,distill,swap", cutoff=jnp.array([6.0, 9.0, 14.0]), t_trunc=1500, warn=False,
                          **kw).secret_key_rate

    g = float(jax.grad(skr)(jnp.float64(x0)))
    fd = float(_fd(skr, jnp.float64(x0), h))
    assert g == pytest.approx(fd, rel=1e-6)


def test_gradients_finite_at_boundaries():
    def skr(pg, w, c):
        return q.delivery("swap,swap", p_gen=pg, w0=w, t_coh=50.0, cutoff=jnp.stack([c, c]), t_trunc=256,
                          warn=False).secret_key_rate_smooth

    for args in [(1.0, 1.0, 0.0), (1.0, 0.9, 3.0), (0.4, 1.0, 0.0)]:
        g = jax.grad(skr, argnums=(0, 1, 2))(*map(jnp.float64, args))
        assert all(np.isfinite(float(x)) for x in g), (args, g)
    g32 = jax.grad(skr, argnums=(0, 1, 2))(f32(1.0), f32(1.0), f32(0.0))
    assert all(np.isfinite(float(x)) for x in g32)


# ----------------------------------------------------------------- transforms and batching


def test_batch_vmap_jit_agree():
    pg = jnp.linspace(0.05, 0.6, 5)
    cut = jnp.array([[4.0, 9.0], [5.0, 11.0], [np.inf, 2.0], [0.0, 0.0], [3.5, 7.25]])
    kw = dict(p_swap=0.7, w0=0.96, t_coh=90.0, t_trunc=2048, warn=False)
    batch = q.delivery("swap,swap", p_gen=pg, cutoff=cut, **kw).secret_key_rate
    single = jnp.stack([q.delivery("swap,swap", p_gen=pg[i], cutoff=cut[i], **kw).secret_key_rate for i in range(5)])
    vm = jax.vmap(lambda a, b: q.delivery("swap,swap", p_gen=a, cutoff=b, **kw).secret_key_rate)(pg, cut)
    jt = jax.jit(lambda a, b: q.delivery("swap,swap", p_gen=a, cutoff=b, **kw).secret_key_rate)(pg, cut)
    for x in (single, vm, jt):
        np.testing.assert_allclose(np.asarray(x), np.asarray(batch), rtol=1e-12, atol=1e-18)
    # broadcasting: (3, 1) x (1, 5) batch
    r = q.delivery("swap,swap", p_gen=pg[None, :], cutoff=jnp.stack([cut] * 3), p_swap=jnp.array([[0.5], [0.7], [0.9]]),
                   w0=0.96, t_coh=90.0, t_trunc=2048, warn=False)
    assert r.mean_time.shape == (3, 5) and r.pmf.shape == (3, 5, 2048)


def test_chunking_is_invisible():
    pg = jnp.linspace(0.05, 0.6, 7)
    kw = dict(p_swap=0.7, w0=0.96, t_coh=90.0, cutoff=jnp.array([5.0, 9.0]), t_trunc=1024, warn=False)
    a = q.delivery("swap,swap", p_gen=pg, **kw)
    b = q.delivery("swap,swap", p_gen=pg, chunk_bytes=1, **kw)  # one design per chunk, via lax.map
    np.testing.assert_allclose(np.asarray(a.pmf), np.asarray(b.pmf), atol=1e-16)


def test_no_recompilation_for_new_values():
    kw = dict(p_swap=0.7, w0=0.96, t_coh=90.0, t_trunc=777, warn=False)
    q.delivery("swap,swap", p_gen=0.3, cutoff=jnp.array([5.0, 9.0]), **kw)
    with count_traces(engine_prepare.prepare_and_run.__name__) as traces:
        q.delivery("swap,swap", p_gen=0.35, cutoff=jnp.array([6.0, 2.0]), **kw)
        q.delivery("swap,swap", p_gen=0.25, cutoff=jnp.array([1.0, 20.0]), **kw)
    assert traces[0] == 0


def test_float32_large_time_over_tcoh():
    """t_trunc / t_coh = 8000: no overflow, float32 tracks float64. (The first level's mean
    time is about 3000 steps; 20000 steps would leave it 1.5e-3 uncovered, which the engine
    now reports as a truncation too short for the attempt decomposition.)"""
    kw = dict(cutoff=[3.0, 5.0], t_trunc=40000, warn=False)
    a = q.delivery("swap,swap", p_gen=0.01, p_swap=0.5, w0=0.98, t_coh=5.0, **kw)
    b = q.delivery("swap,swap", p_gen=f32(0.01), p_swap=f32(0.5), w0=f32(0.98), t_coh=f32(5.0),
                   cutoff=jnp.array([3.0, 5.0], f32), t_trunc=40000, warn=False)
    assert int(a.status) == int(b.status) == 0
    assert np.all(np.isfinite(np.asarray(b.pmf)))
    assert float(b.mean_time) == pytest.approx(float(a.mean_time), rel=1e-4)
    assert float(b.mean_werner) == pytest.approx(float(a.mean_werner), rel=1e-4)


def test_auto_truncation_and_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = q.delivery("swap,swap,swap", p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=400.0,
                       cutoff=[17, 32, 56], t_trunc="auto", coverage_target=1 - 1e-8)
    assert float(r.coverage) >= 1 - 1e-8
    with pytest.warns(UserWarning, match="coverage"):
        q.delivery("swap,swap,swap", p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=400.0, cutoff=[17, 32, 56], t_trunc=300)


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs,match", [
    (dict(protocol="swap,purify"), "unknown level"),
    (dict(cutoff=[1.0, 2.0]), "cutoff"),
    (dict(cutoff=[-1.0, 2.0, 3.0]), "cutoff"),
    (dict(p_gen=0.0), "p_gen"),
    (dict(p_gen=1.5), "p_gen"),
    (dict(p_swap=-0.1), "p_swap"),
    (dict(w0=1.2), "w0"),
    (dict(t_coh=-3.0), "t_coh"),
    (dict(t_trunc=1), "t_trunc"),
])
def test_bad_input(kwargs, match):
    args = dict(protocol="swap,swap,swap", p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=400.0, cutoff=[1.0, 2.0, 3.0],
                t_trunc=64)
    args.update(kwargs)
    proto = args.pop("protocol")
    with pytest.raises(ValueError, match=match):
        q.delivery(proto, **args)


def test_bad_input_mode_and_shapes():
    # One mode at a time; neither means perfect links (w0 = 1), as in Monte Carlo (test_chain.py)
    with pytest.raises(ValueError, match="not both"):
        q.delivery("swap", p_gen=0.1, w0=0.9, lam0=[1.0, 0.0, 0.0, 0.0], t_trunc=64)
    with pytest.raises(ValueError, match="lam0"):
        q.delivery("swap", p_gen=0.1, lam0=[0.5, 0.5, 0.5, 0.5], t_trunc=64)
    with pytest.raises(ValueError, match="broadcast"):
        q.delivery("swap", p_gen=jnp.full(3, 0.1), p_swap=jnp.full(4, 0.5), w0=0.9, t_trunc=64)
