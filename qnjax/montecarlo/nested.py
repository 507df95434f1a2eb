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
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from jaxtyping import Array, Float

from ..chain import PHYSICAL, Chain, rename_deprecated, resolve
from ..protocol import Distill, Link, Node, Swap, internal_nodes, levels_to_tree, parse_levels, validate_tree
from . import _params as P
from ._common import (Moments, MonteCarloResult, Progress, build_result, check_memory, check_samples,
                      check_seed, design_words, fidelity_of, geometric, pick_dtype, pow2_at_least, sub_words,
                      uniform_open)
from ._estimate import check_range, nested_estimate, node_levels, overflow_message, time_dtype, time_limit
from ._stream import flat_set, node_step, pop, times_from_ends


MAX_INSTANCES = 1024  # node instances (distill levels double the sub-tree): one traced step each

# ---------------------------------------------------------------- static structure

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


def _count_instances(tree) -> int:
    """Number of node instances of :func:`_instances` without building them."""
    if isinstance(tree, Link):
        return 0
    if isinstance(tree, Swap):
        return 1 + _count_instances(tree.left) + _count_instances(tree.right)
    return 1 + 2 * _count_instances(tree.child)


def _resolve(protocol):
    if isinstance(protocol, (Link, Swap, Distill)):
        return validate_tree(protocol), None
    levels = parse_levels(protocol)
    if 2 ** len(levels) - 1 > MAX_INSTANCES:  # every level doubles the instances below it
        raise ValueError(f"protocol expands to {2 ** len(levels) - 1} node instances ({len(levels)} levels); "
                         f"simulate_nested supports at most {MAX_INSTANCES} (10 levels)")
    return levels_to_tree(levels), levels


# ---------------------------------------------------------------- chunk (all node instances)

def _capacities(insts, A, shrink):
    """Static sizes per node instance: ``att`` attempts per chunk and ``cap`` output buffer.

    A node over two links runs ``A`` attempts; a node over sub-trees runs as many as its
    smaller child buffer holds. Non-root buffers hold ``shrink`` times the node's attempts:
    every level succeeds at most once per attempt, so upper levels see fewer pairs and their
    arrays shrink with them. Any sizes give the same (exact) model; they only trade idle
    lanes against chunks that stop early once a buffer is full.
    """
    att, cap = [], []
    for i, (_, _, lref, rref) in enumerate(insts):
        sizes = [cap[ref[1]] for ref in (lref, rref) if ref[0] == "inst"]
        a = min(sizes) if sizes else A
        att.append(a)
        cap.append(a if i == len(insts) - 1 else max(1, int(a * shrink)))
    return tuple(att), tuple(cap)


