"""One candidate chain of a network plan: unequal segments, a tree shape, cut-offs.

A chain follows a fiber route; the repeaters it uses split the route into segments whose
lengths are sums of fiber lengths. Elementary links use the network's heralding scheme
(:mod:`qnjax.physical`); all segments run on one synchronous clock, the longest attempt
time. Station ``i`` of the chain (``0`` and ``n`` are the end nodes) brings its own
memories (Walsh decay rates per second times the clock) and swap hardware. The key rate
(bits/s) is the exact engine's BB84 key fraction over mean delivery time (steps) times the
clock: ``kf / (E[T] · clock)``; one segment without distillation is delivered at the first
success, ``kf(lam0) · p_gen / clock``.

Tree shapes: every binary swap tree over ``n`` segments (Catalan(n − 1) shapes), optionally
with one DEJMPS round on every elementary link. Swap trees up to depth
:data:`PAD_MAX_DEPTH` are evaluated (and their cut-offs refined) through the optimizer's
padded complete trees (:mod:`qnjax.design.padded`): one compiled program per depth and
truncation length serves every shape, in fixed power-of-two batches. Other trees (deeper,
or with distillation) compile once per shape and truncation length, in chunks of
:data:`CHUNK` designs.
"""

from __future__ import annotations

import math
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..exact import delivery, delivery_station_rates
from ..keyrate import key_fraction_bb84, key_fraction_bb84_smooth
from ..protocol import Distill, Link, Node, Swap, format_tree, internal_nodes, n_segments
from ..design.chain import link_model as _scheme_link
from .load import NetworkError

CHUNK = 64
"""Designs per engine call (the last chunk is padded), so batch shapes never recompile."""


# --------------------------------------------------------------------------- tree shapes
@lru_cache(maxsize=None)
def swap_shapes(lo: int, hi: int) -> tuple[Node, ...]:
    """Every binary swap tree over segments ``lo .. hi − 1``."""
    if hi - lo == 1:
        return (Link(lo),)
    return tuple(Swap(a, b) for mid in range(lo + 1, hi)
                 for a in swap_shapes(lo, mid) for b in swap_shapes(mid, hi))


def with_link_distill(tree: Node) -> Node:
    """The same tree with one distillation round on every elementary link."""
    if isinstance(tree, Link):
        return Distill(tree)
    if isinstance(tree, Swap):
        return Swap(with_link_distill(tree.left), with_link_distill(tree.right))
    return Distill(with_link_distill(tree.child))


def tree_shapes(n: int, distill: bool = False) -> tuple[Node, ...]:
    """Candidate protocols over ``n`` segments: all swap trees, and with ``distill`` also each
    with one round on every elementary link."""
    base = swap_shapes(0, n)
    return base + tuple(with_link_distill(t) for t in base) if distill else base


def parse_tree(text: str) -> Node:
    """Inverse of :func:`qnjax.protocol.format_tree`: ``"S(S(L0,L1),D(L2))"`` → tree."""
    s = text.replace(" ", "")
    pos = 0

    def node() -> Node:
        nonlocal pos
        if s.startswith("L", pos):
            end = pos + 1
            while end < len(s) and s[end].isdigit():
                end += 1
            if end == pos + 1:
                raise ValueError(f"protocol {text!r}: L needs a segment number at {pos}")
            seg, pos = int(s[pos + 1:end]), end
            return Link(seg)
        for tag in ("S(", "D("):
            if s.startswith(tag, pos):
                pos += 2
                a = node()
                if tag == "S(":
                    if not s.startswith(",", pos):
                        raise ValueError(f"protocol {text!r}: expected ',' at {pos}")
                    pos += 1
                    b = node()
                if not s.startswith(")", pos):
                    raise ValueError(f"protocol {text!r}: expected ')' at {pos}")
                pos += 1
                return Swap(a, b) if tag == "S(" else Distill(a)
        raise ValueError(f"protocol {text!r}: unexpected text at {pos}")

    tree = node()
    if pos != len(s):
        raise ValueError(f"protocol {text!r}: trailing text at {pos}")
    return tree


# --------------------------------------------------------------------------- inputs
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


BUCKETS = (2048, 16384)
"""Truncation lengths (steps) of screening evaluations: few, so each tree compiles at most
twice. A chain is screened at the first length above 16 estimated mean delivery times."""

