"""Physical scenario → step-model engine inputs, differentiable in the segment lengths.

A *structure* fixes what cannot be differentiated: the number of segments ``n`` and the
purification rounds per level. Its protocol tree is the balanced swap tree over ``n``
segments (:func:`qnjax.protocol.swap_asap_tree`) with ``rounds[h]`` distill nodes wrapped
around every node of height ``h`` (``h = 0``: elementary links; the root has the largest
height). Given segment lengths (km) the chain runs on **one synchronous clock**, the longest
attempt time ``clock = max_i duration_i`` (s); per step, segment ``i`` succeeds with
``p_gen_i(L_i)`` and a pair waiting in the memories of stations ``a, b`` decays with Walsh
rates ``(r_a + r_b) · clock``. All of it is a smooth function of the lengths (``max`` is
differentiable almost everywhere), so gradients reach the repeater positions.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import physical as phys
from ..exact import delivery, delivery_station_rates
from ..keyrate import key_fraction_bb84_smooth
from ..protocol import Distill, Link, Node, Swap, format_tree, internal_nodes
from ._common import lengths_softmax, lengths_stick
from .figures import ChainFigures, chain_figures
from .problems import PhysicalScenario


@dataclass(frozen=True)
class Structure:
    """Static part of a design: ``n`` segments, purification ``rounds`` per level, the tree."""

    n: int
    rounds: tuple
    tree: Node

    @property
    def n_nodes(self) -> int:
        return len(internal_nodes(self.tree))

    @property
    def text(self) -> str:
        return format_tree(self.tree)

    @property
    def label(self) -> str:
        r = "" if not any(self.rounds) else " rounds " + ",".join(map(str, self.rounds))
        return f"{self.n} seg{r}"


def n_levels(n: int) -> int:
    """Heights 0 .. ceil(log2 n) of the balanced tree over ``n`` segments."""
    return max(1, math.ceil(math.log2(n)) + 1) if n > 1 else 1


def build_tree(n: int, rounds: tuple) -> Node:
    def wrap(node, h):
        for _ in range(rounds[h] if h < len(rounds) else 0):
            node = Distill(node)
        return node

    def build(lo, hi):
        if hi - lo == 1:
            return wrap(Link(lo), 0)
        mid = lo + (hi - lo + 1) // 2
        return wrap(Swap(build(lo, mid), build(mid, hi)), math.ceil(math.log2(hi - lo)))

    return build(0, n)


def enumerate_structures(scenario: PhysicalScenario) -> list[Structure]:
    """Every (segments, rounds) pair the scenario's search allows."""
    s = scenario.search
    out = []
    for n in s.segments:
        h = n_levels(n)
        for rounds in itertools.product(range(s.max_rounds_per_level + 1), repeat=h):
            if sum(rounds) <= s.max_rounds_total:
                out.append(Structure(n, tuple(rounds), build_tree(n, tuple(rounds))))
    return out


def _swap_station(node) -> int:
    return node.left.span[1]


def hardware(scenario: PhysicalScenario, st: Structure, dtype=None) -> dict:
    """Traced hardware inputs of one structure (arrays; new values do not recompile)."""
    dtype = dtype or jnp.result_type(float)
    h = scenario.heralding
    nodes = internal_nodes(st.tree)
    stations = [scenario.station(i, st.n) for i in range(st.n + 1)]
    rates = np.array([s.memory.walsh_rates_per_s() for s in stations])
    p_swap = np.array([stations[_swap_station(v)].swap_success if isinstance(v, Swap) else 1.0
                       for v in nodes])
    bsm = np.array([stations[_swap_station(v)].bsm_walsh() if isinstance(v, Swap) else (1.0,) * 4
                    for v in nodes]).reshape(len(nodes), 4)
    srch = scenario.search
    lmax = srch.max_segment_km if math.isfinite(srch.max_segment_km) else 0.0
    mux = scenario.multiplexing
    vals = dict(att=scenario.attenuation_db_per_km, eff=h.efficiency, vis=h.visibility,
                fid=h.source_fidelity, alpha=h.alpha, prep=h.prep_time_s,
                lmin=srch.min_segment_km, lmax=lmax, rates=rates, p_swap=p_swap, bsm=bsm,
                det=h.detector_efficiency, dark=h.dark_count_probability, phase=h.phase_noise_rad,
                modes=mux.modes, mode_time=mux.mode_time_s, memories=mux.memories,
                max_modes=max(srch.max_modes, 1))
    return {k: jnp.asarray(v, dtype) for k, v in vals.items()}


