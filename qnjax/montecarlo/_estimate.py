"""Cheap host-side estimates of a Monte Carlo run: step-counter range, mean delivery time, work.

Used to refuse, before anything runs, work whose delivery times would not fit the engine's
step counters or whose trajectories would mostly stop at a slot cap.
"""

from __future__ import annotations

import jax
import numpy as np

from ..protocol import Link, Swap, internal_nodes, levels_to_tree, n_segments


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
    first level: mean ``1/p_gen²`` at cut-off 0); an approximation above it, not a bound (the
    real inputs are more concentrated than geometric: e.g. ``swap,swap`` at ``p_gen`` 0.2 and
    ``swap,swap,swap`` at 0.3 with cut-offs 3 came out 7–9 % above the Monte Carlo mean).
    """
    p = 1.0 / np.maximum(m, 1.0)
    q = 1.0 - p
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        qt = np.where(np.isinf(tau), 0.0, q ** np.where(np.isinf(tau), 0.0, tau))
        ok = 1.0 - 2.0 * q * qt / (2.0 - p)
        dur = (1.0 + 2.0 * q * (1.0 - qt)) / (p * (2.0 - p))
        succ = np.maximum(ok * p_op, 1e-300)
        return dur / succ, 1.0 / succ, dur


def _werner_hull(u):
    """Upper bound on a stored pair's Werner parameter after waiting, from a bound ``u`` before
    it: decay ``w e^{−Δ/t_coh}`` moves ``w`` towards 0 (it lowers a positive ``w``, but raises a
    negative one up to at most 0)."""
    return np.maximum(u, 0.0)


def _swap_bound(ua, ub):
    """Upper bound on the Werner parameter ``wa wb`` of a swap of two Werner inputs with
    ``wa ∈ [−1/3, ua]``, ``wb ∈ [−1/3, ub]`` (waiting included): the product is bilinear, so its
    maximum lies at a corner of that box, ``max(ua' ub', 1/9)`` with ``u' = max(u, 0)``."""
    return np.minimum(np.maximum(_werner_hull(ua) * _werner_hull(ub), 1.0 / 9.0), 1.0)


def _distill_bounds(u):
    """Upper bounds ``(success probability, output Werner parameter)`` of BBPSSW on two Werner
    inputs with parameters in ``[−1/3, u]`` (waiting included).

    BBPSSW (Bennett et al., PRL 76, 722 (1996)) on Werner pairs of fidelities ``F_a``, ``F_b``
    succeeds with probability ``F_a F_b + (F_a (1 − F_b) + (1 − F_a) F_b)/3 + 5 (1 − F_a)(1 − F_b)/9``
    (``F² + 2F(1 − F)/3 + 5((1 − F)/3)²`` for equal inputs), which is ``(1 + w_a w_b)/2`` with
    ``w = (4F − 1)/3``, and outputs ``w' = (w_a + w_b + 4 w_a w_b) / (3 (1 + w_a w_b))`` (as
    :func:`qnjax.montecarlo._common.distill_internal`). Both are linear or linear-fractional (with a
    positive denominator) in each input, hence monotone in each, so their maxima over the box
    lie at its corners: ``(1 + max(u', 1/3)²)/2`` and ``(2u' + 4u'²) / (3 (1 + u'²))`` with
    ``u' = max(u, 0)`` (the corner ``(−1/3, −1/3)`` gives ``5/9`` and ``−1/15``; ``(u', −1/3)``
    gives less). The output bound is increasing in ``u'`` and equals 1 at ``u' = 1``.
    """
    v = np.clip(_werner_hull(u), 0.0, 1.0)
    p = 0.5 * (1.0 + np.maximum(v, 1.0 / 3.0) ** 2)
    w = (2.0 * v + 4.0 * v * v) / (3.0 * (1.0 + v * v))
    return np.minimum(p, 1.0), np.minimum(w, 1.0)


