"""Cut-offs of candidate chains: the screening grid, and the gradient refinement of the chains a
plan chooses (Adam on ``log τ`` through the engine's continuous cut-off relaxation, then the
best of the start and the rounded optimum's integers, evaluated exactly).

Swap trees evaluated by the padded programs (:mod:`qnjax.network.screen`) are refined
together across tree shapes: one Adam program per (depth, node operations per level,
truncation length), in batches of :data:`REFINE_BATCH` designs. Each design's cut-offs move
independently of its batch mates (the loss is a sum over designs and Adam acts element by
element), so the grouping does not change a result.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..design.padded import chain_eval_padded
from ..protocol import Node, internal_nodes
from .links import bucket_of, hw_params, link_numpy, mean_steps_estimate, rate_bits_per_s
from .screen import CHUNK, evaluate_batch, evaluate_designs, padded_batch, padded_groups, padded_ok

ADAM_MIN_DEPTH = 1
"""One-swap trees keep their own depth-1 Adam programs (40 gradient steps a chain: a third
of the depth-2 program's work pays for its compilation), unlike the screening
(:data:`qnjax.network.screen.SCREEN_MIN_DEPTH`)."""

REFINE_BATCH = 4
"""Designs per Adam program call: a plan refines a few newly chosen chains at a time, so a
small fixed batch wastes little padding and compiles once per program."""


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
        r, _, _ = rate_bits_per_s(tree, (scheme, hp), seg_km, rates_s, p_swap_st, bsm_st, jnp.exp(u), t_trunc,
                                  smooth=True)
        return -jnp.sum(r)

    @jax.jit
    def step(u, state, *args):
        val, g = jax.value_and_grad(loss)(u, *args)
        upd, state = opt.update(g, state, u)
        return optax.apply_updates(u, upd), state, val

    return opt, step


@lru_cache(maxsize=16)
def _adam_step_padded(depth: int, widths: tuple, t_trunc: int, scheme: str, lr: float, batch: int):
    """Adam step on ``log τ`` of padded designs (one program for every tree shape it serves)."""
    opt = optax.adam(lr)

    def loss(u, hp, rows, lengths):
        def one(r, L, c):
            f = chain_eval_padded(depth, t_trunc, scheme, hp, r, L, c, widths)
            return f["key_fraction_smooth"] / (f["mean_time"] * f["clock_s"])
        return -jnp.sum(hp["memories"] * jax.vmap(one)(rows, lengths, jnp.exp(u)))

    @jax.jit
    def step(u, state, hp, rows, lengths):
        val, g = jax.value_and_grad(loss)(u, hp, rows, lengths)
        upd, state = opt.update(g, state, u)
        return optax.apply_updates(u, upd), state, val

    return opt, step


def _adam_padded(trees, hw, seg_km, rates_s, p_swap_st, bsm_st, start, est, steps: int, lr: float) -> list:
    """Gradient-refined cut-offs (real numbers, one array ``(K_i,)`` per design) of padded
    swap trees over the same segment count, grouped by program in batches of :data:`REFINE_BATCH`."""
    scheme, hp = hw_params(hw)
    dt = jnp.result_type(float)
    tau = [None] * len(trees)
    nb = REFINE_BATCH
    for (depth, widths, t), idx in padded_groups(trees, est, ADAM_MIN_DEPTH).items():
        idx = np.asarray(idx)
        opt, step = _adam_step_padded(depth, widths, t, scheme, lr, nb)
        for c0 in range(0, len(idx), nb):
            ids = idx[c0:c0 + nb]
            ids_p = np.concatenate([ids, np.full(nb - len(ids), ids[0])])
            rows, L, u0 = padded_batch([trees[i] for i in ids_p], seg_km[ids_p], rates_s[ids_p], p_swap_st[ids_p],
                                       bsm_st[ids_p], [start[i] for i in ids_p], dt, ADAM_MIN_DEPTH)
            u = jnp.asarray(np.log(np.where(np.isfinite(u0), np.maximum(u0, 1.0), 1.0)), dt)
            state = opt.init(u)
            for _ in range(steps):
                u, state, _ = step(u, state, hp, rows, L)
            got = np.exp(np.asarray(u))
            for k, i in enumerate(ids):
                tau[i] = got[k, : len(start[i])]
    return tau


def refine_designs(trees, hw, seg_km, rates_s, p_swap_st, bsm_st, cut0, steps: int = 40,
                   lr: float = 0.15) -> tuple[list, np.ndarray]:
    """Gradient refinement of the cut-offs of ``B`` designs over the same segment count, each
    with its own tree (as :func:`refine_cutoffs`, padded swap trees refined together across
    shapes). Returns cut-offs (one array ``(K_i,)`` per design) and rates (bits/s)."""
    seg_km = np.asarray(seg_km, float)
    rates_s, p_swap_st, bsm_st = (np.asarray(a, float) for a in (rates_s, p_swap_st, bsm_st))
    B = len(trees)
    cut = [np.asarray(c, float).copy() for c in cut0]
    rate = np.zeros(B)
    pad = [i for i in range(B) if padded_ok(trees[i]) and internal_nodes(trees[i])]
    rest: dict = {}
    in_pad = set(pad)
    for i in range(B):
        if i not in in_pad:
            rest.setdefault(trees[i], []).append(i)
    for tree, idx in rest.items():
        idx = np.asarray(idx)
        c, r = refine_cutoffs(tree, hw, seg_km[idx], rates_s[idx], p_swap_st[idx], bsm_st[idx],
                              np.stack([cut[i] for i in idx]), steps, lr)
        for k, i in enumerate(idx):
            cut[i], rate[i] = c[k], r[k]
    if not pad:
        return cut, rate
    pad = np.asarray(pad)
    p = link_numpy(hw, seg_km[pad])[0]
    est = np.array([float(mean_steps_estimate(trees[i], p[k])) for k, i in enumerate(pad)])
    ptrees = [trees[i] for i in pad]
    start = [np.where(np.isfinite(cut[i]), cut[i], 4 * e) for i, e in zip(pad, est)]
    tau = _adam_padded(ptrees, hw, seg_km[pad], rates_s[pad], p_swap_st[pad], bsm_st[pad], start, est, steps, lr)
    # the start and the rounded optimum's integers in one exact evaluation; the first of equal rates wins
    cands = [[cut[i] for i in pad]] + [[np.maximum(f(t), 0.0) for t in tau] for f in (np.round, np.floor, np.ceil)]
    rr, _ = evaluate_designs(ptrees * 4, hw, np.tile(seg_km[pad], (4, 1)), np.tile(rates_s[pad], (4, 1, 1)),
                             np.tile(p_swap_st[pad], (4, 1)), np.tile(bsm_st[pad], (4, 1, 1)),
                             [c for cs in cands for c in cs])
    rr = rr.reshape(4, len(pad))
    for k, i in enumerate(pad):
        best = 0
        for j in (1, 2, 3):
            if rr[j, k] > rr[best, k]:
                best = j
        cut[i], rate[i] = cands[best][k], rr[best, k]
    return cut, rate


def refine_cutoffs(tree: Node, hw, seg_km, rates_s, p_swap_st, bsm_st, cut0, steps: int = 40,
                   lr: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Gradient refinement of cut-offs (Adam on ``log τ`` with the engine's continuous cut-off
    relaxation), then the best of the start, the rounded optimum and its floor / ceiling
    (integers, exact). Returns cut-offs ``(B, K)`` in steps (``inf`` = none) and rates (bits/s)."""
    K = len(internal_nodes(tree))
    seg_km = np.asarray(seg_km, float)
    B = seg_km.shape[0]
    if K and B and padded_ok(tree):
        cut, r = refine_designs([tree] * B, hw, seg_km, rates_s, p_swap_st, bsm_st, list(cut0), steps, lr)
        return np.stack(cut), r
    r0, _ = evaluate_batch(tree, hw, seg_km, rates_s, p_swap_st, bsm_st, cut0)
    if K == 0 or B == 0:
        return cut0, r0
    est = mean_steps_estimate(tree, link_numpy(hw, seg_km)[0])
    best_cut, best_r = cut0.copy(), r0.copy()
    scheme, hp = hw_params(hw)
    for i in range(0, B, CHUNK):
        idx = np.arange(i, min(B, i + CHUNK))
        pad = np.concatenate([idx, np.full(CHUNK - len(idx), idx[-1])])
        t = bucket_of(16 * float(est[idx].max()))
        start = np.where(np.isfinite(cut0[pad]), cut0[pad], 4 * est[pad, None])
        u = jnp.log(jnp.asarray(np.maximum(start, 1.0)))
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


__all__ = ["cutoff_grid", "refine_cutoffs", "refine_designs", "REFINE_BATCH"]
