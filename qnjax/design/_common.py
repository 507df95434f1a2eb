"""Shared pieces: the smooth surrogate objective, reparametrizations, the Adam loop,
integer neighbourhoods and the progress bar.

Surrogate objective
-------------------
The exact figure, ``max(0, f) / T`` (``f`` the BB84 key fraction of the mean delivered
state, ``T`` the mean delivery time), is flat at zero wherever the delivered state is too
noisy, so gradient ascent started there would never move. The optimizer instead maximizes

    ``J = g(f) − log T``,   ``g(f) = log f`` for ``f ≥ f0``, ``log f0 + (f − f0) / f0`` below,

with ``f0 = 1e-3``: the logarithm of the key rate wherever ``f ≥ f0`` (so maximizing ``J``
maximizes the rate, independent of its scale), continued linearly (C¹, increasing) into
``f < f0`` and negative ``f``, where it keeps pulling towards a better state. The reported
key rate is always the exact, clipped rate of the final integer design.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

F0 = 1e-3


def log_fraction(f, xp=jnp):
    """``g(f)``: ``log f`` above ``F0``, its tangent line below (finite for any ``f``);
    ``xp``: the array module (``jax.numpy``, or ``numpy`` on the host)."""
    safe = xp.maximum(f, F0)
    return xp.where(f >= F0, xp.log(safe), math.log(F0) + (f - F0) / F0)


def surrogate(key_fraction_smooth, mean_time, xp=jnp):
    """``J = g(f) − log T`` (natural log; larger is better); ``xp`` as for :func:`log_fraction`."""
    return log_fraction(key_fraction_smooth, xp) - xp.log(mean_time)


# ----------------------------------------------------------------- reparametrizations
def lengths_softmax(z, total, lmin):
    """Segment lengths ``lmin + (total − n·lmin) · softmax(z)`` (sum = total, each >= lmin)."""
    n = z.shape[-1]
    return lmin + (total - n * lmin)[..., None] * jax.nn.softmax(z, axis=-1)


def lengths_stick(z, total, lmin, lmax):
    """Segment lengths by bounded stick-breaking: segment ``i`` takes a sigmoid share of what
    is left, within the bounds that keep the remaining segments feasible; the last segment
    takes the rest. ``z`` has ``n`` entries, the last unused (kept for a common shape)."""
    n = z.shape[-1]
    rem = jnp.asarray(total)
    out = []
    for i in range(n - 1):
        k = n - 1 - i
        lo = jnp.maximum(lmin, rem - k * lmax)
        hi = jnp.minimum(lmax, rem - k * lmin)
        li = lo + (hi - lo) * jax.nn.sigmoid(z[..., i])
        out.append(li)
        rem = rem - li
    out.append(rem)
    return jnp.stack(out, -1)


def stick_from_lengths(lengths, total, lmin, lmax):
    """Inverse of :func:`lengths_stick` (NumPy; for initialization)."""
    n = len(lengths)
    rem, z = float(total), np.zeros(n)
    for i in range(n - 1):
        k = n - 1 - i
        lo, hi = max(lmin, rem - k * lmax), min(lmax, rem - k * lmin)
        s = 0.5 if hi - lo <= 1e-12 else float(np.clip((lengths[i] - lo) / (hi - lo), 1e-6, 1 - 1e-6))
        z[i] = math.log(s / (1 - s))
        rem -= lengths[i]
    return z


# ----------------------------------------------------------------- Adam loop
def value_and_grad(f, free, fixed, args, mode="fwd"):
    """``(value, aux, grad)`` of ``f(free, fixed, args) -> (value, aux)`` w.r.t. ``free``.

    ``mode="fwd"`` uses forward mode (one JVP per free coordinate, vmapped): with the few
    parameters of a repeater design (cut-offs, positions) it compiles about twice as fast
    as reverse mode through the FFT-based engine; ``"rev"`` is :func:`jax.value_and_grad`.
    """
    if mode == "rev":
        (val, aux), g = jax.value_and_grad(f, has_aux=True)(free, fixed, args)
        return val, aux, g
    flat, unravel = ravel_pytree(free)
    fn = lambda x: f(unravel(x), fixed, args)
    basis = jnp.eye(flat.size, dtype=flat.dtype)
    val, tan, aux = jax.vmap(lambda v: jax.jvp(fn, (flat,), (v,), has_aux=True))(basis)
    return val[0], jax.tree.map(lambda a: a[0], aux), unravel(tan)


class SearchState(NamedTuple):
    """State of the batched Adam ascent of :func:`make_runner` (every leaf has the starts as
    its leading axis)."""

    params: Any
    """Coordinates being optimized, a dict of ``(starts, ...)`` arrays."""
    fixed: Any
    """Per-start constants (problem parameters, distance), a dict of ``(starts, ...)`` arrays."""
    mask: Any
    """Like ``params``: multiplies the gradient (0 freezes a coordinate)."""
    opt_state: Any
    """optax's Adam state (step count, first and second moments)."""
    best_value: Float[Array, " starts"]
    """Best objective seen per start."""
    best_params: Any
    """``params`` where ``best_value`` was reached."""