def nested_estimate(tree, log_q, p_swap, tau, w0=None):
    """Estimated mean delivery time (steps), node attempts per delivery and longest mean attempt
    duration (steps) of any node, of the nested model per design: ``log_q (D, segments)``,
    ``p_swap`` / ``tau (D, internal nodes)`` as in :func:`qnjax.montecarlo._params.nested_arrays`,
    and optionally ``w0 (D, segments)``, the Werner parameter of a fresh link (Werner mode).

    The estimate is meant to be low (it refuses only work that is surely too long; see
    :func:`_level` for its accuracy above the first level). Distillation succeeds with
    probability 1 when ``w0`` is ``None``; otherwise with the largest BBPSSW success probability
    any of its inputs allows (Bennett et al., PRL 76, 722 (1996); see :func:`_distill_bounds`),
    which can only shorten the delivery time: every node carries an upper bound on its output's
    Werner parameter (links ``w0``; swaps the product of their inputs' bounds; distillation the
    BBPSSW output at its inputs' bound; waiting only moves ``w`` towards 0)."""
    index = {id(n): i for i, n in enumerate(internal_nodes(tree))}
    with np.errstate(divide="ignore"):
        leaf_mean = -1.0 / np.expm1(np.asarray(log_q, np.float64))  # 1 / p_gen
    ones = np.ones(leaf_mean.shape[0])
    w_leaf = np.clip(np.broadcast_to(np.asarray(1.0 if w0 is None else w0, np.float64), leaf_mean.shape),
                     -1.0 / 3.0, 1.0)

    def visit(n):
        if isinstance(n, Link):
            return leaf_mean[:, n.segment], ones, ones, w_leaf[:, n.segment]
        k = index[id(n)]
        if isinstance(n, Swap):
            (ma, wa, da, ua), (mb, wb, db, ub) = visit(n.left), visit(n.right)
            p_op, u = p_swap[:, k], _swap_bound(ua, ub)
        else:
            ma, wa, da, ua = visit(n.child)
            mb, wb, db = ma, wa, da
            p_op, u = _distill_bounds(ua)
            if w0 is None:
                p_op = 1.0
        m = np.maximum(ma, mb)
        mean, att, dur = _level(m, np.asarray(tau[:, k], np.float64), p_op)
        return mean, att * (1.0 + wa + wb), np.maximum(dur, np.maximum(da, db)), u

    with np.errstate(over="ignore"):
        return visit(tree)[:3]


def swap_asap_censored_bound(p_gen, max_time: int) -> np.ndarray:
    """Lower bound on the probability that a swap-asap trajectory is still undelivered after
    ``max_time`` slots: every segment must first generate a link, so
    ``P(T > cap) ≥ 1 − Π_i (1 − (1 − p_gen_i)^cap)``; ``p_gen (..., segments)``."""
    pg = np.asarray(p_gen, np.float64)
    with np.errstate(divide="ignore"):
        miss = np.exp(max_time * np.log1p(-np.minimum(pg, 1.0)))  # (1 − p)^cap
    return 1.0 - np.prod(1.0 - miss, axis=-1)


def node_levels(tree) -> tuple:
    """Level index (position in the level list) of every internal node of a level protocol's
    tree, in the post-order of :func:`qnjax.protocol.internal_nodes`."""
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


def levels_estimate(levels, p_gen: float, p_swap: float, cutoff=None, w0=None) -> tuple[float, float]:
    """:func:`nested_estimate` of a level protocol with scalar parameters: ``(mean delivery
    time in steps, node attempts per delivery)``; ``cutoff`` one entry per level or ``None``;
    ``w0`` the fresh links' Werner parameter (``None``: distillation taken to always succeed)."""
    levels = tuple(levels)
    cut = list(cutoff) if cutoff is not None and len(cutoff) == len(levels) else [np.inf] * len(levels)
    tree = levels_to_tree(levels)
    n_seg, kinds = n_segments(tree), [isinstance(n, Swap) for n in internal_nodes(tree)]
    with np.errstate(divide="ignore"):
        log_q = np.full((1, n_seg), np.log1p(-float(p_gen)))
    ps = np.where(kinds, float(p_swap), 1.0)[None, :]
    tau = np.asarray(cut, np.float64)[list(node_levels(tree))][None, :]
    ws = None if w0 is None else np.full((1, n_seg), float(w0))
    m, work, _ = nested_estimate(tree, log_q, ps, tau, ws)
    return float(m[0]), float(work[0])


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
