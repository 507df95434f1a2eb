"""One node's attempt stream, vectorised over design points (rows) and attempts (columns).

Used by :mod:`qnjax.montecarlo.nested`; arrays are ``(D, A)``, per-design scalars ``(D,)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._common import distill_internal

def _prefix_sums(dur, succ):
    """Inclusive prefix sums of durations and of successes along the last axis.

    With x64 both ride in one int64 ``cumsum`` (durations in the high 39 bits, counts in
    the low 24 bits; ``A <= 2**23``) unless a row's total time could overflow that field;
    otherwise two ``cumsum``s (int32 without x64).
    """
    def two(dur, succ):
        return jnp.cumsum(dur, axis=-1), jnp.cumsum(succ.astype(jnp.int32), axis=-1)

    if not jax.config.jax_enable_x64:
        return two(dur, succ)
    dur = dur.astype(jnp.int64)

    def packed(dur, succ):
        cs = jnp.cumsum((dur << 24) | succ.astype(jnp.int64), axis=-1)
        return cs >> 24, (cs & ((1 << 24) - 1)).astype(jnp.int32)

    # the packed form holds running times below 2**39 steps; fall back beyond
    return jax.lax.cond(jnp.max(jnp.sum(dur, axis=-1)) < 2 ** 38, packed, two, dur, succ)


def node_step(tA, sA, avA, tB, sB, avB, tau, p_sw, rate, u, partial, room, kind, bell):
    """Run up to ``A`` attempts per design.

    Returns ``(c, s_out, accept, rank, n_new, consumed, new_partial, wrapped)``: ``c`` the
    running elapsed time (so an output's time is the difference of ``c`` between consecutive
    successes, plus the carried ``partial`` for the first), ``accept`` the successes kept
    (at output position ``rank``), ``consumed`` the input pairs used, ``wrapped`` (per design)
    whether ``c`` left its integer range (durations are non-negative, so a wrap shows as a
    decrease or a negative value).
    """
    A = tA.shape[-1]
    j = jnp.arange(A, dtype=jnp.int32)
    m = jnp.minimum(avA, avB)
    valid = j < m[:, None]
    delta = jnp.abs(tA - tB)
    cut = delta > tau[:, None]
    dur = jnp.where(cut, jnp.minimum(tA, tB) + tau[:, None], jnp.maximum(tA, tB))
    dd = -delta.astype(sA.dtype)[..., None]
    # only the input that finished first waits and decays (rate of its side)
    sA2 = jnp.where((tA < tB)[..., None], sA * jnp.exp(dd * rate[:, None, 0, :]), sA)
    sB2 = jnp.where((tB < tA)[..., None], sB * jnp.exp(dd * rate[:, None, 1, :]), sB)
    if kind == "swap":
        p_op, s_out = p_sw[:, None], sA2 * sB2
    else:
        p_op, s_out = distill_internal(sA2, sB2, bell)
    succ = valid & ~cut & (u < p_op)
    c, ns = _prefix_sums(jnp.where(valid, dur, 0), succ)
    wrapped = jnp.any(c < 0, axis=-1) | jnp.any(c[:, 1:] < c[:, :-1], axis=-1)
    excl = ns - succ.astype(jnp.int32)              # successes strictly before j = output rank
    live = excl < room[:, None]                     # attempts performed this chunk
    consumed = jnp.sum(valid & live, axis=-1, dtype=jnp.int32)
    accept = succ & live
    n_succ = ns[:, -1]
    n_new = jnp.minimum(n_succ, room)
    last = jnp.max(jnp.where(accept, c, 0), axis=-1)
    stopped = n_succ >= room
    tail = c[:, -1] - last + jnp.where(n_succ == 0, partial, 0)
    new_partial = jnp.where(room <= 0, partial, jnp.where(stopped, 0, tail))
    return c, s_out, accept, excl, n_new, consumed, new_partial, wrapped


def times_from_ends(buf_c, base, n_new, partial):
    """Turn compacted cycle end-times ``c`` at positions ``[base, base + n_new)`` into cycle
    durations (the first one adds the carried ``partial``)."""
    A = buf_c.shape[-1]
    p = jnp.arange(A, dtype=jnp.int32)[None, :]
    prev = jnp.concatenate([jnp.zeros_like(buf_c[:, :1]), buf_c[:, :-1]], axis=-1)
    first = p == base[:, None]
    inside = (p >= base[:, None]) & (p < (base + n_new)[:, None])
    d = jnp.where(first, buf_c + partial[:, None].astype(buf_c.dtype), buf_c - prev)
    return jnp.where(inside, d, buf_c)


def flat_set(buf, idx, vals):
    """``buf[d, idx[d, j]] = vals[d, j]`` for ``idx < A`` (others dropped), via a 1-D scatter."""
    D, A = buf.shape[:2]
    flat = jnp.where(idx < A, idx + A * jnp.arange(D, dtype=jnp.int32)[:, None], D * A)
    out = buf.reshape((D * A,) + buf.shape[2:]).at[flat.reshape(-1)].set(
        vals.reshape((-1,) + vals.shape[2:]), mode="drop")
    return out.reshape(buf.shape)


def pop(buf_t, buf_s, n, k):
    """Drop the first ``k[d]`` entries of each design's buffer (shift left)."""
    D, A = buf_t.shape
    idx = jnp.minimum(jnp.arange(A, dtype=jnp.int32) + k[:, None], A - 1)
    flat = (idx + A * jnp.arange(D, dtype=jnp.int32)[:, None]).reshape(-1)
    return (buf_t.reshape(-1)[flat].reshape(D, A),
            buf_s.reshape((D * A, -1))[flat].reshape(buf_s.shape), n - k)
