"""One chain's numbers: hardware to link figures and station arrays, the exact engine's key
rate of a batch of chains with one tree, the screening truncation lengths, a rigorous upper
bound over every tree and cut-off, and the figure a plan reports (``t_trunc="auto"``).

A chain follows a fiber route; the repeaters it uses split the route into segments whose
lengths are sums of fiber lengths. Elementary links use the network's heralding scheme
(:mod:`qnjax.physical`); all segments run on one synchronous clock, the longest attempt
time. Station ``i`` of the chain (``0`` and ``n`` are the end nodes) brings its own
memories (Walsh decay rates per second times the clock) and swap hardware. The key rate
(bits/s) is the exact engine's BB84 key fraction over mean delivery time (steps) times the
clock: ``kf / (E[T] · clock)``; one segment without distillation is delivered at the first
success, ``kf(lam0) · p_gen / clock``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..exact import delivery, delivery_station_rates
from ..keyrate import key_fraction_bb84, key_fraction_bb84_smooth
from ..design.chain import link_model as _scheme_link
from ..protocol import Link, Node, Swap, internal_nodes

_WALSH = np.array([[1, 1, 1, 1], [1, -1, -1, 1], [1, -1, 1, -1], [1, 1, -1, -1]], float)
"""Walsh-Hadamard matrix of Bell-diagonal states, ``H[k, g] = (−1)^(k·g)`` (that of :mod:`qnjax.states`)."""


def station_arrays(stations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walsh memory rates per second ``(n+1, 4)``, swap success ``(n+1,)``, BSM multiplier ``(n+1, 4)``."""
    return (np.array([s.memory.walsh_rates_per_s() for s in stations], float),
            np.array([s.swap_success for s in stations], float),
            np.array([s.bsm_walsh() for s in stations], float))


def hw_params(hw) -> tuple[str, dict]:
    """The heralding scheme (static) and the link hardware as numbers (traced: new hardware
    values reuse compiled programs)."""
    h, mux = hw.heralding, hw.multiplexing
    dark = -math.expm1(-h.dark_count_rate_hz * h.detection_window_s)
    return h.scheme, dict(att=hw.attenuation_db_per_km, eff=h.efficiency, vis=h.visibility,
                          fid=h.source_fidelity, alpha=h.alpha, prep=h.prep_time_s, dark=dark,
                          det=h.detector_efficiency, phase=h.phase_noise_rad, modes=float(mux.modes),
                          mode_time=mux.mode_time_s, memories=float(mux.memories))


def _link(scheme: str, hp: dict, seg_km):
    """The optimizer's link model (:func:`qnjax.design.chain.link_model`): the scheme's
    single-mode link with the detectors, then ``modes`` attempts per round."""
    return _scheme_link(scheme, hp, seg_km)


def link_model(hw, seg_km):
    """``LinkModel`` of segments ``seg_km`` (km, any shape) under the network's heralding."""
    scheme, hp = hw_params(hw)
    return _link(scheme, hp, seg_km)


@lru_cache(maxsize=None)
def _link_jit(scheme: str):
    return jax.jit(lambda hp, s: _link(scheme, hp, s))