LINK_KEYS = ("att", "eff", "vis", "fid", "alpha", "prep", "det", "dark", "phase", "modes", "mode_time")
"""The entries of :func:`hardware` that :func:`link_model` reads (the rest describe stations,
nodes or the search)."""


def link_model(scheme: str, hw: dict, lengths):
    """``LinkModel`` of every segment (lengths ``(..., n)`` km): the scheme's single-mode link
    with the scenario's detectors, then ``modes`` attempts per round (:func:`qnjax.multiplex`,
    first success kept), each mode adding ``mode_time`` to the attempt. Reads only the
    :data:`LINK_KEYS` of ``hw``."""
    noise = dict(dark_count_prob=hw.get("dark", 0.0), detector_efficiency=hw.get("det", 1.0))
    if scheme == "direct":
        link = phys.direct_transmission(lengths, hw["att"], hw["eff"], hw["fid"], hw["prep"], **noise)
    elif scheme == "double_click":
        link = phys.double_click(lengths, hw["att"], hw["eff"], hw["vis"], hw["prep"], **noise)
    else:
        link = phys.single_click(lengths, hw["alpha"], hw["att"], hw["eff"], hw["vis"], hw["prep"],
                                 phase_noise_rad=hw.get("phase", 0.0), **noise)
    if "modes" not in hw:
        return link
    p = phys.multiplex(link.p_gen, hw["modes"])
    return phys.LinkModel(p, link.duration_s + hw["modes"] * hw["mode_time"], link.lam0)


ALPHA_MAX = 0.5
"""Largest single-click ``alpha`` the optimizer may choose (above 1/2 the fresh fidelity is below 1/2)."""


A_SCALE = 3.0
"""``alpha``'s logit moves at three times the Adam step (``a`` enters as ``A_SCALE · a``)."""


def alpha_from_a(a):
    """Single-click ``alpha = ALPHA_MAX · sigmoid(A_SCALE · a)`` from an unconstrained coordinate."""
    return ALPHA_MAX * jax.nn.sigmoid(A_SCALE * a)


def a_from_alpha(alpha):
    x = np.clip(np.asarray(alpha, float) / ALPHA_MAX, 1e-9, 1 - 1e-9)
    return np.log(x / (1 - x)) / A_SCALE


def knob_value(name: str, x, hw: dict):
    """A tuned link knob from its unconstrained coordinate ``x``: ``alpha`` (:func:`alpha_from_a`)
    or ``modes = max_modes ** sigmoid(A_SCALE · x)`` in ``[1, max_modes]`` (a continuous,
    log-uniform relaxation of the integer number of modes; :func:`qnjax.multiplex` accepts
    real ``m``)."""
    if name == "alpha":
        return alpha_from_a(x)
    return hw["max_modes"] ** jax.nn.sigmoid(A_SCALE * x)


def knob_coordinate(name: str, value, hw: dict) -> np.ndarray:
    if name == "alpha":
        return a_from_alpha(value)
    lm = math.log(max(float(hw["max_modes"]), 1.0))
    s = np.clip(np.log(np.asarray(value, float)) / max(lm, 1e-12), 1e-4, 1 - 1e-4)
    return np.log(s / (1 - s)) / A_SCALE


Z_SCALE = 0.5
"""Positions move at half the Adam step of the cut-offs (``z`` enters as ``Z_SCALE · z``)."""


def lengths_from_z(z, total, hw, bounded: bool):
    """Segment lengths from unconstrained ``z`` (softmax, or bounded stick-breaking)."""
    z = Z_SCALE * z
    if bounded:
        return lengths_stick(z, total, hw["lmin"], hw["lmax"])
    return lengths_softmax(z, jnp.asarray(total), hw["lmin"])