MAX_MEAN_STEPS = BUCKETS[-1] // 16
"""Chains whose estimated mean delivery time exceeds this many clock steps are not
candidates (:func:`too_slow`): their memories would wait ~1000 attempts for a partner."""


def too_slow(tree: Node, hw, seg_km) -> np.ndarray:
    """Whether chains ``(B, n)`` exceed :data:`MAX_MEAN_STEPS` (never for one bare segment)."""
    if not internal_nodes(tree):
        return np.zeros(np.shape(seg_km)[0], bool)
    return mean_steps_estimate(tree, link_numpy(hw, seg_km)[0]) > MAX_MEAN_STEPS


def _bucket(steps: float) -> int:
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


@lru_cache(maxsize=None)
def _eval_jit(tree: Node, scheme: str, t_trunc: int):
    def f(hp, seg_km, rates_s, p_swap_st, bsm_st, cut):
        r, c, _ = rate_bits_per_s(tree, (scheme, hp), seg_km, rates_s, p_swap_st, bsm_st,
                                  cut if internal_nodes(tree) else None, t_trunc)
        return r, c
    return jax.jit(f)


# --------------------------------------------------------------------------- padded trees
PAD_MAX_DEPTH = 3
"""Swap trees up to this depth (every tree over at most 4 segments, the default
``max_repeaters = 3``) are evaluated through the optimizer's padded complete tree
(:mod:`qnjax.design.padded`): one compiled program per (depth, truncation length) for
every tree shape, segment count and station hardware of that depth. Deeper trees and trees
with distillation compile one program per shape (:func:`_eval_jit`)."""


def _pad_batch(t_trunc: int) -> int:
    """Designs per padded engine call: a power of two, smaller at long truncations (memory)."""
    return 64 if t_trunc <= BUCKETS[0] else 16


def _swap_depth(tree: Node) -> int | None:
    """Depth of a pure swap tree, ``None`` when it holds a distillation node."""
    if isinstance(tree, Link):
        return 0
    if isinstance(tree, Swap):
        a, b = _swap_depth(tree.left), _swap_depth(tree.right)
        return None if a is None or b is None else 1 + max(a, b)
    return None


def padded_ok(tree: Node) -> bool:
    """Whether ``tree`` is evaluated by the shared padded programs."""
    d = _swap_depth(tree)
    return d is not None and 1 <= d <= PAD_MAX_DEPTH


@lru_cache(maxsize=None)
def _layout_rows(tree: Node) -> tuple[int, dict]:
    from ..design.padded import layout, layout_arrays

    d = _swap_depth(tree)
    return d, layout_arrays(layout(tree, d))


@lru_cache(maxsize=16)
def _padded_program(depth: int, t_trunc: int, scheme: str, batch: int):
    from ..design.padded import chain_eval_padded

    def f(hp, rows, lengths, tau):
        out = jax.vmap(lambda r, L, c: chain_eval_padded(depth, t_trunc, scheme, hp, r, L, c))(rows, lengths, tau)
        return out["skr_bits_per_s"], out["coverage"]

    return jax.jit(f)


def _padded_inputs(tree: Node, seg_km, rates_s, p_swap_st, bsm_st, cut):
    """Padded layout row, lengths ``(2**d,)`` and cut-offs ``(2**d − 1,)`` of one design."""
    d, lay = _layout_rows(tree)
    smax = 2**d
    n = len(seg_km)
    pad = lambda a: np.concatenate([a, np.repeat(a[-1:], smax + 1 - len(a), 0)], 0)
    row = dict(lay, seg_mask=(np.arange(smax) < n).astype(float), st_rates=pad(rates_s),
               st_pswap=pad(p_swap_st), st_bsm=pad(bsm_st))
    L = np.zeros(smax)
    L[:n] = seg_km
    tau = np.full(smax - 1, np.inf)
    tau[: len(cut)] = cut
    return row, L, tau


def _padded_batch(designs, dt):
    """Stack the padded-program inputs of ``designs`` (tuples of :func:`_padded_inputs`'
    arguments): ``(rows, L, cutoffs)`` with integer layout arrays kept integer, the rest in
    ``dt``; ``cutoffs`` stays a NumPy array."""
    rows, Ls, cuts = zip(*(_padded_inputs(*d) for d in designs))
    rows = {k: jnp.asarray(np.stack([r[k] for r in rows])) if rows[0][k].dtype.kind == "i"
            else jnp.asarray(np.stack([r[k] for r in rows]), dt) for k in rows[0]}
    return rows, jnp.asarray(np.stack(Ls), dt), np.stack(cuts)