def link_numpy(hw, seg_km) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``p_gen``, attempt duration (s) and ``lam0`` of segments ``seg_km`` as NumPy arrays (one
    compiled program per power-of-two size, so host-side look-ups do not recompile)."""
    s = np.asarray(seg_km, float)
    flat = s.reshape(-1)
    n = max(64, 1 << max(0, math.ceil(math.log2(max(flat.size, 1)))))
    pad = np.concatenate([flat, np.full(n - flat.size, 1.0)])
    scheme, hp = hw_params(hw)
    lk = _link_jit(scheme)(hp, jnp.asarray(pad))
    return (np.asarray(lk.p_gen)[: flat.size].reshape(s.shape),
            np.asarray(lk.duration_s)[: flat.size].reshape(s.shape),
            np.asarray(lk.lam0)[: flat.size].reshape(s.shape + (4,)))


def engine_inputs(tree: Node, hw, seg_km, rates_s, p_swap_st, bsm_st) -> dict:
    """Keyword arguments of :func:`qnjax.delivery` (less ``cutoff``/``t_trunc``) for chains
    with segments ``seg_km (..., n)`` and station hardware ``(..., n+1[, 4])``; plus ``clock``."""
    link = _link(*hw, jnp.asarray(seg_km)) if isinstance(hw, tuple) else link_model(hw, jnp.asarray(seg_km))
    clock = jnp.max(link.duration_s, axis=-1)
    rates = delivery_station_rates(tree, jnp.asarray(rates_s) * clock[..., None, None])
    nodes = internal_nodes(tree)
    swap_at = [v.left.span[1] if isinstance(v, Swap) else None for v in nodes]
    ps = jnp.stack([jnp.asarray(p_swap_st)[..., i] if i is not None else jnp.ones_like(clock)
                    for i in swap_at], -1)
    bsm = jnp.stack([jnp.asarray(bsm_st)[..., i, :] if i is not None else jnp.ones(clock.shape + (4,))
                     for i in swap_at], -2)
    return dict(p_gen=link.p_gen, lam0=link.lam0, p_swap=ps, rates=rates, bsm_noise=bsm, clock=clock)


def mean_steps_estimate(tree: Node, p_gen: np.ndarray) -> np.ndarray:
    """Rough mean delivery time without cut-offs (steps), ``(..., n)`` → ``(...)``: children as
    exponentials, ``E[max] = a + b − ab/(a + b)``; distillation succeeds with probability 0.6."""
    def rec(v):
        if isinstance(v, Link):
            return 1.0 / np.maximum(p_gen[..., v.segment], 1e-300)
        if isinstance(v, Swap):
            a, b = rec(v.left), rec(v.right)
            return a + b - a * b / (a + b)
        a = rec(v.child)
        return 1.5 * a / 0.6
    return rec(tree)


BUCKETS = (2048, 8192, 16384)
"""Truncation lengths (steps) of screening evaluations and of the cut-off refinement: few,
so the padded programs compile a handful of times. A chain is evaluated at the first length
above 16 estimated mean delivery times (a tail of ``e**−16`` of the delivery time, about
1e-7, is cut). The middle length halves the work of designs with a mean of 129 to 512
steps, which the first lengths (2048, 16384) evaluated at 16384."""

MAX_MEAN_STEPS = BUCKETS[-1] // 16
"""Chains whose estimated mean delivery time exceeds this many clock steps are not
candidates (:func:`too_slow`): their memories would wait ~1000 attempts for a partner."""


def too_slow(tree: Node, hw, seg_km) -> np.ndarray:
    """Whether chains ``(B, n)`` exceed :data:`MAX_MEAN_STEPS` (never for one bare segment)."""
    if not internal_nodes(tree):
        return np.zeros(np.shape(seg_km)[0], bool)
    return mean_steps_estimate(tree, link_numpy(hw, seg_km)[0]) > MAX_MEAN_STEPS


def bucket_of(steps: float) -> int:
    """Screening truncation length of a design whose estimated mean delivery time is ``steps / 16``."""
    return next((b for b in BUCKETS if steps <= b), BUCKETS[-1])


def rate_bits_per_s(tree: Node, hw, seg_km, rates_s, p_swap_st, bsm_st, cutoff_steps, t_trunc,
                    smooth: bool = False, **kw_engine):
    """Key rate (bits/s), coverage and clock of a batch of chains with one ``tree``.
    ``cutoff_steps (..., K)`` (``inf``: none); ``t_trunc`` an int or ``"auto"``. With
    ``memories`` per station the chain runs as that many independent parallel chains (rate
    times ``memories``, as in :class:`qnjax.Multiplexing`)."""
    mem = (hw[1] if isinstance(hw, tuple) else hw_params(hw)[1])["memories"]
    if not internal_nodes(tree):  # one segment, no distillation
        link = _link(*hw, jnp.asarray(seg_km)) if isinstance(hw, tuple) else link_model(hw, jnp.asarray(seg_km))
        kf = (key_fraction_bb84_smooth if smooth else key_fraction_bb84)(link.lam0[..., 0, :])
        clock = link.duration_s[..., 0]
        return mem * kf * link.p_gen[..., 0] / clock, jnp.ones_like(clock), clock
    kw = engine_inputs(tree, hw, seg_km, rates_s, p_swap_st, bsm_st)
    clock = kw.pop("clock")
    r = delivery(tree, **kw, cutoff=cutoff_steps, t_trunc=t_trunc, warn=False, **kw_engine)
    kf = r.key_fraction_smooth if smooth else r.key_fraction
    return mem * kf / (r.mean_time * clock), r.coverage, clock


def _kf_np(lam: np.ndarray) -> np.ndarray:
    """BB84 key fraction of Bell-diagonal ``lam (..., 4)`` in NumPy, clipped at 0."""
    def h(x):
        x = np.clip(x, 1e-300, 1 - 1e-16)
        return -x * np.log2(x) - (1 - x) * np.log2(1 - x)
    ez, ex = lam[..., 1] + lam[..., 2], lam[..., 2] + lam[..., 3]
    return np.maximum(1 - h(ez) - h(ex), 0.0)


def rate_upper_bound(hw, seg_km: np.ndarray, bsm_st: np.ndarray, distill: bool) -> np.ndarray:
    """Upper bound (bits/s) on the key rate of chains ``(B, n)`` over every tree shape and
    cut-off: the delivered pair consumed one link of every segment, so ``E[T]`` is at least
    the mean of the maximum of any two segments' first-success times,
    ``1/p + 1/q − 1/(p + q − pq)``; and the clock is the longest attempt. Without distillation
    the key fraction is at most that of fresh links swapped once at every repeater with
    noise-free memories (decay only shrinks the non-negative Walsh coordinates), else 1."""
    p, dur, lam0 = link_numpy(hw, seg_km)
    clock = dur.max(-1)
    n = p.shape[-1]
    lb = 1 / p.min(-1)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = p[:, i], p[:, j]
            lb = np.maximum(lb, 1 / a + 1 / b - 1 / (a + b - a * b))
    c = np.prod(lam0 @ _WALSH, axis=-2) * np.prod(bsm_st[:, 1:-1], axis=-2)
    lam = np.clip(c, 0, None) @ _WALSH / 4
    kf = np.asarray(_kf_np(lam))
    kf = np.where(np.all(c >= 0, -1), kf, 1.0)
    if distill:
        kf = np.ones_like(kf)
    return hw.multiplexing.memories * kf / (lb * clock)


COVERAGE_TARGET = 1 - 1e-12
"""Coverage the reported figures are computed at (``t_trunc="auto"``)."""


def exact_rate(tree: Node, hw, seg_km, stations, cutoff_steps) -> tuple[float, float, float]:
    """Key rate (bits/s), clock (s) and coverage of one chain at ``t_trunc="auto"`` (the
    engine's coverage target; its search capped near 64 estimated means, see
    :func:`_exact_rate`), the figure a plan reports. Remembered per design (tree,
    hardware, segments, stations, cut-offs): the plans of a budget curve report many of the
    same chains, and the figure is a pure function of the design."""
    K = len(internal_nodes(tree))
    cut = tuple(float(c) for c in np.asarray(cutoff_steps, float).reshape(K)) if K else ()
    return _exact_rate(tree, hw, tuple(float(s) for s in np.asarray(seg_km, float).reshape(-1)),
                       tuple(stations), cut)


CAP_MAX = 2**21
"""The engine's ceiling of ``t_trunc="auto"`` (``max_t_trunc``)."""

