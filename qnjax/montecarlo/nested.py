"""Nested policy: Monte Carlo of the exact engine's model (binary swap/distill trees with cut-offs).

The model (Brand, Coopmans & Elkouss, IEEE JSAC 2020; Li, Coopmans & Elkouss, IEEE TQE 2021)
is that of :func:`qnjax.delivery`: elementary link ``i`` is ready after a geometric number
of steps with parameter ``p_gen_i``; a node starts both inputs from scratch; the input that
finished first waits ``Δ = |tA − tB|`` steps and decays (Werner ``w e^{−Δ/t_coh}``,
Bell-diagonal: Walsh coordinates times ``e^{−Δ·rate}``); if ``Δ > τ`` the waiting link is
discarded at ``min(tA, tB) + τ`` and the node restarts; otherwise the swap (``p_swap``) or
distillation (BBPSSW / DEJMPS success probability) runs at ``max(tA, tB)`` and failure
restarts it. A distill node uses two independent copies of its sub-tree.

Algorithm (no loop over trajectories or time steps): every node owns an *attempt stream*.
Attempts are i.i.d., so a node's outputs are the renewal cycles of its stream (runs of
failed attempts closed by a success). One jitted *chunk* processes, per design point, up to
``A`` attempts per node instance, bottom-up: leaf inputs are sampled directly as geometric
waiting times; an internal node pairs the next outputs of its two children in order; the
cycle times are segment sums (``cumsum``) and the outputs are compacted into the node's
buffer. A trailing incomplete cycle and unconsumed child outputs carry over to the next
chunk, so the sequence of root outputs is exactly an i.i.d. sample of the model (no
truncation of long cycles, no length-biased selection). Memory per chunk is fixed.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ..protocol import Distill, Link, Swap, internal_nodes, levels_to_tree, n_segments, parse_levels, validate_tree
from . import _params as P
from ._common import (BIG_TIME, Moments, Progress, build_result, check_samples, distill_internal,
                      fidelity_of, geometric, key_from_seed, pick_dtype, pow2_at_least, to_internal,
                      uniform_open)
from ..states import _H_NP


# ---------------------------------------------------------------- static structure

def _node_levels(tree):
    """Level index (position in the level list) of every internal node, post-order."""
    out = []

    def visit(n):
        if isinstance(n, Link):
            return -1
        if isinstance(n, Swap):
            a = visit(n.left)
            visit(n.right)
        else:
            a = visit(n.child)
        out.append(a + 1)
        return a + 1

    visit(tree)
    return tuple(out)


def _instances(tree):
    """Expand distill nodes into two independent sub-tree copies.

    Returns a post-order tuple of ``(orig_node_index, kind, left_ref, right_ref)`` with refs
    ``("link", segment)`` or ``("inst", instance_index)``; the last instance is the root.
    """
    nodes = internal_nodes(tree)
    index = {id(n): i for i, n in enumerate(nodes)}
    out = []

    def build(n):
        if isinstance(n, Link):
            return ("link", n.segment)
        if isinstance(n, Swap):
            left, right = build(n.left), build(n.right)
            kind = "swap"
        else:
            left, right = build(n.child), build(n.child)
            kind = "distill"
        out.append((index[id(n)], kind, left, right))
        return ("inst", len(out) - 1)

    build(tree)
    return tuple(out)


def _resolve(protocol):
    if isinstance(protocol, (Link, Swap, Distill)):
        return validate_tree(protocol), None
    levels = parse_levels(protocol)
    return levels_to_tree(levels), levels


# ---------------------------------------------------------------- one node's attempt stream

def _node_step(tA, sA, avA, tB, sB, avB, tau, p_sw, rate, u, partial, room, kind, bell):
    """Run up to ``A`` attempts; return compacted outputs and bookkeeping (one design)."""
    A = tA.shape[0]
    j = jnp.arange(A, dtype=jnp.int32)
    m = jnp.minimum(avA, avB)
    valid = j < m
    delta = jnp.abs(tA - tB)
    cut = delta > tau
    tmin, tmax = jnp.minimum(tA, tB), jnp.maximum(tA, tB)
    dur = jnp.where(cut, tmin + tau, tmax)
    f = jnp.exp(-delta.astype(sA.dtype)[:, None] * rate)  # decay of the waiting input only
    sA2 = jnp.where((tA < tB)[:, None], sA * f, sA)
    sB2 = jnp.where((tB < tA)[:, None], sB * f, sB)
    if kind == "swap":
        p_op, s_out = p_sw, sA2 * sB2
    else:
        p_op, s_out = distill_internal(sA2, sB2, bell)
    succ = valid & ~cut & (u < p_op)
    c = jnp.cumsum(jnp.where(valid, dur, 0))
    si = succ.astype(jnp.int32)
    excl = jnp.cumsum(si) - si                      # successes strictly before j = output rank
    live = excl < room                              # attempts performed this chunk
    consumed = jnp.sum(valid & live, dtype=jnp.int32)
    accept = succ & live
    n_succ = jnp.sum(si)
    n_new = jnp.minimum(n_succ, room)
    last_incl = jax.lax.cummax(jnp.where(succ, c, 0))
    prev = jnp.concatenate([jnp.zeros((1,), c.dtype), last_incl[:-1]])
    t_out = c - prev + jnp.where(excl == 0, partial, 0)
    stopped = n_succ >= room
    tail = c[-1] - last_incl[-1] + jnp.where(n_succ == 0, partial, 0)
    new_partial = jnp.where(room <= 0, partial, jnp.where(stopped, 0, tail))
    return t_out, s_out, accept, excl, n_new, consumed, new_partial


def _pop(buf_t, buf_s, n, k):
    """Drop the first ``k`` entries of a buffer (shift left)."""
    A = buf_t.shape[0]
    idx = jnp.minimum(jnp.arange(A, dtype=jnp.int32) + k, A - 1)
    return buf_t[idx], buf_s[idx], n - k


def _chunk_one(key, prm, st, *, insts, bell, A, keep):
    """One chunk for one design point. ``prm``/``st`` are dicts of per-design arrays."""
    n_inst = len(insts)
    buf_t, buf_s, nbuf, partial = list(st["buf_t"]), list(st["buf_s"]), list(st["nbuf"]), list(st["partial"])
    dtype = prm["s0"].dtype
    root_out = None
    for i, (orig, kind, lref, rref) in enumerate(insts):
        k_i = jax.random.fold_in(key, i)
        sides = []
        for side, ref in enumerate((lref, rref)):
            if ref[0] == "link":
                seg = ref[1]
                u = uniform_open(jax.random.fold_in(k_i, side), (A,), dtype)
                t = geometric(u, prm["log_q"][seg])
                s = jnp.broadcast_to(prm["s0"][seg], (A, prm["s0"].shape[-1]))
                sides.append((t, s, jnp.int32(A)))
            else:
                c = ref[1]
                sides.append((buf_t[c], buf_s[c], nbuf[c]))
        u_op = uniform_open(jax.random.fold_in(k_i, 2), (A,), dtype)
        is_root = i == n_inst - 1
        room = jnp.int32(A) if is_root else jnp.int32(A) - nbuf[i]
        t_out, s_out, accept, rank, n_new, consumed, new_partial = _node_step(
            *sides[0], *sides[1], prm["tau"][orig], prm["p_swap"][orig], prm["rate"][orig],
            u_op, partial[i], room, kind, bell)
        partial[i] = new_partial
        for ref in (lref, rref):
            if ref[0] == "inst":
                c = ref[1]
                buf_t[c], buf_s[c], nbuf[c] = _pop(buf_t[c], buf_s[c], nbuf[c], consumed)
        base = jnp.int32(0) if is_root else nbuf[i]
        idx = jnp.where(accept, base + rank, A)
        if is_root:
            root_out = (jnp.zeros((A,), jnp.int32).at[idx].set(t_out, mode="drop"),
                        jnp.zeros((A, s_out.shape[-1]), dtype).at[idx].set(s_out, mode="drop"),
                        n_new)
        else:
            buf_t[i] = buf_t[i].at[idx].set(t_out, mode="drop")
            buf_s[i] = buf_s[i].at[idx].set(s_out, mode="drop")
            nbuf[i] = nbuf[i] + n_new

    # ---- root outputs -> statistics (first `quota` trajectories only)
    t_r, s_r, n_r = root_out
    done = st["done"]
    r = jnp.arange(A, dtype=jnp.int32)
    g = done + r
    take = (r < n_r) & (g < prm["quota"])
    over = t_r > prm["max_time"]
    deliv = take & ~over
    # root cycle still running past the cap -> that trajectory is reported undelivered
    n_take = jnp.sum(take, dtype=jnp.int32)
    pr = partial[-1]
    stuck = (pr > prm["max_time"]) & (done + n_take < prm["quota"])
    partial[-1] = jnp.where(stuck, 0, pr)
    undelivered = jnp.sum(take & over, dtype=jnp.int32) + stuck.astype(jnp.int32)

    fid = fidelity_of(s_r, bell)
    tf = t_r.astype(dtype)
    cnt = jnp.sum(deliv, dtype=jnp.int32)
    cntf = jnp.maximum(cnt, 1).astype(dtype)
    mt = jnp.sum(jnp.where(deliv, tf, 0)) / cntf
    mf = jnp.sum(jnp.where(deliv, fid, 0)) / cntf
    stats = dict(
        n=cnt, undelivered=undelivered,
        t_shift=mt, t_s1=jnp.sum(jnp.where(deliv, tf - mt, 0)), t_s2=jnp.sum(jnp.where(deliv, (tf - mt) ** 2, 0)),
        f_shift=mf, f_s1=jnp.sum(jnp.where(deliv, fid - mf, 0)), f_s2=jnp.sum(jnp.where(deliv, (fid - mf) ** 2, 0)),
        state_sum=jnp.sum(jnp.where(deliv[:, None], s_r, 0), axis=0),
    )
    kidx = jnp.where(take & (g < keep), g, keep)
    keep_t = st["keep_t"].at[kidx].set(jnp.where(over, -1, t_r), mode="drop")
    keep_f = st["keep_f"].at[kidx].set(jnp.where(over, jnp.nan, fid), mode="drop")
    new_st = dict(buf_t=jnp.stack(buf_t), buf_s=jnp.stack(buf_s), nbuf=jnp.stack(nbuf),
                  partial=jnp.stack(partial), done=done + n_take + stuck.astype(jnp.int32),
                  keep_t=keep_t, keep_f=keep_f)
    return new_st, stats


@functools.lru_cache(maxsize=64)
def _compiled(insts, bell, A, keep):
    one = functools.partial(_chunk_one, insts=insts, bell=bell, A=A, keep=keep)

    def chunk(design_keys, chunk_index, prm, st):
        keys = jax.vmap(lambda k: jax.random.fold_in(k, chunk_index))(design_keys)
        return jax.vmap(one)(keys, prm, st)

    return jax.jit(chunk, donate_argnums=(3,))


# ---------------------------------------------------------------- public entry point

def simulate_nested(
    protocol,
    *,
    p_gen,
    w0=None,
    lam0=None,
    p_swap=1.0,
    t_coh=np.inf,
    memory_rates=None,
    cutoff=None,
    samples: int = 100_000,
    seed=0,
    max_time: Optional[int] = None,
    keep: int = 10_000,
    chunk_size: Optional[int] = None,
    memory_budget: float = 2.0 ** 28,
    dtype=None,
    progress=None,
):
    """Monte Carlo of a nested swap/distill protocol with memory cut-offs.

    Args:
        protocol: a level list (``"swap,distill,swap"`` or a tuple of names) over
            ``2**n_swap`` identical segments, or a :class:`~qnjax.protocol.Link` /
            ``Swap`` / ``Distill`` tree.
        p_gen: success probability of one elementary-link attempt, in (0, 1]. Level
            protocols: per design (leading batch axes). Trees: a trailing axis of one
            entry per segment (or one value for all).
        w0: initial Werner parameter in [−1/3, 1] (Werner mode; default 1). Same shape
            rules as ``p_gen``.
        lam0: initial Bell-diagonal state ``(..., 4)`` instead of ``w0`` (Bell mode;
            distillation is DEJMPS there, BBPSSW in Werner mode).
        p_swap: swap success probability in (0, 1]; trees: per internal node (post-order).
        t_coh: coherence time of a waiting pair in steps (``w e^{−Δ/t_coh}``); ``inf`` = no
            decay; trees: per internal node.
        memory_rates: Bell mode only: decay rates per step of the four Walsh coordinates of a
            waiting pair ``(..., 4)`` (first entry 0; see
            :func:`qnjax.memory_walsh_rates`, rates of the two qubits add). Overrides
            ``t_coh``, which stands for rates ``(0, 1, 1, 1)/t_coh``.
        cutoff: memory cut-off in steps; a trailing axis of one entry per level (level
            protocols) or per internal node (trees); ``inf`` or ``None`` = no cut-off.
        samples: trajectories per design point.
        seed: int or JAX key; the same seed gives the same numbers (CPU and GPU, float64).
        max_time: slot cap; a trajectory not delivered by then is counted in
            ``undelivered`` (not in the means). ``None`` = no cap.
        keep: delivery-time / Werner samples kept per design point.
        chunk_size: attempts per node and chunk (default from ``memory_budget`` bytes).
        dtype: float32 or float64 (default: JAX's default float).
        progress: optional ``callback(done, total)`` called after every chunk.

    Returns:
        :class:`~qnjax.montecarlo.MonteCarloResult` with the design batch shape.
    """
    samples = check_samples(samples)
    dtype = pick_dtype(dtype)
    tree, levels = _resolve(protocol)
    nodes = internal_nodes(tree)
    n_int, n_seg = len(nodes), n_segments(tree)
    if w0 is not None and lam0 is not None:
        raise ValueError("give either w0 (Werner mode) or lam0 (Bell-diagonal mode), not both")
    bell = lam0 is not None
    if memory_rates is not None and not bell:
        raise ValueError("memory_rates needs Bell-diagonal mode (lam0)")
    pg = P.prob(p_gen, "p_gen")
    ps = P.prob(p_swap, "p_swap")
    tc = P.positive(t_coh, "t_coh")
    s0 = P.bell(lam0, "lam0") if bell else P.werner(1.0 if w0 is None else w0, "w0")
    mr = P.nonneg(memory_rates, "memory_rates") if memory_rates is not None else None
    n_cut = len(levels) if levels is not None else n_int
    cut = P.cutoffs(cutoff, "cutoff", n_cut)
    if levels is not None:
        # per-design scalars; expand to segments / nodes
        lv = np.asarray(_node_levels(tree))
        pg = pg[..., None] * np.ones(n_seg)
        s0 = (s0[..., None, :] if bell else s0[..., None]) * (np.ones((n_seg, 1)) if bell else np.ones(n_seg))
        ps = ps[..., None] * np.ones(n_int)
        tc = tc[..., None] * np.ones(n_int)
        if mr is not None:
            mr = mr[..., None, :] * np.ones((n_int, 1))
        cut = cut[..., lv]
    else:
        pg = P.trailing(pg, "p_gen", n_seg)
        s0 = P.trailing(s0, "lam0" if bell else "w0", n_seg, extra=1 if bell else 0)
        ps = P.trailing(ps, "p_swap", n_int)
        tc = P.trailing(tc, "t_coh", n_int)
        if mr is not None:
            mr = P.trailing(mr, "memory_rates", n_int, extra=1)
    if mr is None:
        r = 1.0 / tc
        mr = np.stack([np.zeros_like(r), r, r, r], -1) if bell else r[..., None]
    elif mr.shape[-1] != 4:
        raise ValueError(f"memory_rates must have a last axis of 4; got shape {mr.shape}")
    if bell:
        s0 = s0 @ _H_NP
    else:
        s0 = s0[..., None]
    kinds = np.array([isinstance(n, Swap) for n in nodes])
    ps = np.where(kinds, ps, 1.0)
    with np.errstate(divide="ignore"):
        log_q = np.log1p(-pg)
    arrays = dict(log_q=log_q, s0=s0, p_swap=ps, rate=mr, tau=cut)
    cores = dict(log_q=1, s0=2, p_swap=1, rate=2, tau=1)
    batch, flat = P.broadcast_designs(arrays, cores)
    D = flat["log_q"].shape[0]
    s = flat["s0"].shape[-1]
    cap = BIG_TIME if max_time is None else int(max_time)
    if cap < 1:
        raise ValueError(f"max_time must be a positive number of steps; got {max_time!r}")

    insts = _instances(tree)
    n_inst = len(insts)
    keep = int(max(0, min(keep, samples)))
    if chunk_size is None:
        per = D * n_inst * (4 + 8 * s) * 12 + 1
        est = samples * (3 * 2 ** (len(insts).bit_length())) + 1024
        A = pow2_at_least(min(memory_budget / per, est), 256, 2 ** 20)
    else:
        A = int(chunk_size)
    prm = dict(
        log_q=jnp.asarray(flat["log_q"], dtype), s0=jnp.asarray(flat["s0"], dtype),
        p_swap=jnp.asarray(flat["p_swap"], dtype), rate=jnp.asarray(flat["rate"], dtype),
        tau=jnp.asarray(np.where(np.isinf(flat["tau"]), BIG_TIME, flat["tau"]), jnp.int32),
        quota=jnp.full((D,), samples, jnp.int32), max_time=jnp.full((D,), cap, jnp.int32),
    )
    st = dict(
        buf_t=jnp.zeros((D, n_inst, A), jnp.int32), buf_s=jnp.zeros((D, n_inst, A, s), dtype),
        nbuf=jnp.zeros((D, n_inst), jnp.int32), partial=jnp.zeros((D, n_inst), jnp.int32),
        done=jnp.zeros((D,), jnp.int32), keep_t=jnp.full((D, keep), -1, jnp.int32),
        keep_f=jnp.full((D, keep), jnp.nan, dtype),
    )
    base = key_from_seed(seed)
    dkeys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(D, dtype=jnp.uint32))
    fn = _compiled(insts, bell, A, keep)
    tmom, fmom = Moments((D,)), Moments((D,))
    state_sum = np.zeros((D, s), np.float64)
    undelivered = np.zeros((D,), np.int64)
    prog = Progress(progress, samples * D)
    chunk = 0
    while True:
        st, stats = fn(dkeys, jnp.uint32(chunk), prm, st)
        stats = jax.device_get(stats)
        tmom.add_shifted(stats["n"], stats["t_s1"], stats["t_s2"], stats["t_shift"])
        fmom.add_shifted(stats["n"], stats["f_s1"], stats["f_s2"], stats["f_shift"])
        state_sum += np.asarray(stats["state_sum"], np.float64)
        undelivered += np.asarray(stats["undelivered"], np.int64)
        done = np.asarray(st["done"])
        prog(done.sum())
        chunk += 1
        if np.all(done >= samples):
            break
    return build_result("nested", batch, tmom, fmom, state_sum, bell, undelivered,
                        np.asarray(st["keep_t"]), np.asarray(st["keep_f"], np.float64), dtype)