def evaluate_designs(trees, hw, seg_km, rates_s, p_swap_st, bsm_st, cutoffs) -> tuple[np.ndarray, np.ndarray]:
    """Key rates (bits/s) and coverage of ``B`` chains, each with its own tree shape.

    ``trees``: ``B`` trees (all over the same ``n`` segments); ``seg_km (B, n)``, station
    arrays ``(B, n+1[, 4])`` (:func:`station_arrays`); ``cutoffs``: ``B`` arrays ``(K_i,)``
    in steps (``inf``: none). Each design is screened at the first truncation length of
    :data:`BUCKETS` above 16 estimated mean delivery times. Swap trees of depth at most
    :data:`PAD_MAX_DEPTH` go through the padded programs, grouped by (depth, truncation) in
    fixed batches; one bare segment uses the closed form; other trees their own program."""
    seg_km = np.asarray(seg_km, float)
    B = len(trees)
    out, cov = np.zeros(B), np.ones(B)
    if B == 0:
        return out, cov
    p = link_numpy(hw, seg_km)[0]
    scheme, hp = hw_params(hw)
    groups: dict = {}
    for i, tree in enumerate(trees):
        if padded_ok(tree):
            t = _bucket(16 * float(mean_steps_estimate(tree, p[i])))
            groups.setdefault(("pad", _layout_rows(tree)[0], t), []).append(i)
        else:
            groups.setdefault(("tree", tree), []).append(i)
    dt = jnp.result_type(float)
    for key, idx in groups.items():
        idx = np.asarray(idx)
        if key[0] == "tree":
            tree = key[1]
            cut = np.stack([np.asarray(cutoffs[i], float) for i in idx]) if internal_nodes(tree) \
                else np.zeros((len(idx), 0))
            out[idx], cov[idx] = evaluate_batch(tree, hw, seg_km[idx], rates_s[idx], p_swap_st[idx],
                                                bsm_st[idx], cut)
            continue
        _, depth, t = key
        nb = _pad_batch(t)
        prog = _padded_program(depth, t, scheme, nb)
        for c0 in range(0, len(idx), nb):
            ids = idx[c0:c0 + nb]
            ids_p = np.concatenate([ids, np.full(nb - len(ids), ids[0])])
            rows, L, taus = _padded_batch(((trees[i], seg_km[i], rates_s[i], p_swap_st[i], bsm_st[i],
                                            np.asarray(cutoffs[i], float)) for i in ids_p), dt)
            r, c = prog(hp, rows, L, jnp.asarray(taus, dt))
            out[ids], cov[ids] = np.asarray(r)[: len(ids)], np.asarray(c)[: len(ids)]
    return out, cov


def evaluate_batch(tree: Node, hw, seg_km, rates_s, p_swap_st, bsm_st, cutoff_steps) -> tuple[np.ndarray, np.ndarray]:
    """Key rates (bits/s) and coverage of ``B`` chains with one ``tree``. Swap trees of depth
    at most :data:`PAD_MAX_DEPTH` go through :func:`evaluate_designs` (shared padded
    programs); others in chunks of :data:`CHUNK` with one truncation length per chunk (about
    16 estimated mean delivery times, a power of two)."""
    seg_km = np.asarray(seg_km, float)
    B = seg_km.shape[0]
    out, cov = np.zeros(B), np.ones(B)
    if B == 0:
        return out, cov
    if padded_ok(tree):
        return evaluate_designs([tree] * B, hw, seg_km, rates_s, p_swap_st, bsm_st, list(np.asarray(cutoff_steps)))
    p = link_numpy(hw, seg_km)[0]
    est = mean_steps_estimate(tree, p)
    order = np.argsort(est)
    for i in range(0, B, CHUNK):
        idx = order[i:i + CHUNK]
        pad = np.concatenate([idx, np.full(CHUNK - len(idx), idx[-1])])
        t = _bucket(16 * float(est[idx].max()))
        scheme, hp = hw_params(hw)
        r, c = _eval_jit(tree, scheme, t)(hp, seg_km[pad], rates_s[pad], p_swap_st[pad], bsm_st[pad],
                                      cutoff_steps[pad] if internal_nodes(tree) else np.zeros((len(pad), 0)))
        out[idx], cov[idx] = np.asarray(r)[: len(idx)], np.asarray(c)[: len(idx)]
    return out, cov


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
    from .._conventions import WALSH_NP as _H_NP

    c = np.prod(lam0 @ _H_NP, axis=-2) * np.prod(bsm_st[:, 1:-1], axis=-2)
    lam = np.clip(c, 0, None) @ _H_NP / 4
    kf = np.asarray(_kf_np(lam))
    kf = np.where(np.all(c >= 0, -1), kf, 1.0)
    if distill:
        kf = np.ones_like(kf)
    return hw.multiplexing.memories * kf / (lb * clock)