def chain_eval(st: Structure, scheme: str, hw: dict, lengths: Float[Array, "*batch n"],
               tau: Float[Array, "*batch K"], t_trunc: int) -> ChainFigures:
    """Engine figures of designs: lengths ``(..., n)`` km, cut-offs ``(..., K)`` steps (one per
    internal node of ``st.tree`` in post-order; ``inf`` or ``>= t_trunc``: none)."""
    link = link_model(scheme, hw, lengths)
    clock = jnp.max(link.duration_s, axis=-1)
    K = st.n_nodes
    if K == 0:  # one segment, no purification: delivered at the first success, no waiting
        kfs = key_fraction_bb84_smooth(link.lam0[..., 0, :])
        T = 1.0 / link.p_gen[..., 0]
        lam = link.lam0[..., 0, :]
        cov = jnp.ones_like(T)
    else:
        sr = hw["rates"] * clock[..., None, None]
        rates = delivery_station_rates(st.tree, sr)
        r = delivery(st.tree, p_gen=link.p_gen, lam0=link.lam0, p_swap=hw["p_swap"], rates=rates,
                     cutoff=tau, bsm_noise=hw["bsm"], t_trunc=t_trunc, warn=False)
        kfs, T, lam, cov = r.key_fraction_smooth, r.mean_time, r.mean_state, r.coverage
    modes = jnp.asarray(hw.get("modes", 1.0))
    modes = modes[..., 0] if modes.ndim == jnp.ndim(kfs) + 1 else modes  # per-design (b, 1)
    return chain_figures(kfs, lam, T, cov, clock, link.p_gen, hw.get("memories", 1.0), modes)


def engine_chain(st: Structure, scheme: str, hw: dict, lengths: Float[Array, " n"],
                 tau: Float[Array, " K"]):
    """The :class:`qnjax.Chain` (per clock step) that :func:`chain_eval` evaluates for one
    design: per segment ``p_gen`` and ``lam0`` from the scheme's link model, per internal node
    ``p_swap``, ``bsm_noise``, the waiting sides' Walsh decay ``rates`` per clock step and the
    cut-offs ``tau`` (steps). Its key rate in bits per second is
    ``memories · secret_key_rate / clock_s``."""
    from ..chain import Chain

    if st.n_nodes == 0:
        raise ValueError("a design without repeaters or purification (one segment) has no chain for "
                         "the engines: its link is delivered at the first success")
    link = link_model(scheme, hw, lengths)
    clock = jnp.max(link.duration_s, axis=-1)
    rates = delivery_station_rates(st.tree, hw["rates"] * clock[..., None, None])
    return Chain.tree(st.tree, p_gen=link.p_gen, lam0=link.lam0, p_swap=hw["p_swap"], rates=rates,
                      cutoff=tau, bsm_noise=hw["bsm"])


@lru_cache(maxsize=8)
def _host_fns(scheme: str):
    """Jitted helpers for host-side bounds (one small compilation each, not one per op)."""
    import jax

    from ..states import unwalsh, walsh

    def link(hw, lengths):
        m = link_model(scheme, hw, lengths)
        return m.p_gen, m.duration_s, walsh(m.lam0)

    return jax.jit(link), jax.jit(lambda c: key_fraction_bb84_smooth(unwalsh(c)))