ATTEMPT_DEFICIT_MAX = 1e-4
"""The engine's bound on a design's missing last-attempt mass before ``t_trunc="auto"``
counts it as a truncation deficit (``qnjax._truncation``)."""


@lru_cache(maxsize=4096)
def _exact_rate(tree: Node, hw, seg_km: tuple, stations: tuple, cut: tuple) -> tuple[float, float, float]:
    rates_s, ps, bsm = station_arrays(stations)
    seg = np.asarray(seg_km, float)
    if not internal_nodes(tree):
        r, cov, clock = rate_bits_per_s(tree, hw, seg, rates_s, ps, bsm, None, "auto")
        return float(r), float(clock), float(cov)
    kw = engine_inputs(tree, hw, seg, rates_s, ps, bsm)
    clock = float(kw.pop("clock"))
    cutoff = np.asarray(cut, float)
    # The engine's automatic truncation starts at 1024 steps and jumps by the mean it measured
    # there; for a chain with a mean of a few hundred steps that measurement can send it to
    # its 2**21 ceiling (seconds of CPU per design, and a compiled program per length). Capped
    # at 64 estimated means, at least 4096, it stops at or below the cap; where the cap misses
    # the coverage target, the next length follows the engine's rule from the mean measured
    # there (an integer t_trunc), and only a design that still misses it runs the uncapped
    # search (the figure of t_trunc="auto" either way, within the coverage target).
    est = float(mean_steps_estimate(tree, link_numpy(hw, seg[None])[0][0]))
    cap = max(4096, 1 << math.ceil(math.log2(max(64 * est, 1.0))))
    res = delivery(tree, **kw, cutoff=cutoff, t_trunc="auto", coverage_target=COVERAGE_TARGET,
                   max_t_trunc=cap, warn=False)

    def ok(r):
        return (int(np.asarray(r.status)) == 0 and 1 - float(r.coverage) <= 1 - COVERAGE_TARGET
                and 1 - float(r.attempt_coverage) <= ATTEMPT_DEFICIT_MAX)

    n = cap
    while not ok(res) and n < CAP_MAX and int(np.asarray(res.status)) == 0:
        # the engine's own jump, from a mean measured at a length that nearly covers it
        deficit = max(1 - float(res.coverage), 1e-300)
        scale = max(float(res.mean_time), n / max(math.log(1 / deficit), 1e-3))
        want = 1.25 * scale * math.log(1 / (1 - COVERAGE_TARGET))
        n = min(CAP_MAX, max(2 * n, 1 << math.ceil(math.log2(want))))
        res = delivery(tree, **kw, cutoff=cutoff, t_trunc=n, warn=False)
    if not ok(res):
        res = delivery(tree, **kw, cutoff=cutoff, t_trunc="auto", coverage_target=COVERAGE_TARGET, warn=False)
    mem = hw_params(hw)[1]["memories"]
    return float(mem * res.key_fraction / (res.mean_time * clock)), clock, float(res.coverage)


__all__ = ["station_arrays", "hw_params", "link_model", "link_numpy", "engine_inputs", "mean_steps_estimate",
           "BUCKETS", "MAX_MEAN_STEPS", "too_slow", "bucket_of", "rate_bits_per_s", "rate_upper_bound",
           "exact_rate", "COVERAGE_TARGET"]
