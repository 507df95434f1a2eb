"""Batched key rates of many designs (chain × tree shape × cut-offs) through few compiled programs.

Swap trees up to depth :data:`PAD_MAX_DEPTH` are evaluated through the optimizer's padded
complete trees (:mod:`qnjax.design.padded`): one compiled program per (depth, node
operations per level, truncation length) serves every shape, in fixed power-of-two batches.
The node operations per level are those the shapes of that depth over the batch's segment
count need (:func:`qnjax.network.shapes.level_widths`): a caterpillar over 4 segments runs
3 node operations, not the complete tree's 7; one-swap trees share the depth-2 programs
(:data:`SCREEN_MIN_DEPTH`). For the default ``max_repeaters = 3`` that is two programs per
truncation length. Other trees (deeper, or with distillation)
compile once per shape and truncation length, in chunks of :data:`CHUNK` designs.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..design.padded import chain_eval_padded, layout, layout_arrays
from ..protocol import Node, internal_nodes
from .links import BUCKETS, bucket_of, hw_params, link_numpy, mean_steps_estimate, rate_bits_per_s
from .shapes import level_widths, swap_depth

CHUNK = 64
"""Designs per engine call (the last chunk is padded), so batch shapes never recompile."""

PAD_MAX_DEPTH = 3
"""Swap trees up to this depth (every tree over at most 4 segments, the default
``max_repeaters = 3``) are evaluated through the padded complete tree; deeper trees and
trees with distillation compile one program per shape (:func:`_eval_jit`)."""


def pad_batch(t_trunc: int) -> int:
    """Designs per padded engine call: a power of two, smaller at long truncations (memory)."""
    return 64 if t_trunc <= BUCKETS[0] else 16


def padded_ok(tree: Node) -> bool:
    """Whether ``tree`` is evaluated by the shared padded programs."""
    d = swap_depth(tree)
    return d is not None and 1 <= d <= PAD_MAX_DEPTH


SCREEN_MIN_DEPTH = 2
"""Padded depth of screening evaluations at least this: a one-swap tree (2 segments, few
designs) runs through the depth-2 program of the 3- and 4-segment trees rather than
compiling its own programs (one per truncation length, seconds each, for little work)."""


@lru_cache(maxsize=None)
def padded_layout(tree: Node, min_depth: int = SCREEN_MIN_DEPTH) -> tuple[int, tuple, dict]:
    """Padded depth (the tree's, at least ``min_depth``), node operations per level
    (:func:`~qnjax.network.shapes.level_widths` of that depth and the segment count) and the
    padded layout arrays of a swap tree."""
    d = max(swap_depth(tree), min_depth)
    return d, level_widths(d, tree.span[1]), layout_arrays(layout(tree, d))


@lru_cache(maxsize=32)
def _padded_program(depth: int, widths: tuple, t_trunc: int, scheme: str, batch: int):
    def f(hp, rows, lengths, tau):
        out = jax.vmap(lambda r, L, c: chain_eval_padded(depth, t_trunc, scheme, hp, r, L, c, widths))(
            rows, lengths, tau)
        return out["skr_bits_per_s"], out["coverage"]

    return jax.jit(f)


def padded_batch(trees, seg_km, rates_s, p_swap_st, bsm_st, cutoffs, dt, min_depth: int = SCREEN_MIN_DEPTH):
    """Padded-program inputs of ``B`` designs of one depth (rows ``(B, n)`` / ``(B, n+1[, 4])``,
    ``cutoffs`` ``B`` arrays ``(K_i,)``): ``(rows, lengths, cut-offs)``, the layout arrays kept
    integer, the rest in ``dt``; the cut-offs stay a NumPy array ``(B, 2**d − 1)`` (``inf``
    past a design's own)."""
    lays = [padded_layout(t, min_depth) for t in trees]
    d = lays[0][0]
    smax = 2**d
    seg_km = np.asarray(seg_km, float)
    B, n = seg_km.shape

    def pad(a):  # stations 0..n, then copies of the last up to smax
        a = np.asarray(a, float)
        return np.concatenate([a, np.repeat(a[:, -1:], smax + 1 - a.shape[1], 1)], 1)

    rows = {k: jnp.asarray(np.stack([lay[2][k] for lay in lays])) for k in lays[0][2]}
    rows.update(seg_mask=jnp.asarray(np.broadcast_to(np.arange(smax) < n, (B, smax)), dt),
                st_rates=jnp.asarray(pad(rates_s), dt), st_pswap=jnp.asarray(pad(p_swap_st), dt),
                st_bsm=jnp.asarray(pad(bsm_st), dt))
    L = np.zeros((B, smax))
    L[:, :n] = seg_km
    tau = np.full((B, smax - 1), np.inf)
    for i, c in enumerate(cutoffs):
        c = np.asarray(c, float).reshape(-1)
        tau[i, : c.size] = c
    return rows, jnp.asarray(L, dt), tau


def padded_groups(trees, est, min_depth: int = SCREEN_MIN_DEPTH) -> dict:
    """Indices of padded designs grouped by program: ``(depth, widths, truncation)``."""
    groups: dict = {}
    for i, tree in enumerate(trees):
        d, w, _ = padded_layout(tree, min_depth)
        groups.setdefault((d, w, bucket_of(16 * float(est[i]))), []).append(i)
    return groups


def evaluate_designs(trees, hw, seg_km, rates_s, p_swap_st, bsm_st, cutoffs) -> tuple[np.ndarray, np.ndarray]:
    """Key rates (bits/s) and coverage of ``B`` chains, each with its own tree shape.

    ``trees``: ``B`` trees (all over the same ``n`` segments); ``seg_km (B, n)``, station
    arrays ``(B, n+1[, 4])`` (:func:`~qnjax.network.links.station_arrays`); ``cutoffs``:
    ``B`` arrays ``(K_i,)`` in steps (``inf``: none). Each design is evaluated at the first
    truncation length of :data:`~qnjax.network.links.BUCKETS` above 16 estimated mean
    delivery times. Swap trees of depth at most :data:`PAD_MAX_DEPTH` go through the padded
    programs, grouped by program in fixed batches; one bare segment uses the closed form;
    other trees their own program."""
    seg_km = np.asarray(seg_km, float)
    rates_s, p_swap_st, bsm_st = (np.asarray(a, float) for a in (rates_s, p_swap_st, bsm_st))
    B = len(trees)
    out, cov = np.zeros(B), np.ones(B)
    if B == 0:
        return out, cov
    p = link_numpy(hw, seg_km)[0]
    scheme, hp = hw_params(hw)
    pad_ids = [i for i, t in enumerate(trees) if padded_ok(t)]
    others: dict = {}
    for i, t in enumerate(trees):
        if not padded_ok(t):
            others.setdefault(t, []).append(i)
    for tree, idx in others.items():
        idx = np.asarray(idx)
        cut = np.stack([np.asarray(cutoffs[i], float) for i in idx]) if internal_nodes(tree) \
            else np.zeros((len(idx), 0))
        out[idx], cov[idx] = evaluate_batch(tree, hw, seg_km[idx], rates_s[idx], p_swap_st[idx], bsm_st[idx], cut)
    est = np.array([float(mean_steps_estimate(trees[i], p[i])) for i in pad_ids])
    dt = jnp.result_type(float)
    for (depth, widths, t), sub in padded_groups([trees[i] for i in pad_ids], est).items():
        idx = np.asarray(pad_ids)[sub]
        nb = pad_batch(t)
        prog = _padded_program(depth, widths, t, scheme, nb)
        for c0 in range(0, len(idx), nb):
            ids = idx[c0:c0 + nb]
            ids_p = np.concatenate([ids, np.full(nb - len(ids), ids[0])])
            rows, L, taus = padded_batch([trees[i] for i in ids_p], seg_km[ids_p], rates_s[ids_p],
                                         p_swap_st[ids_p], bsm_st[ids_p], [cutoffs[i] for i in ids_p], dt)
            r, c = prog(hp, rows, L, jnp.asarray(taus, dt))
            out[ids], cov[ids] = np.asarray(r)[: len(ids)], np.asarray(c)[: len(ids)]
    return out, cov


@lru_cache(maxsize=None)
def _eval_jit(tree: Node, scheme: str, t_trunc: int):
    def f(hp, seg_km, rates_s, p_swap_st, bsm_st, cut):
        r, c, _ = rate_bits_per_s(tree, (scheme, hp), seg_km, rates_s, p_swap_st, bsm_st,
                                  cut if internal_nodes(tree) else None, t_trunc)
        return r, c
    return jax.jit(f)


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
    scheme, hp = hw_params(hw)
    for i in range(0, B, CHUNK):
        idx = order[i:i + CHUNK]
        pad = np.concatenate([idx, np.full(CHUNK - len(idx), idx[-1])])
        t = bucket_of(16 * float(est[idx].max()))
        r, c = _eval_jit(tree, scheme, t)(hp, seg_km[pad], rates_s[pad], p_swap_st[pad], bsm_st[pad],
                                          cutoff_steps[pad] if internal_nodes(tree) else np.zeros((len(pad), 0)))
        out[idx], cov[idx] = np.asarray(r)[: len(idx)], np.asarray(c)[: len(idx)]
    return out, cov


__all__ = ["evaluate_designs", "evaluate_batch", "padded_ok", "PAD_MAX_DEPTH", "CHUNK"]