def _chunk(words, chunk_index, prm, st, *, insts, bell, A, keep, shrink):
    """One chunk for all design points (``words``: (D, 2) uint32 stream keys)."""
    n_inst = len(insts)
    att, cap = _capacities(insts, A, shrink)
    D = words.shape[0]
    buf_t, buf_s = list(st["buf_t"]), list(st["buf_s"])
    nbuf, partial = list(st["nbuf"].T), list(st["partial"].T)
    dtype = prm["s0"].dtype
    tdt = prm["tau"].dtype                               # int64 steps with x64, else int32
    t_max = prm["t_max"][:, None]
    ovf = jnp.zeros((D,), bool)                          # a time left the counters' range
    s = prm["s0"].shape[-1]
    cw = sub_words(words, chunk_index)                  # (D, 2) per chunk
    root_out = None
    for i, (orig, kind, lref, rref) in enumerate(insts):
        a = att[i]
        ctr = jnp.arange(a, dtype=jnp.uint32)[None, :]
        sides = []
        for side, ref in enumerate((lref, rref)):
            if ref[0] == "link":
                seg = ref[1]
                w = sub_words(cw, 3 * i + side)[:, None, :]
                t = geometric(uniform_open(w, ctr, dtype), prm["log_q"][:, seg, None]).astype(tdt)
                sv = jnp.broadcast_to(prm["s0"][:, seg, None, :], (D, a, s))
                sides.append((t, sv, jnp.full((D,), a, jnp.int32)))
            else:
                c = ref[1]
                sides.append((buf_t[c][:, :a], buf_s[c][:, :a], jnp.minimum(nbuf[c], a)))
        u_op = uniform_open(sub_words(cw, 3 * i + 2)[:, None, :], ctr, dtype)
        is_root = i == n_inst - 1
        room = jnp.full((D,), a, jnp.int32) if is_root else cap[i] - nbuf[i]
        c_end, s_out, accept, rank, n_new, consumed, new_partial, wrapped = node_step(
            *sides[0], *sides[1], prm["tau"][:, orig], prm["p_swap"][:, orig],
            prm["rate"][:, orig], u_op, partial[i], room, kind, bell)
        old_partial, partial[i] = partial[i], new_partial
        ovf = ovf | wrapped | (new_partial < 0) | (new_partial >= t_max[:, 0])
        for ref in (lref, rref):
            if ref[0] == "inst":
                c = ref[1]
                buf_t[c], buf_s[c], nbuf[c] = pop(buf_t[c], buf_s[c], nbuf[c], consumed)
        base = jnp.zeros((D,), jnp.int32) if is_root else nbuf[i]
        idx = jnp.where(accept, base[:, None] + rank, cap[i])
        tgt_t = jnp.zeros((D, a), c_end.dtype) if is_root else buf_t[i].astype(c_end.dtype)
        tgt_s = jnp.zeros((D, a, s), dtype) if is_root else buf_s[i]
        t_new = times_from_ends(flat_set(tgt_t, idx, c_end), base, n_new, old_partial).astype(tdt)
        ovf = ovf | jnp.any((t_new < 0) | (t_new >= t_max), axis=-1)
        s_new = flat_set(tgt_s, idx, s_out)
        if is_root:
            root_out = (t_new, s_new, n_new)
        else:
            buf_t[i], buf_s[i], nbuf[i] = t_new, s_new, nbuf[i] + n_new

    # ---- root outputs -> statistics (first `quota` trajectories only)
    t_r, s_r, n_r = root_out
    done = st["done"]
    r = jnp.arange(att[-1], dtype=jnp.int32)[None, :]
    g = done[:, None] + r
    take = (r < n_r[:, None]) & (g < prm["quota"][:, None])
    over = t_r > prm["max_time"][:, None]
    deliv = take & ~over
    # a root cycle still running past the cap: that trajectory is reported undelivered
    n_take = jnp.sum(take, axis=-1, dtype=jnp.int32)
    pr = partial[-1]
    stuck = (pr > prm["max_time"]) & (done + n_take < prm["quota"])
    partial[-1] = jnp.where(stuck, 0, pr)
    undelivered = jnp.sum(take & over, axis=-1, dtype=jnp.int32) + stuck.astype(jnp.int32)

    fid = fidelity_of(s_r, bell)
    tf = t_r.astype(dtype)
    cnt = jnp.sum(deliv, axis=-1, dtype=jnp.int32)
    cntf = jnp.maximum(cnt, 1).astype(dtype)
    mt = jnp.sum(jnp.where(deliv, tf, 0), -1) / cntf
    mf = jnp.sum(jnp.where(deliv, fid, 0), -1) / cntf
    dt = jnp.where(deliv, tf - mt[:, None], 0)
    df = jnp.where(deliv, fid - mf[:, None], 0)
    stats = dict(
        n=cnt, undelivered=undelivered, overflow=ovf,
        t_shift=mt, t_s1=dt.sum(-1), t_s2=(dt * dt).sum(-1),
        f_shift=mf, f_s1=df.sum(-1), f_s2=(df * df).sum(-1),
        state_sum=jnp.sum(jnp.where(deliv[..., None], s_r, 0), axis=1),
    )
    if keep:
        kidx = jnp.where(take & (g < keep), g, keep)
        Dk = jnp.arange(D, dtype=jnp.int32)[:, None]
        flat = jnp.where(kidx < keep, kidx + keep * Dk, D * keep).reshape(-1)
        keep_t = st["keep_t"].reshape(-1).at[flat].set(jnp.where(over, -1, t_r).reshape(-1), mode="drop").reshape(D, keep)
        keep_f = st["keep_f"].reshape(-1).at[flat].set(jnp.where(over, jnp.nan, fid).reshape(-1), mode="drop").reshape(D, keep)
    else:
        keep_t, keep_f = st["keep_t"], st["keep_f"]
    new_st = dict(buf_t=tuple(buf_t), buf_s=tuple(buf_s), nbuf=jnp.stack(nbuf, -1),
                  partial=jnp.stack(partial, -1), done=done + n_take + stuck.astype(jnp.int32),
                  keep_t=keep_t, keep_f=keep_f)
    return new_st, stats


