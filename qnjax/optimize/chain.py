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

import jax
import jax.numpy as jnp
import numpy as np

from .. import physical as phys
from ..exact import delivery, delivery_station_rates
from ..keyrate import key_fraction_bb84_smooth
from ..protocol import Distill, Link, Node, Swap, format_tree, internal_nodes
from ._common import lengths_softmax, lengths_stick
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


def link_model(scheme: str, hw: dict, lengths):
    """``LinkModel`` of every segment (lengths ``(..., n)`` km): the scheme's single-mode link
    with the scenario's detectors, then ``modes`` attempts per round (:func:`qnjax.multiplex`,
    first success kept), each mode adding ``mode_time`` to the attempt."""
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


class ChainFigures(dict):
    """Exact figures of a physical design (attribute access to a dict of arrays)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def chain_eval(st: Structure, scheme: str, hw: dict, lengths, tau, t_trunc: int) -> ChainFigures:
    """Engine figures of designs: lengths ``(..., n)`` km, cut-offs ``(..., K)`` steps."""
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
    kf = jnp.maximum(kfs, 0)
    chains = hw.get("memories", 1.0)
    modes = jnp.asarray(hw.get("modes", 1.0))
    modes = modes[..., 0] if modes.ndim == jnp.ndim(kf) + 1 else modes  # per-design (b, 1)
    return ChainFigures(
        key_fraction_smooth=kfs, key_fraction=kf, mean_time=T, mean_state=lam,
        mean_fidelity=lam[..., 0], mean_werner=(4 * lam[..., 0] - 1) / 3, coverage=cov,
        clock_s=clock, p_gen=link.p_gen, secret_key_rate=kf / T,
        skr_per_channel_use=kf / (T * modes),
        skr_bits_per_s=chains * kf / (T * clock))


def rate_upper_bound(st: Structure, scheme: str, hw: dict, distance_km: float) -> float:
    """An upper bound (bits/s) on the key rate of ``st`` at ``distance_km``, valid for every
    spacing and cut-off: some segment is at least ``D/n`` long, so the clock is at least its
    attempt time and ``E[T] >= 1/p_gen(D/n)`` (every link must be generated once); memory
    decay only shrinks the (positive) Walsh coordinates, so without purification the key
    fraction is at most that of noise-free swaps of fresh links (else at most 1)."""
    link = link_model(scheme, hw, jnp.asarray([distance_km / st.n]))
    p, clock = float(link.p_gen[0]), float(link.duration_s[0])
    kf = 1.0
    if not any(st.rounds) and scheme != "single_click":
        from ..states import walsh, unwalsh

        c = np.asarray(walsh(link.lam0[0])) ** st.n * np.prod(np.asarray(hw["bsm"]), axis=0)
        if np.all(c >= 0):
            kf = float(np.clip(key_fraction_bb84_smooth(unwalsh(jnp.asarray(c))), 0, 1))
    return max(kf, 0.0) * p / max(clock, 1e-300) * float(hw.get("memories", 1.0))


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


__all__ = ["Structure", "enumerate_structures", "build_tree", "hardware", "chain_eval",
           "link_model", "auto_t_trunc"]