# --------------------------------------------------------------------------- cut-offs
def cutoff_grid(hw, rates_s: np.ndarray, clock: np.ndarray, K: int) -> list[np.ndarray]:
    """Screening cut-offs ``(B, K)`` in steps: none, and the same value at every node equal to
    0.3 and 0.05 of the slowest memory pair's coherence time (the pair's Werner decay time)."""
    r = np.max(rates_s[..., 1:].sum(-1) / 3, axis=-1)  # mean Walsh rate of the worst station, 1/s
    tcoh = 1 / np.maximum(2 * r, 1e-300) / clock  # a pair in two such memories, steps
    out = [np.full((len(clock), K), np.inf)]
    for f in (0.3, 0.05):
        out.append(np.repeat(np.maximum(np.floor(f * tcoh), 1.0)[:, None], K, 1))
    return out


@lru_cache(maxsize=None)
def _adam_step(tree: Node, scheme: str, t_trunc: int, lr: float):
    opt = optax.adam(lr)

    def loss(u, hp, seg_km, rates_s, p_swap_st, bsm_st):
        r, _, _ = rate_bits_per_s(tree, (scheme, hp), seg_km, rates_s, p_swap_st, bsm_st, jnp.exp(u), t_trunc, smooth=True)
        return -jnp.sum(r)

    @jax.jit
    def step(u, state, *args):
        val, g = jax.value_and_grad(loss)(u, *args)
        upd, state = opt.update(g, state, u)
        return optax.apply_updates(u, upd), state, val

    return opt, step


@lru_cache(maxsize=16)
def _adam_step_padded(depth: int, t_trunc: int, scheme: str, lr: float, batch: int):
    """Adam step on ``log τ`` of padded designs (one program per depth for every tree shape)."""
    from ..design.padded import chain_eval_padded

    opt = optax.adam(lr)

    def loss(u, hp, rows, lengths):
        def one(r, L, c):
            f = chain_eval_padded(depth, t_trunc, scheme, hp, r, L, c)
            return f["key_fraction_smooth"] / (f["mean_time"] * f["clock_s"])
        return -jnp.sum(hp["memories"] * jax.vmap(one)(rows, lengths, jnp.exp(u)))

    @jax.jit
    def step(u, state, hp, rows, lengths):
        val, g = jax.value_and_grad(loss)(u, hp, rows, lengths)
        upd, state = opt.update(g, state, u)
        return optax.apply_updates(u, upd), state, val

    return opt, step


def _refine_padded(tree: Node, hw, seg_km, rates_s, p_swap_st, bsm_st, start, est, steps: int,
                   lr: float) -> np.ndarray:
    """Gradient-refined cut-offs ``(B, K)`` (real numbers) of one swap tree through the padded
    program of its depth, designs grouped by truncation length in fixed batches."""
    K = len(internal_nodes(tree))
    scheme, hp = hw_params(hw)
    dt = jnp.result_type(float)
    tau = np.zeros_like(start)
    t_of = np.array([_bucket(16 * float(e)) for e in est])
    for t in np.unique(t_of):
        idx = np.nonzero(t_of == t)[0]
        nb = _pad_batch(int(t))
        opt, step = _adam_step_padded(_layout_rows(tree)[0], int(t), scheme, lr, nb)
        for c0 in range(0, len(idx), nb):
            ids = idx[c0:c0 + nb]
            ids_p = np.concatenate([ids, np.full(nb - len(ids), ids[0])])
            rows, L, u0 = _padded_batch(((tree, seg_km[i], rates_s[i], p_swap_st[i], bsm_st[i], start[i])
                                         for i in ids_p), dt)
            u = jnp.asarray(np.log(np.where(np.isfinite(u0), np.maximum(u0, 1.0), 1.0)), dt)
            state = opt.init(u)
            for _ in range(steps):
                u, state, _ = step(u, state, hp, rows, L)
            tau[ids] = np.exp(np.asarray(u))[: len(ids), :K]
    return tau