@functools.lru_cache(maxsize=64)
def _compiled(insts, bell, A, keep, shrink):
    return jax.jit(functools.partial(_chunk, insts=insts, bell=bell, A=A, keep=keep, shrink=shrink),
                   donate_argnums=(3,))


# ---------------------------------------------------------------- public entry point

def simulate_nested(
    protocol: Union[str, tuple, list, Node, None] = None,
    *,
    chain: Optional[Chain] = None,
    p_gen: Float[Array, "*batch"] | float | None = None,
    w0: Float[Array, "*batch"] | float | None = None,
    lam0: Float[Array, "*batch 4"] | None = None,
    p_swap: Float[Array, "*batch"] | float = 1.0,
    t_coh: Float[Array, "*batch"] | float = np.inf,
    rates: Float[Array, "*batch"] | None = None,
    cutoff: Float[Array, "*batch K"] | None = None,
    samples: int = 100_000,
    seed=0,
    max_time: Optional[int] = None,
    keep: int = 10_000,
    chunk_size: Optional[int] = None,
    shrink: float = 0.5,
    memory_budget: Optional[float] = None,
    max_memory: Optional[float] = None,
    dtype=None,
    progress=None,
    **deprecated,
) -> MonteCarloResult:
    """Monte Carlo of a nested swap/distill protocol with memory cut-offs.

    The physical keywords have the names, ranges, defaults and shapes of
    :func:`qnjax.delivery` (see :mod:`qnjax.chain`); ``chain=`` takes a :class:`qnjax.Chain`
    instead of ``protocol`` and them. Only ``bsm_noise`` is exact-engine only.

    Args:
        protocol: a level list (``"swap,distill,swap"`` or a tuple of names) over
            ``2**n_swap`` identical segments, or a :class:`~qnjax.protocol.Link` /
            ``Swap`` / ``Distill`` tree.
        chain: a :class:`qnjax.Chain` instead of ``protocol`` and the physical keywords.
        p_gen: success probability of one elementary-link attempt, in (0, 1]; Monte Carlo
            needs ``p_gen >= 1e-6``. Level protocols: per design (leading batch axes). Trees: a
            trailing axis of one entry per segment (or one value for all).
        w0: initial Werner parameter in [−1/3, 1] (Werner mode; default 1). Same shape
            rules as ``p_gen``.
        lam0: initial Bell-diagonal state ``(..., 4)`` instead of ``w0`` (Bell mode;
            distillation is DEJMPS there, BBPSSW in Werner mode).
        p_swap: swap success probability in (0, 1]; trees: per internal node (post-order).
        t_coh: coherence time of a waiting pair in steps (``w e^{−Δ/t_coh}``); ``inf`` = no
            decay; trees: per internal node.
        rates: instead of ``t_coh``, decay rates per step of a waiting pair (as in
            :func:`qnjax.delivery`): levels ``(...)`` (Werner) or ``(..., 4)`` Walsh rates
            (Bell mode; see :func:`qnjax.memory_walsh_rates`, the rates of the two qubits
            add); trees ``(..., K, 2)`` or ``(..., K, 2, 4)`` for the waiting left / right
            child of each internal node. ``t_coh`` stands for ``1/t_coh`` on every
            coordinate but the first.
        cutoff: memory cut-off in steps; a trailing axis of one entry per level (level
            protocols) or per internal node (trees); ``inf`` or ``None`` = no cut-off.
        samples: trajectories per design point, at most ``2**30``.
        seed: int in ``[0, 2**64 − 1]`` or JAX key; the same seed gives the same numbers
            (CPU and GPU, float64).
        max_time: slot cap; a trajectory not delivered by then is counted in
            ``undelivered`` (not in the means). ``None`` = no cap.
        keep: delivery-time / Werner samples kept per design point.
        chunk_size: attempts per chunk of a node over two links (default from
            ``memory_budget`` bytes: 256 MiB on CPU, 8 GiB on accelerators, at most
            2**14 on CPU and 2**23 elsewhere).
        shrink: output buffer of a node relative to its attempts (upper levels work on
            ``shrink``-times smaller arrays; any value in (0, 1] gives the same model,
            only the speed differs).
        max_memory: bytes the run may use (default: half the physical memory on CPU, 90 % of
            an accelerator's); a run estimated to need more is refused before allocating.
        dtype: float32 or float64 (default: JAX's default float).
        progress: optional ``callback(done, total)`` called after every chunk.

    Protocols expanding to more than 1024 node instances (a distill level doubles its
    sub-tree) are refused with a ``ValueError``.

    Delivery times are counted in int64 steps up to ``2**40`` (int32 up to ``2**30`` without
    ``jax_enable_x64``): settings whose estimated mean delivery time exceeds 1/64 of that
    (e.g. cut-off 0, mean ``1/p_gen²`` steps, with ``p_gen`` below about ``8e-6``) are refused
    before running, and a run in which any time leaves the range raises ``ValueError``.

    Returns:
        :class:`~qnjax.DeliveryResult` (a ``MonteCarloResult``) with the design batch shape.
    """
    given = rename_deprecated(dict(p_gen=p_gen, w0=w0, lam0=lam0, p_swap=p_swap, t_coh=t_coh, rates=rates,
                                   cutoff=cutoff, **deprecated))
    unknown = set(given) - set(PHYSICAL)
    if unknown:
        raise TypeError(f"simulate_nested got unexpected keyword(s) {sorted(unknown)}")
    protocol, kw = resolve(protocol, chain, given, simulate_nested.__kwdefaults__, "simulate_nested")
    if kw.get("bsm_noise") is not None:
        raise ValueError("simulate_nested has no bsm_noise (a noisy BSM is an exact-engine option)")
    if kw["p_gen"] is None:
        raise TypeError("simulate_nested needs p_gen (success probability per attempt)")
    samples = check_samples(samples)
    seed = check_seed(seed)
    dtype = pick_dtype(dtype)
    tree, levels = _resolve(protocol)
    bell, batch, flat = P.nested_arrays(tree, levels, node_levels(tree), p_gen=kw["p_gen"], w0=kw["w0"],
                                        lam0=kw["lam0"], p_swap=kw["p_swap"], t_coh=kw["t_coh"],
                                        rates=kw["rates"], cutoff=kw["cutoff"])
    D = flat["log_q"].shape[0]
    s = flat["s0"].shape[-1]
    t_lim, tdt = time_limit(), time_dtype()
    cap = t_lim if max_time is None else int(max_time)
    if cap < 1:
        raise ValueError(f"max_time must be a positive number of steps; got {max_time!r}")
    cap = min(cap, t_lim)  # a time beyond the counters' range is refused below, never wrapped
    est, _, dur = nested_estimate(tree, flat["log_q"], flat["p_swap"], flat["tau"],
                                   None if bell else flat["s0"][..., 0])
    dur = check_range(float(np.max(est)), cap, float(np.max(dur)))
    if not 0 < shrink <= 1:
        raise ValueError(f"shrink must lie in (0, 1]; got {shrink!r}")

    n_inst = _count_instances(tree)
    if n_inst > MAX_INSTANCES:
        raise ValueError(f"protocol expands to {n_inst} node instances (each distill level doubles its "
                         f"sub-tree); simulate_nested supports at most {MAX_INSTANCES}")
    insts = _instances(tree)
    keep = int(max(0, min(keep, samples)))
    if chunk_size is None:
        per = D * n_inst * (4 + 8 * s) * 12 + 1
        est_n = samples * (3 * 2 ** (len(insts).bit_length())) + 1024
        # CPU: chunks that stay in cache are fastest; accelerators want wide arrays
        cpu = jax.default_backend() == "cpu"
        top = 2 ** 14 if cpu else 2 ** 23
        if memory_budget is None:
            memory_budget = 2.0 ** 28 if cpu else 2.0 ** 33
        A = pow2_at_least(min(memory_budget / per, est_n, top), 256, 2 ** 23)
    else:
        A = int(chunk_size)
        if not 1 <= A <= 2 ** 23:
            raise ValueError(f"chunk_size must lie in [1, 2**23]; got {chunk_size!r}")
    if tdt == np.int32 and chunk_size is None:  # a chunk's running time (A attempts) well inside int32
        A = max(1, min(A, 1 << int(np.log2(max(1.0, 2.0 ** 26 / max(dur, 1.0))))))
    isz = np.dtype(dtype.name).itemsize
    caps0 = _capacities(insts, A, float(shrink))[1]
    need = (A * D * n_inst * (4 + 2 * isz * s) * 12 + sum(caps0) * D * (4 + isz * s)
            + D * keep * (4 + isz) + D * n_inst * 64)
    check_memory(need, max_memory, f"simulate_nested of {D} design(s) ({n_inst} node instances, "
                 f"{A} attempts per chunk)", "lower chunk_size, keep or the batch, or raise max_memory")
    prm = dict(
        log_q=flat["log_q"].astype(dtype.name), s0=flat["s0"].astype(dtype.name),
        p_swap=flat["p_swap"].astype(dtype.name), rate=flat["rate"].astype(dtype.name),
        tau=np.minimum(flat["tau"], t_lim).astype(tdt), t_max=np.full((D,), t_lim, tdt),
        quota=np.full((D,), samples, np.int32), max_time=np.full((D,), cap, tdt),
    )
    npd = np.dtype(dtype.name)
    caps = _capacities(insts, A, float(shrink))[1]
    st = dict(
        buf_t=tuple(np.zeros((D, k), tdt) for k in caps),
        buf_s=tuple(np.zeros((D, k, s), npd) for k in caps),
        nbuf=np.zeros((D, n_inst), np.int32), partial=np.zeros((D, n_inst), tdt),
        done=np.zeros((D,), np.int32), keep_t=np.full((D, keep), -1, tdt),
        keep_f=np.full((D, keep), np.nan, npd),
    )
    prm, st = jax.device_put((prm, st))
    dwords = jax.device_put(design_words(seed, D))
    fn = _compiled(insts, bell, A, keep, float(shrink))
    tmom, fmom = Moments((D,)), Moments((D,))
    state_sum = np.zeros((D, s), np.float64)
    undelivered = np.zeros((D,), np.int64)
    prog = Progress(progress, samples * D)
    prog(0)  # every check has passed: a caller's progress display may start
    chunk = 0
    while True:
        st, stats = fn(dwords, np.uint32(chunk), prm, st)
        stats = jax.device_get(stats)
        if np.any(stats["overflow"]):
            raise ValueError(overflow_message())
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