def make_runner(value_fn, lr, n_steps, chunk, project=None, mode="fwd"):
    """Build ``init(free, fixed, mask)`` and a jitted ``run_chunk(state, args)`` performing
    ``chunk`` Adam ascent steps of ``value_fn`` on every start (leading axis of every leaf of
    ``free`` / ``fixed`` / ``mask``), returning the new :class:`SearchState` and the best value
    per step.

    ``value_fn(free, fixed, args) -> (objective, aux)`` for one start: ``free`` holds the
    optimized coordinates, ``fixed`` per-start constants (problem parameters, distance),
    ``args`` a pytree shared by all starts. ``mask`` (like ``free``) multiplies the gradient
    (0 freezes a coordinate). The learning rate follows a cosine decay to 5% over
    ``n_steps``; ``project(free)`` maps the coordinates back into their box after each step.
    """
    sched = optax.cosine_decay_schedule(lr, max(n_steps, 1), alpha=0.05)
    opt = optax.adam(sched)

    def step(state: SearchState, args):
        free, fixed, mask = state.params, state.fixed, state.mask
        val, aux, g = jax.vmap(lambda a, b: value_and_grad(value_fn, a, b, args, mode))(free, fixed)
        g = jax.tree.map(lambda x, m: -jnp.nan_to_num(x) * m, g, mask)  # ascent, NaN-safe
        upd, ostate = opt.update(g, state.opt_state, free)
        new = optax.apply_updates(free, upd)
        if project is not None:
            new = project(new)
        better = val > state.best_value
        best_free = jax.tree.map(
            lambda b, p: jnp.where(better.reshape(better.shape + (1,) * (p.ndim - 1)), p, b),
            state.best_params, free)
        best_val = jnp.where(better, val, state.best_value)
        return SearchState(new, fixed, mask, ostate, best_val, best_free), jnp.max(val)

    one_step = jax.jit(step)

    def run_chunk(state, args):
        # a Python loop over one jitted step: XLA:CPU ran the engine far slower inside a
        # lax.scan body (a while loop) than as a top-level computation
        hist = []
        for _ in range(chunk):
            state, h = one_step(state, args)
            hist.append(h)
        return state, jnp.stack(hist)

    def init(free, fixed, mask) -> SearchState:
        leaf = jax.tree.leaves(free)[0]
        return SearchState(free, fixed, mask, opt.init(free),
                           jnp.full(leaf.shape[:1], -jnp.inf, leaf.dtype), free)

    return init, run_chunk


# ----------------------------------------------------------------- integer neighbourhood
def integer_neighbourhood(tau, t_max, radius=1, max_size=4096):
    """All integer vectors with coordinate ``k`` in ``floor(τ_k) − radius .. ceil(τ_k) + radius``,
    clipped to ``[0, t_max]`` (exhaustive; the radius shrinks, down to floor/ceil, while the
    product exceeds ``max_size``)."""
    tau = np.clip(np.asarray(tau, float), 0, t_max)
    for r in range(radius, -1, -1):
        opts = [sorted({int(min(max(v, 0), t_max)) for v in range(math.floor(t) - r, math.ceil(t) + r + 1)})
                for t in tau]
        if math.prod(len(o) for o in opts) <= max_size or r == 0:
            return np.array(list(itertools.product(*opts)), dtype=float).reshape(-1, len(tau))
    raise AssertionError


# ----------------------------------------------------------------- progress
# One progress implementation for the whole package (elapsed and remaining time on a terminal,
# one line per stage elsewhere): qnjax._progress.Progress(enabled, description, total).
from .._progress import Progress  # noqa: E402,F401