def refine_cutoffs(tree: Node, hw, seg_km, rates_s, p_swap_st, bsm_st, cut0, steps: int = 40,
                   lr: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Gradient refinement of cut-offs (Adam on ``log τ`` with the engine's continuous cut-off
    relaxation), then the best of the start, the rounded optimum and its floor / ceiling
    (integers, exact). Returns cut-offs ``(B, K)`` in steps (``inf`` = none) and rates (bits/s)."""
    K = len(internal_nodes(tree))
    seg_km = np.asarray(seg_km, float)
    B = seg_km.shape[0]
    r0, _ = evaluate_batch(tree, hw, seg_km, rates_s, p_swap_st, bsm_st, cut0)
    if K == 0 or B == 0:
        return cut0, r0
    p = link_numpy(hw, seg_km)[0]
    est = mean_steps_estimate(tree, p)
    best_cut, best_r = cut0.copy(), r0.copy()
    if padded_ok(tree):
        start = np.where(np.isfinite(cut0), cut0, 4 * est[:, None])
        tau = _refine_padded(tree, hw, seg_km, rates_s, p_swap_st, bsm_st, start, est, steps, lr)
        for cand in (np.round(tau), np.floor(tau), np.ceil(tau)):
            cand = np.maximum(cand, 0.0)
            r, _ = evaluate_batch(tree, hw, seg_km, rates_s, p_swap_st, bsm_st, cand)
            better = r > best_r
            best_r = np.where(better, r, best_r)
            best_cut = np.where(better[:, None], cand, best_cut)
        return best_cut, best_r
    for i in range(0, B, CHUNK):
        idx = np.arange(i, min(B, i + CHUNK))
        pad = np.concatenate([idx, np.full(CHUNK - len(idx), idx[-1])])
        t = _bucket(16 * float(est[idx].max()))
        start = np.where(np.isfinite(cut0[pad]), cut0[pad], 4 * est[pad, None])
        u = jnp.log(jnp.asarray(np.maximum(start, 1.0)))
        scheme, hp = hw_params(hw)
        opt, step = _adam_step(tree, scheme, t, lr)
        state = opt.init(u)
        args = (hp,) + tuple(jnp.asarray(a[pad]) for a in (seg_km, rates_s, p_swap_st, bsm_st))
        for _ in range(steps):
            u, state, _ = step(u, state, *args)
        tau = np.exp(np.asarray(u))[: len(idx)]
        for cand in (np.round(tau), np.floor(tau), np.ceil(tau)):
            cand = np.maximum(cand, 0.0)
            r, _ = evaluate_batch(tree, hw, seg_km[idx], rates_s[idx], p_swap_st[idx], bsm_st[idx], cand)
            better = r > best_r[idx]
            best_r[idx] = np.where(better, r, best_r[idx])
            best_cut[idx] = np.where(better[:, None], cand, best_cut[idx])
    return best_cut, best_r


COVERAGE_TARGET = 1 - 1e-12
"""Coverage the reported figures are computed at (``t_trunc="auto"``)."""


def exact_rate(tree: Node, hw, seg_km, stations, cutoff_steps) -> tuple[float, float, float]:
    """Key rate (bits/s), clock (s) and coverage of one chain at ``t_trunc="auto"`` (the
    engine's coverage target), the figure a plan reports."""
    rates_s, ps, bsm = station_arrays(stations)
    K = len(internal_nodes(tree))
    cut = np.asarray(cutoff_steps, float).reshape(K) if K else None
    r, cov, clock = rate_bits_per_s(tree, hw, np.asarray(seg_km, float), rates_s, ps, bsm, cut, "auto",
                                    coverage_target=COVERAGE_TARGET)
    return float(r), float(clock), float(cov)


def check_tree(tree: Node, n: int) -> None:
    if n_segments(tree) != n or tree.span[0] != 0:
        raise NetworkError(f"protocol {format_tree(tree)} does not cover {n} segments")


__all__ = ["tree_shapes", "parse_tree", "evaluate_batch", "refine_cutoffs", "exact_rate",
           "rate_upper_bound", "cutoff_grid", "station_arrays", "engine_inputs", "link_model"]