def link_host(scheme: str, hw: dict, lengths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p_gen, duration_s, walsh(lam0))`` of lengths (km; a scalar is evaluated as two
    equal lengths) as NumPy arrays."""
    L = np.asarray(lengths, float)
    L = np.broadcast_to(L, (2,)) if L.size == 1 else L.ravel()
    n = len(L)
    size = 1 << max(1, (n - 1).bit_length())  # padded to a power of two: few compiled shapes
    Lp = np.concatenate([L, np.full(size - n, L[-1])])
    # only what a link reads: the per-station arrays (shapes set by the structure) would give
    # every structure its own compiled program
    hw_link = {k: hw[k] for k in LINK_KEYS if k in hw}
    p, dur, c = _host_fns(scheme)[0](hw_link, jnp.asarray(Lp, jnp.result_type(float)))
    return np.asarray(p)[..., :n], np.asarray(dur)[..., :n], np.asarray(c)[..., :n, :]


def mean_max_geometric(p: float, n: int, t_max: int = 1 << 20) -> float:
    """``E[max of n independent Geometric(p)]`` (support 1, 2, ...), summed as
    ``Σ_{t>=0} 1 − (1 − q^t)^n``; terms past ``t_max`` are dropped, so the value never
    exceeds the true mean (a lower bound when truncated)."""
    if p >= 1:
        return 1.0
    if p <= 0:
        return math.inf
    if n == 1 or p < 1e-12:
        return 1.0 / p  # E[max] >= E[G_1]
    q = 1.0 - p
    tail = math.log(1e-17 / n) / math.log1p(-p)
    t = np.arange(1, int(min(max(tail, 1.0), t_max)) + 1)
    return max(1.0 / p, 1.0 + float(np.sum(-np.expm1(n * np.log1p(-np.power(q, t))))))


def key_fraction_bound(st: Structure, scheme: str, hw: dict, distance_km: float) -> float:
    """An upper bound on the BB84 key fraction of the mean delivered state of ``st``.

    Without purification every delivered pair has Walsh coordinates ``c_k = Π_links c_k(link)
    · Π_swaps b_k · Π exp(−r_k · wait)`` (swaps and Pauli noise multiply Walsh coordinates,
    Dür et al., PRA 59, 169 (1999)); memory decay and cut-offs only shrink ``|c_k|``, and so
    does averaging over deliveries. Each QBER is ``(1 − c_k)/2`` for one coordinate and
    ``1 − h(e_X) − h(e_Z)`` grows with ``|c_k|``, so the fraction is at most that of
    ``|c_k| = Π |c_k(link)| · Π |b_k|`` with every link at its best fresh state (the
    single-click state improves as a segment shortens: both ends of the allowed lengths
    are tried, each coordinate being monotone in the length; a tuned ``alpha`` is given as an
    array ``(k, 1)`` of candidate values and the largest ``|c_k|`` over them is used). With
    purification: 1."""
    if any(st.rounds):
        return 1.0
    lmin = float(hw["lmin"])
    lmax = min(distance_km - (st.n - 1) * lmin, float(hw["lmax"]) or math.inf)
    ends = [max(lmin, 1e-9), max(lmax, lmin, 1e-9)]
    c_link = np.abs(link_host(scheme, hw, ends)[2]).reshape(-1, 4).max(axis=0)
    c = c_link ** st.n * np.prod(np.abs(np.asarray(hw["bsm"])), axis=0)
    c[0] = 1.0
    kf = float(_host_fns(scheme)[1](jnp.asarray(c, jnp.result_type(float))))
    return float(min(1.0, max(0.0, kf)))


def rate_upper_bound(st: Structure, scheme: str, hw: dict, distance_km: float, hw_kf=None) -> float:
    """A rigorous upper bound (bits/s) on the key rate of ``st`` at ``distance_km``, valid for
    every spacing and cut-off: ``R <= chains · f_max / (E[T]_min · clock_min)``.

    * ``clock_min``: some segment is at least ``D/n`` long and the attempt time grows with
      the length, so the clock (the longest attempt) is at least the attempt time at ``D/n``.
    * ``E[T]_min``: delivery needs every segment's link at least once, so ``T >= max_i G_i``
      with ``G_i`` the first success of link ``i`` (geometric, ``p_i = p_gen(L_i)``).
      ``log P(G <= t) = log(1 − (1 − p)^t)`` is concave and increasing in ``log p`` (its slope
      ``t / Σ_{j<t} (1 − p)^(−j)`` falls with ``p``). Without dark counts ``log p_gen`` is
      concave in the length (linear for direct and double-click, ``log(2αη(1 − αη/2))`` for
      single-click; multiplexing keeps it so, being the same ``1 − (1 − p)^m``); with dark
      counts ``p_gen <= (1 + ε) p_0`` with ``p_0`` the dark-free probability and ``ε`` the
      largest relative excess over the allowed lengths. By Jensen ``P(max G_i <= t) = Π_i
      P(G_i <= t)`` is then largest at uniform spacing, so ``E[max G_i] >= E[max of n
      Geometric((1 + ε) p_0(D/n))]``. Also, each link is consumed by every swap above it:
      with swap success at most ``p_s`` some link must be produced ``p_s^(−h)`` times on
      average (``h = floor(log2 n)``, the smallest leaf depth of a balanced tree), and ``2^r``
      times with ``r`` purification rounds on the links, so by Wald's identity
      ``E[T] >= p_s^(−h) 2^r / p_gen(D/n)``. ``E[T]_min`` is the larger of the two.
    * ``f_max``: :func:`key_fraction_bound` (with ``hw_kf``, e.g. the best single-click
      ``alpha``, when given); ``chains``: parallel chains (``memories``).

    ``hw`` should hold the knob values that maximize the rate (largest ``alpha`` and modes,
    no mode time) when the search tunes them. The bound falls to zero for every count beyond
    the one where ``f_max`` reaches zero, and a count whose bound is below a design already
    found cannot win (branch and bound).
    """
    kf = key_fraction_bound(st, scheme, hw if hw_kf is None else hw_kf, distance_km)
    if kf <= 0:
        return 0.0
    p_, dur_, _ = link_host(scheme, hw, distance_km / st.n)
    p, clock = float(p_[0]), float(dur_[0])
    if p <= 0 or clock <= 0:
        return 0.0 if p <= 0 else math.inf
    p_up = p
    if float(hw.get("dark", 0.0)) > 0:  # log-concave majorant (1 + eps) p_0 of p_gen
        lmin = max(float(hw["lmin"]), 1e-9)
        Ls = np.linspace(lmin, max(distance_km - (st.n - 1) * float(hw["lmin"]), lmin), 17)
        hw0 = {**hw, "dark": jnp.zeros_like(hw["dark"])}
        ratio = float(np.max(link_host(scheme, hw, Ls)[0] / np.maximum(link_host(scheme, hw0, Ls)[0], 1e-300)))
        p_up = min(1.0, max(ratio, 1.0) * float(link_host(scheme, hw0, distance_km / st.n)[0][0]))
    ps = float(np.max(np.asarray(hw["p_swap"]))) if st.n_nodes else 1.0
    h = int(math.floor(math.log2(st.n)))
    r0 = st.rounds[0] if st.rounds else 0
    t_min = max(mean_max_geometric(p_up, st.n), ps ** (-h) * 2**r0 / p)
    return float(hw.get("memories", 1.0)) * kf / (t_min * clock)


def bound_hardware(scenario, hw):
    """Hardware for the bound's time part (the largest single-click ``alpha`` and modes the
    search may choose, modes at no time cost) and for its key-fraction part (every ``alpha``
    on a dense grid: the best fresh state coordinate by coordinate)."""
    s = scenario.search
    hw_t, hw_kf = dict(hw), dict(hw)
    if s.tune_alpha:
        hw_t["alpha"] = jnp.asarray(ALPHA_MAX, hw["alpha"].dtype)
        # the fresh state's coordinates over a dense grid of alpha (with dark counts the best
        # state is not at the smallest alpha)
        grid = np.concatenate([np.geomspace(1e-6, ALPHA_MAX, 96), [float(hw["alpha"])]])[:, None]
        hw_kf["alpha"] = jnp.asarray(grid, hw["alpha"].dtype)
    if s.max_modes:
        hw_t.update(modes=hw["max_modes"], mode_time=jnp.zeros_like(hw["mode_time"]))
    return hw_t, hw_kf


def estimate_mean_steps(st: Structure, p_gen: np.ndarray, p_swap: np.ndarray) -> float:
    """Rough mean delivery time (steps) without cut-offs: children treated as exponential,
    ``E[max] = a + b − ab/(a+b)``; distillation assumed to succeed with probability 0.6."""
    nodes = {id(v): k for k, v in enumerate(internal_nodes(st.tree))}

    def rec(v):
        if isinstance(v, Link):
            return 1.0 / max(float(p_gen[v.segment]), 1e-300)
        if isinstance(v, Swap):
            a, b = rec(v.left), rec(v.right)
            return (a + b - a * b / (a + b)) / float(p_swap[nodes[id(v)]])
        a = rec(v.child)
        return 1.5 * a / 0.6

    return rec(st.tree)


def auto_t_trunc(st: Structure, scheme: str, hw: dict, lengths: np.ndarray, cap: int = 1 << 15) -> tuple[int, float]:
    """A truncation length of about 20 estimated mean delivery times, rounded up to a multiple
    of 256 (at least 256, at most ``cap``), and the estimate itself."""
    link = link_model(scheme, hw, jnp.asarray(lengths))
    est = estimate_mean_steps(st, np.asarray(link.p_gen), np.asarray(hw["p_swap"]))
    t = 256 * max(1, math.ceil(20 * est / 256))
    return int(min(t, cap)), est


def uniform_lengths(n: int, total: float) -> np.ndarray:
    return np.full(n, total / n)


def z_from_lengths(lengths, total, hw, bounded: bool) -> np.ndarray:
    if bounded:
        from ._common import stick_from_lengths

        return stick_from_lengths(np.asarray(lengths), total, float(hw["lmin"]), float(hw["lmax"])) / Z_SCALE
    n = len(lengths)
    lmin = float(hw["lmin"])
    share = (np.asarray(lengths) - lmin) / max(total - n * lmin, 1e-12)
    z = np.log(np.clip(share, 1e-9, None))
    return (z - z.mean()) / Z_SCALE


__all__ = ["Structure", "ChainFigures", "enumerate_structures", "build_tree", "hardware", "chain_eval", "engine_chain",
           "link_model", "auto_t_trunc"]
