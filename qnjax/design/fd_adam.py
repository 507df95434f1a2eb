"""The continuous stage of the step-model optimizer (:mod:`.step`): Adam on ``u = log τ``
with forward-difference gradients, every design evaluated by the padded level program
(:mod:`qnjax._engine.padded_levels`) in fixed-size blocks, the update in NumPy.

The relaxed key rate is piecewise linear in ``τ`` (the engine's randomized cut-off), so a
one-sided difference is what forward mode would give; blocks of :data:`BLOCK` designs (1024 on
accelerators for large batches) keep the number of compiled programs at one or two per
truncation, shared by every protocol.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from .._engine.padded_levels import figures_padded
from ._common import surrogate

BLOCK = 32
PAD_DEPTH = 4
BLOCK_LARGE = 1024
PATIENCE = 4
TOL = 1e-4
MIN_STEPS = PATIENCE + 1  # the earliest stop the patience rule allows: no extra floor


def _block(n: int) -> int:
    """Designs per engine call: 32; on an accelerator 1024 for batches above 1024 designs (many
    problems at once), where one call's latency, not its arithmetic, sets the time. A CPU
    evaluates 32-design blocks as fast per design (0.11 against 0.14 ms at t_trunc 512 on a
    2-core machine) and compiles one program instead of two."""
    if n <= BLOCK_LARGE or jax.default_backend() == "cpu":
        return BLOCK
    return BLOCK_LARGE


def evaluate_levels(levels, fixed, cutoffs, t_trunc, block=None):
    """Exact engine figures of designs: ``fixed`` problem parameters ``(B,)`` each, integer (or
    relaxed) cut-offs ``(B, L)``; evaluated in blocks of ``block`` designs (default
    :func:`_block`; the last one padded) by the padded level program
    (:mod:`qnjax._engine.padded_levels`, depth ``max(PAD_DEPTH, L)``), so every protocol at
    one truncation reuses one compiled program."""
    cutoffs = np.asarray(cutoffs, float)
    b = cutoffs.shape[0]
    size = _block(b) if block is None else block
    dt = jnp.result_type(float)
    depth = max(PAD_DEPTH, len(levels))
    outs = []
    for lo in range(0, b, size):
        hi = min(b, lo + size)
        pad = lambda a: np.concatenate([a[lo:hi], np.repeat(a[lo:lo + 1], size - (hi - lo), 0)], 0)
        kw = {k: pad(np.asarray(v, dt)) for k, v in fixed.items()}
        r = figures_padded(levels, depth, cutoff=pad(cutoffs), t_trunc=t_trunc, **kw)
        outs.append({k: v[:hi - lo] for k, v in r.items()})
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


COVERAGE_PENALTY = 50.0
"""Weight of the missing mass ``1 − coverage`` in the step objective (a log rate)."""


def step_objective(key_fraction_smooth, mean_time, coverage, xp=jnp):
    """The step optimizer's objective: the surrogate log rate (:func:`._common.surrogate`)
    less :data:`COVERAGE_PENALTY` times the truncation's missing mass; ``xp`` as there."""
    return surrogate(key_fraction_smooth, mean_time, xp) - COVERAGE_PENALTY * (1 - coverage)


def surrogate_np(f, t):
    """:func:`._common.surrogate` in NumPy (no device dispatch per step)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return surrogate(np.asarray(f, float), np.asarray(t, float), np)


def objective_np(r):
    """:func:`step_objective` in NumPy from the figures ``r`` of :func:`evaluate_levels`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return step_objective(np.asarray(r["key_fraction_smooth"], float), np.asarray(r["mean_time"], float),
                              np.asarray(r["coverage"], float), np)


class FdAdamState(NamedTuple):
    """State of the NumPy Adam ascent of :func:`fd_adam` (``starts`` rows, ``L`` levels)."""

    count: int
    """Adam steps taken."""
    params: Float[np.ndarray, "starts L"]
    """``u = log τ`` of every start."""
    mu: Float[np.ndarray, "starts L"]
    """First moment (of the descent direction ``−grad``)."""
    nu: Float[np.ndarray, "starts L"]
    """Second moment."""
    best_value: Float[np.ndarray, " starts"]
    """Best surrogate objective seen per start."""
    best_params: Float[np.ndarray, "starts L"]
    """``params`` where ``best_value`` was reached."""


def fd_adam_init(u0: Float[np.ndarray, "starts L"]) -> FdAdamState:
    u = np.asarray(u0).astype(float).copy()
    return FdAdamState(0, u, np.zeros_like(u), np.zeros_like(u), np.full(len(u), -np.inf), u.copy())


