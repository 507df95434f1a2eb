"""Cheap host-side estimates of a Monte Carlo run: step-counter range, mean delivery time, work.

Used to refuse, before anything runs, work whose delivery times would not fit the engine's
step counters or whose trajectories would mostly stop at a slot cap.
"""

from __future__ import annotations

import jax
import numpy as np

from ..protocol import Link, Swap, internal_nodes


def time_limit() -> int:
    """Largest delivery / waiting time in steps the engines count exactly: ``2**40`` with int64
    step counters (``jax_enable_x64``), ``2**30`` with int32 ones."""
    return 2 ** 40 if jax.config.jax_enable_x64 else 2 ** 30


def time_dtype():
    return np.int64 if jax.config.jax_enable_x64 else np.int32


def _level(m, tau, p_op):
    """Output of a node whose two inputs are approximated as i.i.d. geometric with mean ``m``
    (steps): ``(mean output time, attempts per output, mean attempt duration)``.

    With ``p = 1/m``, ``q = 1 − p``: an attempt succeeds with ``P(|Δ| ≤ τ) p_op``,
    ``P(|Δ| ≤ τ) = 1 − 2 q^(τ+1)/(2 − p)``, and lasts ``E[min] + E[min(|Δ|, τ)] =
    (1 + 2 q (1 − q^τ)) / (p (2 − p))`` steps on average. Exact for geometric inputs (the
    first level: mean ``1/p_gen²`` at cut-off 0); an estimate above it.
    """
    p = 1.0 / np.maximum(m, 1.0)
    q = 1.0 - p
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        qt = np.where(np.isinf(tau), 0.0, q ** np.where(np.isinf(tau), 0.0, tau))
        ok = 1.0 - 2.0 * q * qt / (2.0 - p)
        dur = (1.0 + 2.0 * q * (1.0 - qt)) / (p * (2.0 - p))
        succ = np.maximum(ok * p_op, 1e-300)
        return dur / succ, 1.0 / succ, dur


def nested_estimate(tree, log_q, p_swap, tau):
    """Estimated mean delivery time (steps), node attempts per delivery and longest mean attempt
    duration (steps) of any node, of the nested model per design: ``log_q (D, segments)``, ``p_swap`` / ``tau (D, internal nodes)`` as in
    :func:`qnjax.montecarlo._params.nested_arrays`. Distillation is taken to always succeed
    (the estimate is then low: it refuses only work that is surely too long)."""
    index = {id(n): i for i, n in enumerate(internal_nodes(tree))}
    with np.errstate(divide="ignore"):
        leaf_mean = -1.0 / np.expm1(np.asarray(log_q, np.float64))  # 1 / p_gen

    def visit(n):
        if isinstance(n, Link):
            return leaf_mean[:, n.segment], np.ones(leaf_mean.shape[0]), np.ones(leaf_mean.shape[0])
        k = index[id(n)]
        if isinstance(n, Swap):
            (ma, wa, da), (mb, wb, db) = visit(n.left), visit(n.right)
            p_op = p_swap[:, k]
        else:
            ma, wa, da = visit(n.child)
            mb, wb, db = ma, wa, da
            p_op = 1.0
        m = np.maximum(ma, mb)
        mean, att, dur = _level(m, np.asarray(tau[:, k], np.float64), p_op)
        return mean, att * (1.0 + wa + wb), np.maximum(dur, np.maximum(da, db))

    return visit(tree)


def swap_asap_censored_bound(p_gen, max_time: int) -> np.ndarray:
    """Lower bound on the probability that a swap-asap trajectory is still undelivered after
    ``max_time`` slots: every segment must first generate a link, so
    ``P(T > cap) ≥ 1 − Π_i (1 − (1 − p_gen_i)^cap)``; ``p_gen (..., segments)``."""
    pg = np.asarray(p_gen, np.float64)
    with np.errstate(divide="ignore"):
        miss = np.exp(max_time * np.log1p(-np.minimum(pg, 1.0)))  # (1 − p)^cap
    return 1.0 - np.prod(1.0 - miss, axis=-1)


def levels_estimate(levels, p_gen: float, p_swap: float, cutoff=None) -> tuple[float, float]:
    """:func:`nested_estimate` of a level protocol with scalar parameters: ``(mean delivery
    time in steps, node attempts per delivery)``; ``cutoff`` one entry per level or ``None``."""
    cut = list(cutoff) if cutoff is not None and len(cutoff) == len(levels) else [np.inf] * len(levels)
    m, work = 1.0 / p_gen, 1.0
    for level, tau in zip(levels, cut):
        m, att, _ = _level(np.float64(m), np.float64(tau), p_swap if level == "swap" else 1.0)
        m, work = float(m), float(att * (1.0 + 2.0 * work))
    return m, work


def _bits() -> int:
    return 64 if jax.config.jax_enable_x64 else 32


def check_range(est: float, cap: int, dur: float) -> float:
    """Refuse (``ValueError``) an estimated mean delivery time ``est`` (steps, capped at ``cap``)
    above 1/64 of :func:`time_limit`, so that a time beyond the range is vanishingly rare
    (and raises if it happens). Returns ``dur``."""
    lim = time_limit()
    if min(est, cap) > lim / 64:
        fix = ("use the exact engine qnjax.delivery" if _bits() == 64 else
               "enable jax_enable_x64 (int64 step counters) or use the exact engine qnjax.delivery")
        raise ValueError(f"the mean delivery time is about {est:.3g} steps (p_gen, cut-offs and p_swap), "
                         f"beyond what Monte Carlo's int{_bits()} step counters hold safely ({lim / 64:.3g} "
                         f"steps); {fix}")
    return dur


def overflow_message() -> str:
    return (f"a delivery time exceeded {time_limit():.3g} steps, the range of Monte Carlo's int{_bits()} step "
            "counters (p_gen, cut-offs and p_swap make delivery this slow); use the exact engine qnjax.delivery")
