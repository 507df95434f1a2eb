"""Swap trees of any shape and size evaluated by one compiled program per depth.

A swap tree over ``S`` segments whose leaves lie at most ``d`` swaps below the root is
embedded in the complete binary tree of depth ``d`` (``2**d`` leaves): a real leaf that sits
higher than the bottom is swapped with *trivial* links (``p_gen = 1``, the perfect pair
``Φ+``, no memory decay, no cut-off, a noise-free swap that always succeeds). A trivial link
is ready at step 1, before or together with any real sub-chain (ready at ``t >= 1``), so it
never makes its partner wait, never decays and never fails: ``Swap(X, trivial)`` delivers
exactly what ``X`` delivers, at the same time. Every tree of depth ``d`` is then the same
computation with different parameters, which are data (traced), not structure: one
compiled program serves every segment count from ``2**(d−1) + 1`` to ``2**d`` and every tree
shape. The complete tree is evaluated level by level, all nodes of a level in one batched
call of the exact engine's node operation (:func:`qnjax._engine.kernels.combine`), so the program
holds ``d`` node operations, not ``2**d − 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .. import _truncation as TR
from .._conventions import walsh_matrix
from .._engine.kernels import combine as _combine, leaf as _leaf, node_deficit as _node_deficit
from .._engine.plan import Plan as _Plan
from .._engine.summary import summarize as _summarize
from ..protocol import Link, Node, Swap, internal_nodes


def tree_depth(tree: Node) -> int:
    if isinstance(tree, Link):
        return 0
    if isinstance(tree, Swap):
        return 1 + max(tree_depth(tree.left), tree_depth(tree.right))
    raise TypeError("padded evaluation takes swap trees only (no distill nodes)")


@dataclass(frozen=True)
class Layout:
    """A real swap tree embedded in the complete tree of ``depth`` (NumPy index arrays).

    ``leaf_seg[j]``: real segment at padded leaf ``j`` (−1: trivial link). Padded nodes are
    numbered level by level from the bottom (level 1 first, left to right);
    ``node_real[k]``: post-order index of the real node there (−1: pass-through),
    ``node_station[k]``: the station that swaps, ``node_spans[k]``: stations ``(a, b)`` of
    the left and right child (rates ``r_a + r_b``) as a ``(2, 2)`` array.
    """

    depth: int
    n: int
    leaf_seg: np.ndarray
    node_real: np.ndarray
    node_station: np.ndarray
    node_spans: np.ndarray


def layout(tree: Node, depth: int | None = None) -> Layout:
    d = tree_depth(tree) if depth is None else depth
    if tree_depth(tree) > d:
        raise ValueError(f"tree of depth {tree_depth(tree)} does not fit depth {d}")
    real = {id(v): k for k, v in enumerate(internal_nodes(tree))}
    leaf_seg = np.full(2**d, -1, np.int32)
    n_nodes = 2**d - 1
    offset = [0] * (d + 1)
    for h in range(2, d + 1):
        offset[h] = offset[h - 1] + 2 ** (d - h + 1)
    node_real = np.full(n_nodes, -1, np.int32)
    node_station = np.full(n_nodes, 0, np.int32)
    node_spans = np.zeros((n_nodes, 2, 2), np.int32)

    def put(v, h, i):  # node v at level h (0 = leaves), position i
        if h == 0:
            leaf_seg[i] = v.segment
            return
        k = offset[h] + i
        if isinstance(v, Link):
            put(v, h - 1, 2 * i)
            return
        node_real[k] = real[id(v)]
        node_station[k] = v.left.span[1]
        node_spans[k] = [v.left.span, v.right.span]
        put(v.left, h - 1, 2 * i)
        put(v.right, h - 1, 2 * i + 1)

    put(tree, d, 0)
    n = tree.span[1]
    return Layout(d, n, leaf_seg, node_real, node_station, node_spans)


@lru_cache(maxsize=32)
def plan(depth: int, t_trunc: int) -> _Plan:
    n_int = t_trunc + depth + 1
    return _Plan(None, None, False, t_trunc, n_int, TR.fast_len(2 * n_int))


def node_params(lay: dict, p_seg, lam0_seg, st_rates, st_pswap, st_bsm, cutoff_real):
    """Padded per-leaf and per-node engine inputs of one design (JAX, traceable in all inputs).

    ``lay``: a :class:`Layout` as arrays (``leaf_seg``, ``node_real``, ``node_station``,
    ``node_spans``); ``p_seg`` (S_max,), ``lam0_seg`` (S_max, 4): links; ``st_rates``
    (S_max + 1, 4) Walsh decay rates per step of each station's memory; ``st_pswap``
    (S_max + 1,), ``st_bsm`` (S_max + 1, 4): swap hardware per station; ``cutoff_real``
    (K_max,) steps, per real node in post-order.
    """
    dt = p_seg.dtype
    seg = lay["leaf_seg"]
    triv = seg < 0
    sj = jnp.maximum(seg, 0)
    p_leaf = jnp.where(triv, 1.0, p_seg[sj])
    s0 = lam0_seg @ walsh_matrix(dt)
    s0_leaf = jnp.where(triv[:, None], 1.0, s0[sj])
    real = lay["node_real"] >= 0
    st = lay["node_station"]
    sp = lay["node_spans"]
    rates = st_rates[sp[..., 0]] + st_rates[sp[..., 1]]  # (K, 2, 4)
    rates = jnp.where(real[:, None, None], rates, 0.0).at[..., 0].set(0.0)
    cut = jnp.where(real, cutoff_real[jnp.maximum(lay["node_real"], 0)], jnp.inf)
    return dict(p_leaf=p_leaf, s0_leaf=s0_leaf, cutoff=cut, real=real,
                p_swap=jnp.where(real, st_pswap[st], 1.0),
                bsm=jnp.where(real[:, None], st_bsm[st], 1.0), rates=rates)


def evaluate_padded(depth: int, t_trunc: int, params: dict, widths: tuple | None = None):
    """Exact figures (:class:`qnjax.DeliveryResult`) of a batch of padded designs.

    ``params`` as returned by :func:`node_params` with a leading batch axis ``B``.
    ``widths``: optional node operations per level (bottom first, at least the real nodes
    of every design there): only those slots are computed, a pass-through slot takes its
    left child as it is (``Swap(X, trivial)`` is ``X``), so a caterpillar over 4 segments
    costs 3 node operations instead of 7. ``None``: every slot (``2**(depth − h)``)."""
    pl = plan(depth, t_trunc)
    B = params["p_leaf"].shape[0]
    C = 4
    lam, spec = _leaf(pl, params["p_leaf"].reshape(-1), params["s0_leaf"].reshape(-1, C))
    # the engine's coverage rule: the largest truncation deficit of the sub-protocols
    deficit = jnp.max(TR.leaf_deficit(params["p_leaf"].reshape(B, -1), pl.n_out), axis=-1)
    off = 0
    ls = f = None
    for h in range(1, depth + 1):
        m = 2 ** (depth - h)
        w = m if widths is None else min(m, widths[h - 1])
        sl = slice(off, off + m)
        off += m
        lam = lam.reshape(B, m, 2, C, -1)
        spec = spec.reshape(B, m, 2, C, -1)
        if w < m:  # the real slots first (stable), then pass-through ones to fill w
            idx = jnp.argsort(~params["real"][:, sl], axis=1, stable=True)[:, :w]
            pick = lambda a: jax.vmap(lambda x, i: x[i])(a, idx)
        else:
            pick = lambda a: a
        la, fa = pick(lam).reshape(B * w, 2, C, -1), pick(spec).reshape(B * w, 2, C, -1)
        flat = lambda a: pick(a[:, sl]).reshape((B * w,) + a.shape[2:])
        r = flat(params["rates"])
        lo, so, ls, f = _combine(pl, "swap", la[:, 0], fa[:, 0], la[:, 1], fa[:, 1],
                                 flat(params["cutoff"]), r[:, 0], r[:, 1], flat(params["p_swap"]),
                                 flat(params["bsm"]), same=False, root=h == depth)
        if w < m:
            put = jax.vmap(lambda x, i, v: x.at[i].set(v))
            lo = put(lam[:, :, 0], idx, lo.reshape((B, w) + lo.shape[1:])).reshape((B * m,) + lo.shape[1:])
            so = put(spec[:, :, 0], idx, so.reshape((B, w) + so.shape[1:])).reshape((B * m,) + so.shape[1:])
        lam, spec = lo, so
        if h < depth:
            deficit = jnp.maximum(deficit, jnp.max(_node_deficit(pl, lam).reshape(B, m), axis=-1))
    info = {"p_gen": params["p_leaf"].reshape(B, -1), "invalid": jnp.zeros((B,), bool)}
    return _summarize(pl, info, lam, ls, f, deficit)


def layout_arrays(lay: Layout) -> dict:
    """:class:`Layout` as a dict of NumPy arrays (rows of several trees stack)."""
    return dict(leaf_seg=lay.leaf_seg, node_real=lay.node_real, node_station=lay.node_station,
                node_spans=lay.node_spans)


def chain_eval_padded(depth: int, t_trunc: int, scheme: str, hw: dict, row: dict, lengths, tau,
                      widths: tuple | None = None):
    """:class:`.chain.ChainFigures` of one physical design (as :func:`.chain.chain_eval`)
    through the padded tree.

    ``row``: the design's layout arrays plus ``seg_mask`` (S_max,) (1 for a real segment),
    ``st_rates`` (S_max + 1, 4) Walsh memory rates per second, ``st_pswap``, ``st_bsm`` per
    station; ``lengths`` (S_max,) km (0 past the real segments); ``tau`` (K_max,) cut-offs
    in steps per real node (post-order); ``widths`` as in :func:`evaluate_padded`."""
    from .chain import link_model
    from .figures import chain_figures

    link = link_model(scheme, hw, lengths)
    mask = row["seg_mask"] > 0
    clock = jnp.max(jnp.where(mask, link.duration_s, 0.0), axis=-1)
    p = jnp.where(mask, link.p_gen, 1.0)
    prm = node_params(row, p, link.lam0, row["st_rates"] * clock, row["st_pswap"], row["st_bsm"], tau)
    r = evaluate_padded(depth, t_trunc, {k: v[None] for k, v in prm.items()}, widths)
    return chain_figures(r.key_fraction_smooth[0], r.mean_state[0], r.mean_time[0], r.coverage[0],
                         clock, link.p_gen, hw.get("memories", 1.0), hw.get("modes", 1.0))


def depth_of(n: int) -> int:
    """Depth of a balanced swap tree over ``n`` segments."""
    return max(0, math.ceil(math.log2(n)))