def fd_adam_update(state: FdAdamState, value, grad, lr: float, lo: float, hi: float) -> FdAdamState:
    """Record ``value`` (objective at ``state.params``) as best where it improves, then one
    ascent step along ``grad`` with optax.adam's update (defaults b1 0.9, b2 0.999, eps 1e-8,
    bias-corrected) at learning rate ``lr``, clipped to ``[lo, hi]``. Pure."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    better = value > state.best_value
    best_params = np.where(better[:, None], state.params, state.best_params)
    best_value = np.where(better, value, state.best_value)
    t = state.count + 1
    mu = b1 * state.mu + (1 - b1) * (-grad)
    nu = b2 * state.nu + (1 - b2) * grad * grad
    mh, vh = mu / (1 - b1 ** t), nu / (1 - b2 ** t)
    params = np.clip(state.params - lr * mh / (np.sqrt(vh) + eps), lo, hi)
    return FdAdamState(t, params, mu, nu, best_value, best_params)


def cosine_lr(lr: float, t: int, n_steps: int, alpha: float = 0.05) -> float:
    """optax.cosine_decay_schedule(lr, n_steps, alpha) at step ``t``."""
    return lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(t, n_steps) / n_steps)) + alpha)


def fd_adam(levels, fixed, u0, T, lr, n_steps, dtype, group: int | None = None, top_k: int = 3):
    """Adam ascent (optax's defaults, cosine decay to 5 %) on ``u = log τ`` of every start,
    the gradient by forward differences through the batched forward engine (the relaxation
    is piecewise linear in τ, so a one-sided difference is what forward mode would give).
    ``group``: starts per problem (consecutive rows; default all rows, one problem).
    Each problem stops on its own once, for ``PATIENCE`` steps (after at least
    ``MIN_STEPS``), its best value (a log rate) has not improved by more than ``TOL`` or the
    rounded designs of its ``top_k`` best starts have not changed: the integer stage looks at
    those designs' neighbourhoods only. A stopped problem's starts are no longer evaluated,
    and a problem's path does not depend on the others in the batch. Returns ``(best_val,
    best_u, history)`` (history: the best current value over the running starts per step)."""
    n, L = u0.shape
    group = n if group is None else int(group)
    if group < 1 or n % group:
        raise ValueError(f"{n} starts do not split into problems of {group} starts")
    h = 1e-5 if np.dtype(dtype).itemsize >= 8 else 3e-3
    tmax = math.log(T)
    shifts = np.concatenate([np.zeros((1, L)), h * np.eye(L)])  # (L+1, L)
    state = fd_adam_init(u0)
    hist = []
    n_prob = n // group
    stale = np.zeros(n_prob, int)
    last_lead = [None] * n_prob
    running = np.arange(n_prob)
    for t in range(n_steps):
        rows = (running[:, None] * group + np.arange(group)).ravel()
        fx = {k: np.repeat(v[rows], len(shifts)) for k, v in fixed.items()}
        pts = (state.params[rows][:, None, :] + shifts[None]).reshape(-1, L)
        r = evaluate_levels(levels, fx, np.exp(pts), T)
        j = objective_np(r).reshape(len(rows), len(shifts))
        val = j[:, 0]
        g = np.nan_to_num((j[:, 1:] - val[:, None]) / h)
        # per problem: a start without a result (NaN) is no news
        top = np.nanmax(val.reshape(-1, group), axis=1, initial=-np.inf)
        improved = top > np.max(state.best_value[rows].reshape(-1, group), axis=1) + TOL
        hist.append(top.max())
        sub = FdAdamState(state.count, *(a[rows] for a in state[1:]))
        sub = fd_adam_update(sub, val, g, cosine_lr(lr, t, n_steps), -3.0, tmax)
        full = [a.copy() for a in state[1:]]
        for a, b in zip(full, sub[1:]):
            a[rows] = b
        state = FdAdamState(sub.count, *full)
        lead = _leading_designs(sub, group, top_k)
        for i, q in enumerate(running):
            stale[q] = 0 if improved[i] and lead[i] != last_lead[q] else stale[q] + 1
            last_lead[q] = lead[i]
        if t + 1 >= MIN_STEPS:
            running = running[stale[running] < PATIENCE]
            if not len(running):
                break
    return state.best_value, state.best_params, np.asarray(hist)


def _leading_designs(state: FdAdamState, group: int, k: int) -> tuple:
    """Per problem (``group`` consecutive starts each), the rounded cut-offs of its ``k`` best
    starts: the integer designs whose neighbourhoods :func:`_integer_stage` looks at."""
    best = np.nan_to_num(state.best_value, nan=-np.inf).reshape(-1, group)
    rounded = np.round(np.exp(state.best_params)).reshape(best.shape + (-1,))
    order = np.argsort(-best, axis=1)[:, :k]
    return tuple(frozenset(map(tuple, np.take_along_axis(rounded, order[..., None], 1)[q].tolist()))
                 for q in range(len(best)))
