"""Swap-asap policy on a linear chain of ``n >= 2`` nodes, time-slotted.

Model (Iñesta, Vardoyan, Scavuzzo & Wehner, npj Quantum Information 9, 46 (2023)): node ``j``
has one memory per side (end nodes one); segment ``i`` joins nodes ``i`` and ``i + 1``. The
chain starts empty. In every slot, in this order:

a. every segment whose two memories (right one of node ``i``, left one of node ``i + 1``) are
   free attempts generation, succeeding with ``p_gen[i]`` and giving a link of age 0 in
   state ``w0[i]`` / ``lam0[i]``;
b. every node that holds two links swaps them, all at once, each succeeding with
   ``p_swap[j]``: a run of links joined by swapping nodes becomes one link whose age is its
   oldest input's age if every swap of the run succeeded, and is lost otherwise (the state is
   the Klein-group convolution of the inputs, an element-wise product in Walsh coordinates);
c. if the end nodes share a link it is delivered; the delivery time is the number of slots
   so far (1 when ``p_gen = p_swap = 1``);
d. every link with age ``>= cutoff`` is discarded;
e. every link ages one slot and decoheres in the two memories that hold it: Werner
   ``w -> w e^{-(1/t_a + 1/t_b)/2}`` for per-node coherence times ``t`` (a homogeneous chain
   decays as ``e^{-age/t_coh}``, the nested engine's convention), Bell-diagonal: Walsh
   coordinates times ``e^{-(r_a + r_b)}`` for per-qubit rates ``r`` per slot.

Implementation: lanes (independent trajectories) × nodes arrays; one ``lax.fori_loop`` over
slots per jitted chunk; runs of links are merged by pointer jumping (``ceil(log2 n)`` gathers).
A lane that finishes starts the next trajectory while the quota lasts (the first ``samples``
trajectories started are the sample, each run to delivery or to the slot cap ``max_time``,
so long trajectories are never selected against).
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxtyping import Array, Float

from .._conventions import WALSH_NP
from ..chain import rename_deprecated
from . import _params as P
from ._common import (BIG_TIME, Moments, MonteCarloResult, Progress, build_result, check_memory, check_samples,
                      check_seed, fidelity_of, design_words, pick_dtype, pow2_at_least, sub_words,
                      uniform_open)

MAX_NODES = 2**14


def _take(x, idx, base):
    """``x[d, l, idx[d, l, j]]`` along the node axis as one flat 1-D gather (the fast path on
    CPU); ``base[d, l] = (d L + l) n``. A trailing state axis of ``x`` is kept."""
    flat = (idx + base).reshape(-1)
    if x.ndim == idx.ndim:
        return x.reshape(-1)[flat].reshape(idx.shape)
    return x.reshape((-1, x.shape[-1]))[flat].reshape(idx.shape + x.shape[-1:])


def _slot(st, u, prm, base, *, n, bell, keep):
    """One slot for all design points and lanes; arrays are (D, L, n[, s])."""
    R, Lp, age, S, t, active = st["R"], st["Lp"], st["age"], st["S"], st["t"], st["active"]
    D = R.shape[0]
    take = functools.partial(_take, base=base)
    nodes = jnp.arange(n, dtype=jnp.int32)
    # start new trajectories in idle lanes while the design's quota lasts
    idle = ~active
    rank = jnp.cumsum(idle.astype(jnp.int32), axis=1) - 1
    start = idle & (st["started"][:, None] + rank < prm["quota"][:, None])
    started = st["started"] + jnp.sum(start, axis=1, dtype=jnp.int32)
    active = active | start
    t = jnp.where(start, 0, t)

    # (a) generation on segments with both memories free
    u_gen, u_sw = u[..., : n - 1], u[..., n - 1:]
    free = (R[..., :-1] < 0) & (Lp[..., 1:] < 0) & active[..., None]
    new = free & (u_gen < prm["p_gen"][:, None, :])
    seg = nodes[:-1]
    R = jnp.concatenate([jnp.where(new, seg + 1, R[..., :-1]), R[..., -1:]], -1)
    Lp = jnp.concatenate([Lp[..., :1], jnp.where(new, seg, Lp[..., 1:])], -1)
    age = jnp.concatenate([jnp.where(new, 0, age[..., :-1]), age[..., -1:]], -1)
    S = jnp.concatenate([jnp.where(new[..., None], prm["s0"][:, None], S[..., :-1, :]), S[..., -1:, :]], -2)

    # (b) swaps at every node holding two links; merge runs by pointer jumping
    J = (Lp >= 0) & (R >= 0)
    ok_sw = u_sw < prm["p_swap"][:, None, :]
    has_r = R >= 0
    Rc = jnp.where(has_r, R, 0)
    nxt = jnp.where(has_r & take(J, Rc), R, -1)
    a_end, a_age, a_S = R, age, S
    a_ok = jnp.where(nxt >= 0, take(ok_sw, Rc), True)
    Lc = jnp.where(Lp >= 0, Lp, 0)
    prv = jnp.where((Lp >= 0) & take(J, Lc), Lp, -1)
    b_head = Lp
    for _ in range(max(1, math.ceil(math.log2(n)))):
        h = nxt >= 0
        g = jnp.where(h, nxt, 0)
        a_end = jnp.where(h, take(a_end, g), a_end)
        a_age = jnp.where(h, jnp.maximum(a_age, take(a_age, g)), a_age)
        a_S = jnp.where(h[..., None], a_S * take(a_S, g), a_S)
        a_ok = jnp.where(h, a_ok & take(a_ok, g), a_ok)
        nxt = jnp.where(h, take(nxt, g), nxt)
        hb = prv >= 0
        gb = jnp.where(hb, prv, 0)
        b_head = jnp.where(hb, take(b_head, gb), b_head)
        prv = jnp.where(hb, take(prv, gb), prv)
    head = has_r & ~J
    keep_r = head & a_ok
    R = jnp.where(keep_r, a_end, -1)
    age = jnp.where(keep_r, a_age, 0)
    S = a_S
    tail = (Lp >= 0) & ~J
    hc = jnp.where(tail, b_head, 0)
    Lp = jnp.where(tail & take(a_ok, hc), b_head, -1)

    # (c) delivery
    t = t + active.astype(jnp.int32)
    deliv = active & (R[..., 0] == n - 1)
    over = active & ~deliv & (t >= prm["max_time"][:, None])
    fin = deliv | over
    s_del = S[..., 0, :]  # delivered state: right after the swaps, before this slot's decay
    fid = fidelity_of(s_del, bell)

    # (d) cut-off, (e) ageing and decoherence in the two memories holding each link
    cut = age >= prm["cutoff"][:, None, None]
    R = jnp.where(cut, -1, R)
    Lc = jnp.where(Lp >= 0, Lp, 0)
    Lp = jnp.where((Lp >= 0) & ~take(cut, Lc), Lp, -1)
    alive = R >= 0
    age = jnp.where(alive, age + 1, 0)
    far = (jnp.where(alive, R, 0) + (jnp.arange(D, dtype=jnp.int32) * n)[:, None, None]).reshape(-1)
    dec = prm["decay"][:, None] * prm["decay"].reshape(D * n, -1)[far].reshape(S.shape)
    S = jnp.where(alive[..., None], S * dec, S)
    # finished lanes reset to the empty chain
    R = jnp.where(fin[..., None], -1, R)
    Lp = jnp.where(fin[..., None], -1, Lp)
    active = active & ~fin

    # statistics and kept samples (per design: sums over its lanes)
    dt = jnp.where(deliv, t.astype(S.dtype) - prm["t_ref"][:, None], 0)
    df = jnp.where(deliv, fid - prm["f_ref"][:, None], 0)
    fr = jnp.cumsum(fin.astype(jnp.int32), axis=1) - 1
    gi = st["done"][:, None] + fr
    out = dict(
        R=R, Lp=Lp, age=age, S=S, t=t, active=active, started=started,
        done=st["done"] + jnp.sum(fin, axis=1, dtype=jnp.int32),
        n=st["n"] + jnp.sum(deliv, axis=1, dtype=jnp.int32),
        undelivered=st["undelivered"] + jnp.sum(over, axis=1, dtype=jnp.int32),
        t_s1=st["t_s1"] + jnp.sum(dt, 1), t_s2=st["t_s2"] + jnp.sum(dt * dt, 1),
        f_s1=st["f_s1"] + jnp.sum(df, 1), f_s2=st["f_s2"] + jnp.sum(df * df, 1),
        state_sum=st["state_sum"] + jnp.sum(jnp.where(deliv[..., None], s_del, 0), 1),
        keep_t=st["keep_t"], keep_f=st["keep_f"],
    )
    if keep:
        flat = jnp.where(fin & (gi < keep), gi + keep * jnp.arange(D, dtype=jnp.int32)[:, None], D * keep).reshape(-1)
        out["keep_t"] = st["keep_t"].reshape(-1).at[flat].set(jnp.where(deliv, t, -1).reshape(-1), mode="drop").reshape(D, keep)
        out["keep_f"] = st["keep_f"].reshape(-1).at[flat].set(jnp.where(deliv, fid, jnp.nan).reshape(-1), mode="drop").reshape(D, keep)
    return out


@functools.lru_cache(maxsize=64)
def _compiled(n, bell, lanes, slots, keep):
    slot = functools.partial(_slot, n=n, bell=bell, keep=keep)
    ctr = jnp.arange(lanes * (2 * n - 1), dtype=jnp.uint32).reshape(lanes, 2 * n - 1)

    def chunk(words, prm, st, first_slot):
        D = words.shape[0]
        dtype = st["S"].dtype
        base = (jnp.arange(D * lanes, dtype=jnp.int32) * n).reshape(D, lanes, 1)

        def body(i, st):
            w = sub_words(words, first_slot + i)[:, None, None, :]
            return slot(st, uniform_open(w, ctr, dtype), prm, base)

        return jax.lax.fori_loop(0, slots, body, st)

    return jax.jit(chunk, donate_argnums=(2,))


def simulate_swap_asap(
    n_nodes: int | None = None,
    *,
    chain=None,
    p_gen: Float[Array, "*batch"] | float | None = None,
    w0: Float[Array, "*batch"] | float | None = None,
    lam0: Float[Array, "*batch 4"] | None = None,
    p_swap: Float[Array, "*batch"] | float = 1.0,
    t_coh: Float[Array, "*batch"] | float = np.inf,
    rates: Float[Array, "*batch"] | None = None,
    cutoff: Float[Array, "*batch"] | float | None = None,
    samples: int = 100_000,
    seed=0,
    max_time: Optional[int] = 100_000,
    keep: int = 10_000,
    lanes: Optional[int] = None,
    slots_per_chunk: Optional[int] = None,
    memory_budget: float = 2.0 ** 27,
    max_memory: Optional[float] = None,
    dtype=None,
    progress=None,
    memory_rates=None,
) -> MonteCarloResult:
    """Monte Carlo of the swap-asap policy on a chain of ``n_nodes`` nodes (``n − 1`` segments).

    Args:
        n_nodes: number of nodes including the two end nodes, in ``[2, 2**14]`` (every
            slot updates every node of every lane; longer chains would not finish).
        chain: instead of ``n_nodes`` and the physical keywords, a :class:`qnjax.Chain`: its
            hardware under the swap-asap policy (:mod:`qnjax.montecarlo._asap_chain` states
            the mapping and what it refuses: distillation, BSM noise, per-side rates,
            unequal cut-offs).
        p_gen: generation success per slot in (0, 1] (Monte Carlo needs ``>= 1e-6``: int32
            slot counters); one value or a trailing axis of
            ``n − 1`` (per segment). Leading axes are design points.
        w0 / lam0: initial Werner parameter (per segment) or Bell-diagonal state
            ``(..., n − 1, 4)`` / ``(..., 4)``; Werner mode with ``w0 = 1`` if neither.
        p_swap: swap success in (0, 1]; one value or a trailing axis of ``n`` (per node; the
            end nodes' entries are unused).
        t_coh: memory coherence time in slots, one value or per node (trailing ``n``); a pair
            in memories with times ``t_a, t_b`` decays as ``e^{-age (1/t_a + 1/t_b)/2}``.
        rates: instead of ``t_coh``, decay rates per slot of one memory qubit, per node
            (a pair decays at the sum of its two qubits' rates, as in
            :func:`qnjax.delivery_station_rates`): Werner mode ``(...)`` or ``(..., n)``,
            Bell mode ``(..., 4)`` or ``(..., n, 4)`` Walsh rates; ``t_coh`` stands for
            ``(0, 1, 1, 1) / (2 t_coh)``. ``memory_rates`` is its deprecated name.
        cutoff: links with age ``>= cutoff`` are discarded (one value per design; ``None`` =
            none).
        samples: trajectories per design point (at most ``2**30``); seed: int in
            ``[0, 2**64 − 1]`` or JAX key.
        max_time: slot cap, at most ``2**30`` (int32 slot counters); trajectories not delivered
            by then are counted in ``undelivered`` and left out of the means, which are then
            means over the faster trajectories (biased low; the key rate biased high).
        keep: samples kept per design; lanes: parallel trajectories (default from
            ``memory_budget`` bytes); slots_per_chunk: slots per jitted call (default 64, fewer
            for long chains so ``progress`` is called every few seconds; the numbers do not
            depend on it).
        max_memory: bytes the run may use (default: half the physical memory on CPU, 90 % of
            an accelerator's); a run estimated to need more is refused before allocating.
        dtype: float32 / float64; progress: optional ``callback(done, total)``.
    """
    if chain is not None:
        from ..chain import Chain
        from ._asap_chain import swap_asap_inputs

        if not isinstance(chain, Chain):
            raise TypeError(f"chain must be a qnjax.Chain; got {type(chain).__name__}")
        given = [k for k, v in dict(p_gen=p_gen, w0=w0, lam0=lam0, rates=rates, cutoff=cutoff,
                                    memory_rates=memory_rates).items() if v is not None]
        defaults = simulate_swap_asap.__kwdefaults__
        given += [k for k, v in (("p_swap", p_swap), ("t_coh", t_coh)) if v is not defaults[k]]
        n_chain, kw = swap_asap_inputs(chain)
        if n_nodes is not None and n_nodes != n_chain:
            given.append(f"n_nodes={n_nodes!r} (the chain has {n_chain} nodes)")
        if given:
            raise TypeError("simulate_swap_asap: give chain= alone (its parameters are in the Chain); "
                            "got also " + ", ".join(given))
        n_nodes = n_chain
        p_gen, w0, lam0 = kw["p_gen"], kw["w0"], kw["lam0"]
        p_swap, t_coh, cutoff = kw.get("p_swap", 1.0), kw.get("t_coh", np.inf), kw.get("cutoff")
    if p_gen is None:
        raise TypeError("simulate_swap_asap needs p_gen (or chain=Chain(...))")
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, (int, np.integer)) or n_nodes < 2:
        raise ValueError(f"n_nodes must be an integer >= 2; got {n_nodes!r}")
    if n_nodes > MAX_NODES:
        raise ValueError(f"n_nodes must be at most 2**14 = {MAX_NODES} (every slot updates every node "
                         f"of every lane); got {int(n_nodes)}")
    n = int(n_nodes)
    samples = check_samples(samples)
    seed = check_seed(seed)
    dtype = pick_dtype(dtype)
    if w0 is not None and lam0 is not None:
        raise ValueError("give either w0 (Werner mode) or lam0 (Bell-diagonal mode), not both")
    bell = lam0 is not None
    if memory_rates is not None:
        rates = rename_deprecated({"memory_rates": memory_rates, "rates": rates}, stacklevel=2)["rates"]
    pg = P.p_gen(p_gen)
    pg = P.trailing(pg, "p_gen", n - 1) if pg.ndim else np.full(n - 1, float(pg))
    ps = P.prob(p_swap, "p_swap")
    ps = P.trailing(ps, "p_swap", n) if ps.ndim else np.full(n, float(ps))
    if bell:
        s0 = P.bell(lam0, "lam0")
        s0 = P.trailing(s0, "lam0", n - 1, extra=1) @ WALSH_NP
    else:
        w = P.werner(1.0 if w0 is None else w0, "w0")
        s0 = (P.trailing(w, "w0", n - 1) if w.ndim else np.full(n - 1, float(w)))[..., None]
    tc = P.positive(t_coh, "t_coh")
    tc = P.trailing(tc, "t_coh", n) if tc.ndim else np.full(n, float(tc))
    if rates is not None and bell:
        mr = P.nonneg(rates, "rates")
        if mr.shape[-1:] != (4,):
            raise ValueError(f"rates must have a last axis of 4 (Walsh coordinates) in Bell mode; got shape {mr.shape}")
        mr = P.trailing(mr, "rates", n, extra=1)
    elif rates is not None:
        mr = P.nonneg(rates, "rates")
        mr = (P.trailing(mr, "rates", n) if mr.ndim else np.full(n, float(mr)))[..., None]
    else:
        with np.errstate(over="ignore", divide="ignore"):
            r = 1.0 / (2 * tc)
        mr = np.stack([np.zeros_like(r), r, r, r], -1) if bell else r[..., None]
    decay = np.exp(-mr)
    if cutoff is None:
        cut = np.asarray(np.inf)
    else:
        cut = P.nonneg(cutoff, "cutoff")
        fin = np.isfinite(cut)
        if np.any(cut[fin] != np.floor(cut[fin])):
            raise ValueError(f"cutoff must be an integer number of slots or inf; got {cutoff!r}")
    cap = BIG_TIME if max_time is None else int(max_time)
    if not 1 <= cap <= BIG_TIME:
        raise ValueError(f"max_time must be a number of slots in [1, 2**30] (int32 slot counters); got {max_time!r}")
    arrays = dict(p_gen=pg, s0=s0, p_swap=ps, decay=decay, cutoff=cut)
    cores = dict(p_gen=1, s0=2, p_swap=1, decay=2, cutoff=0)
    batch, flat = P.broadcast_designs(arrays, cores)
    D = flat["p_gen"].shape[0]
    s = flat["s0"].shape[-1]
    keep = int(max(0, min(keep, samples)))
    if lanes is None:
        per = D * n * (12 + 8 * s) * 16 + 1
        # several trajectories per lane keep the final drain (waiting for the slowest) short
        lanes = pow2_at_least(min(memory_budget / per, samples / 16), 64, 2 ** 20)
    lanes = int(lanes)
    if lanes < 1:
        raise ValueError(f"lanes must be a positive integer; got {lanes!r}")
    check_memory(lanes * D * n * (12 + 8 * s) * 16 + D * keep * 12, max_memory,
                 f"simulate_swap_asap of {D} design(s) x {lanes} lanes x {n} nodes",
                 "lower lanes, n_nodes or the batch, or raise max_memory")
    # reference values for shifted sums (numerical stability of the variance)
    prod = np.prod(flat["s0"], axis=1)
    f_ref = prod.sum(-1) / 4 if bell else (1 + 3 * prod[..., 0]) / 4
    npd = np.dtype(dtype.name)
    prm = dict(
        p_gen=flat["p_gen"].astype(npd), s0=flat["s0"].astype(npd),
        p_swap=flat["p_swap"].astype(npd), decay=flat["decay"].astype(npd),
        cutoff=np.minimum(flat["cutoff"], BIG_TIME).astype(np.int32),  # ages stay below the cap
        quota=np.full((D,), samples, np.int32), max_time=np.full((D,), cap, np.int32),
        t_ref=np.zeros((D,), npd), f_ref=f_ref.astype(npd),
    )
    z = lambda *sh, dt=np.int32, v=0: np.full((D,) + sh, v, dt)  # noqa: E731
    st = dict(
        R=z(lanes, n, v=-1), Lp=z(lanes, n, v=-1), age=z(lanes, n), S=z(lanes, n, s, dt=npd),
        t=z(lanes), active=z(lanes, dt=bool, v=False), started=z(), done=z(), n=z(),
        undelivered=z(), t_s1=z(dt=npd), t_s2=z(dt=npd), f_s1=z(dt=npd),
        f_s2=z(dt=npd), state_sum=z(s, dt=npd), keep_t=z(keep, v=-1),
        keep_f=z(keep, dt=npd, v=np.nan),
    )
    zeros = {k: st[k] for k in ("n", "undelivered", "t_s1", "t_s2", "f_s1", "f_s2", "state_sum")}
    prm, st = jax.device_put((prm, st))
    keys = jax.device_put(design_words(seed, D))
    if slots_per_chunk is None:  # about 2**22 node updates per call: a few seconds on a CPU core
        slots_per_chunk = max(1, min(64, 2 ** 22 // (D * lanes * n)))
    if isinstance(slots_per_chunk, bool) or not isinstance(slots_per_chunk, (int, np.integer)) or slots_per_chunk < 1:
        raise ValueError(f"slots_per_chunk must be a positive integer; got {slots_per_chunk!r}")
    fn = _compiled(n, bell, lanes, int(slots_per_chunk), keep)
    tmom, fmom = Moments((D,)), Moments((D,))
    state_sum = np.zeros((D, s))
    undelivered = np.zeros((D,), np.int64)
    prog = Progress(progress, samples * D)
    prog(0)  # every check has passed: a caller's progress display may start
    first = 0
    acc_keys = ("n", "undelivered", "t_s1", "t_s2", "f_s1", "f_s2", "state_sum")
    while True:
        st = fn(keys, prm, st, np.uint32(first))
        first += int(slots_per_chunk)
        got = jax.device_get({k: st[k] for k in acc_keys + ("done",)})
        tmom.add_shifted(got["n"], got["t_s1"], got["t_s2"], np.asarray(prm["t_ref"]))
        fmom.add_shifted(got["n"], got["f_s1"], got["f_s2"], np.asarray(prm["f_ref"]))
        state_sum += np.asarray(got["state_sum"], np.float64)
        undelivered += np.asarray(got["undelivered"], np.int64)
        # restart the per-chunk accumulators, re-centred on the running means
        prm["t_ref"] = jax.device_put(np.nan_to_num(tmom.mean).astype(npd))
        prm["f_ref"] = jax.device_put(np.where(tmom.n > 0, fmom.mean, np.asarray(prm["f_ref"])).astype(npd))
        st.update(jax.device_put(zeros))
        prog(np.asarray(got["done"]).sum())
        if np.all(np.asarray(got["done"]) >= samples):
            break
    return build_result("swap-asap", batch, tmom, fmom, state_sum, bell, undelivered,
                        np.asarray(st["keep_t"]), np.asarray(st["keep_f"], np.float64), dtype)
