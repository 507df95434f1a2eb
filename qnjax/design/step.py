"""Step-model optimizer: integer cut-offs per level (and distill placement) for bits per step.

Method: the engine's continuous cut-off relaxation (a randomized cut-off, piecewise linear
in τ) is maximized by Adam on ``u = log τ`` (``τ <= T_w``); the smooth surrogate of
:mod:`._common` replaces the clipped key rate. The gradient is a one-sided difference in
``u`` (``mode="fd"``, default): every start and its ``L`` shifted designs go through the
padded level program (:mod:`qnjax._engine.padded_levels`) in blocks of a fixed size, so one
compiled program serves every protocol (distill placements included) at one truncation, and
the integer stage reuses it. The Adam update runs in NumPy and stops once the rounded
designs of every problem's best starts stop changing or improving (the integer stage looks
at their neighbourhoods only). ``mode="fwd"`` / ``"rev"`` keep the jitted forward- / reverse-mode Adam step
of the per-protocol engine.

Working truncation: the problem's ``t_trunc`` is an upper bound. The search starts at the
power of two ``T_w`` covering :data:`MEAN_TIMES` waiting-time scales (:func:`working_t_trunc`)
and searches again at ``4 T_w`` (up to ``t_trunc``) while a winner's coverage at ``T_w`` is
below ``1 − 1e-9``; a covered winner has the figures it has at ``t_trunc`` to that accuracy.

Integer stage: the relaxed optima of the best starts are rounded, their neighbourhood
(``floor − 1 .. ceil + 1`` per level) is evaluated in one batch, and the best integer design
climbs to an integer local optimum (:func:`_polish`: all designs one step away, one batch per
move). The exact clipped key rate of the final design is reported.
"""


from __future__ import annotations

import itertools
import math
import time
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..exact import delivery
from ._common import Progress, integer_neighbourhood, make_runner
from .fd_adam import (  # noqa: F401  (re-exported: the step optimizer's search, by name)
    BLOCK, BLOCK_LARGE, MIN_STEPS, PAD_DEPTH, PATIENCE, TOL, FdAdamState, cosine_lr,
    evaluate_levels, fd_adam, fd_adam_init, fd_adam_update, objective_np, step_objective,
    surrogate_np,
)
from .problems import StepProblem
from .result import OptimizeResult

CHUNK = 20
MODES = ("fd", "fwd", "rev")


def distill_placements(levels: tuple, max_distill: int) -> list[tuple]:
    """``levels`` itself plus every way to insert 1..max_distill distill levels into its swap
    skeleton (before, between or after swaps; repeats allowed). Existing distill levels stay."""
    out = [tuple(levels)]
    slots = len(levels) + 1
    for k in range(1, max_distill + 1):
        for combo in itertools.combinations_with_replacement(range(slots), k):
            new = []
            for i in range(slots):
                new += ["distill"] * combo.count(i)
                if i < len(levels):
                    new.append(levels[i])
            t = tuple(new)
            if t not in out:
                out.append(t)
    return out


def _value_fn(levels, t_trunc):
    def value(free, fixed, args):
        r = delivery(levels, p_gen=fixed["p_gen"], w0=fixed["w0"], p_swap=fixed["p_swap"],
                     t_coh=fixed["t_coh"], cutoff=jnp.exp(free["u"]), t_trunc=t_trunc, warn=False)
        j = step_objective(r.key_fraction_smooth, r.mean_time, r.coverage)
        return j, r.secret_key_rate

    return value


@lru_cache(maxsize=64)
def _runner(levels, t_trunc, lr, n_steps, mode):
    tmax = math.log(t_trunc)
    project = lambda p: {"u": jnp.clip(p["u"], -3.0, tmax)}
    return make_runner(_value_fn(levels, t_trunc), lr, n_steps, CHUNK, project, mode)


T_WORK_MIN = 256
MEAN_TIMES = 16
COVERED = 1 - 1e-9
RADIUS = 1  # the integer stage's neighbourhood: floor - 1 .. ceil + 1 per level (0 loses 6 % on a benchmark case)


def _initial_u(key, n_starts, n_levels, t_trunc, p_gen):
    """Starts spread log-uniformly over ``[1, t_trunc]``; start 0 sits at the waiting-time
    scale ``2/p_gen`` doubled per level, start 1 at "no cut-off"."""
    hi = math.log(t_trunc)
    u = np.array(jax.random.uniform(key, (n_starts, n_levels), minval=0.0, maxval=hi))
    u[0] = np.log(np.clip(2.0 / p_gen * 2.0 ** np.arange(n_levels), 1, t_trunc))
    if n_starts > 1:
        u[1] = hi
    return u


def mean_time_scale(levels, p_gen: float, p_swap: float) -> float:
    """A scale of the mean delivery time without cut-offs, in steps (an upper bound for one
    level, a heuristic above): ``1 / p_gen`` for a link, times ``3/2`` per level (the mean of the later of two geometric waiting times,
    ``(3 − 2p) / (p (2 − p))``, is at most ``3/(2p)``) over the level's success probability
    (``p_swap``, or ``1/2`` for distillation: BBPSSW succeeds with ``F² + 2F(1 − F)/3 +
    5((1 − F)/3)²`` on Werner pairs of fidelity ``F``, Bennett et al., PRL 76, 722 (1996),
    at least 1/2 for every ``F``). Only a starting point: :func:`optimize_step` checks the
    winner's coverage and lengthens the truncation where the scale fell short."""
    t = 1.0 / p_gen
    for lv in levels:
        t *= 1.5 / (p_swap if lv == "swap" else 0.5)
    return t


def working_t_trunc(levels, problems, t_trunc: int) -> int:
    """Truncation the search starts at: the power of two at least ``MEAN_TIMES`` times the
    largest :func:`mean_time_scale` of ``problems`` (at least ``T_WORK_MIN``; few sizes, so
    questions share compiled programs), at most the problem's ``t_trunc``, an upper bound:
    :func:`optimize_step` grows the working truncation fourfold, up to ``t_trunc``, until
    the winning design's coverage is ``>= COVERED``."""
    need = MEAN_TIMES * max(mean_time_scale(levels, p.p_gen, p.p_swap) for p in problems)
    if not need < t_trunc:  # also an infinite scale (p_gen below 1e-308)
        return int(t_trunc)
    return int(min(t_trunc, max(T_WORK_MIN, 2 ** math.ceil(math.log2(max(need, 1))))))


def _chain_of(problem: StepProblem, levels: tuple, cutoff) -> "Chain":
    """The winning step-model design as a :class:`qnjax.Chain` (integer cut-offs per level)."""
    from ..chain import Chain

    return Chain.levels(levels, p_gen=problem.p_gen, p_swap=problem.p_swap, w0=problem.w0,
                        t_coh=problem.t_coh, cutoff=np.asarray(cutoff, float))


def _search(levels, fixed_p, problems, u0, T, learning_rate, n_steps, mode, dt, top_k=3):
    """The continuous stage at truncation ``T``: ``(best_val (P·S,), u_best (P·S, L), history)``."""
    P, L = len(problems), len(levels)
    S = len(u0) // P
    if mode == "fd":
        fixed = {k: np.repeat(v, S) for k, v in fixed_p.items()}
        return fd_adam(levels, fixed, u0, T, float(learning_rate), n_steps, dt, group=S, top_k=top_k)
    init, run = _runner(levels, T, float(learning_rate), n_steps, mode)
    fixed = {k: jnp.asarray(np.repeat(v, S), dt) for k, v in fixed_p.items()}
    state = init({"u": jnp.asarray(u0, dt)}, fixed, {"u": jnp.ones((P * S, L), dt)})
    hist = []
    for _ in range(n_steps // CHUNK):
        state, h = run(state, None)
        hist.append(np.asarray(h))
    return np.asarray(state.best_value), np.asarray(state.best_params["u"]), np.concatenate(hist)


def _integer_stage(levels, fixed_p, best_val, u_best, T, top_k):
    """Neighbourhoods of the ``top_k`` best starts of every problem, "no cut-off" (``T``), the
    relaxed optimum and the no-cut-off design, evaluated in one batch; the best integer design
    is then improved by :func:`_polish`. Per problem: ``(key rate, surrogate objective,
    cut-offs, figures of that design, summary)``."""
    P, S, L = best_val.shape[0], best_val.shape[1], len(levels)
    rows, owner = [], []
    for q in range(P):
        order = np.argsort(-best_val[q])[:top_k]
        cands = np.unique(np.concatenate(
            [integer_neighbourhood(np.exp(u_best[q, i]), T, radius=RADIUS, max_size=256) for i in order]
            + [np.full((1, L), float(T))]), axis=0)
        extra = np.stack([np.exp(u_best[q, order[0]]), np.full(L, np.inf)])
        rows += [cands, extra]
        owner += [(q, 0)] * len(cands) + [(q, 1), (q, 2)]
    rows = np.concatenate(rows)
    owner = np.array(owner)
    r = evaluate_levels(levels, {k: v[owner[:, 0]] for k, v in fixed_p.items()}, rows, T)
    skr, j = _scores(r)
    out = []
    for q in range(P):
        idx = np.nonzero((owner[:, 0] == q) & (owner[:, 1] == 0))[0]
        i = idx[np.lexsort((-j[idx], -skr[idx]))[0]]
        rel = np.nonzero((owner[:, 0] == q) & (owner[:, 1] == 1))[0][0]
        noc = np.nonzero((owner[:, 0] == q) & (owner[:, 1] == 2))[0][0]
        summary = {"protocol": ",".join(levels), "relaxed_secret_key_rate": float(skr[rel]),
                   "no_cutoff_secret_key_rate": float(skr[noc]), "neighbourhood_size": int(len(idx))}
        out.append([skr[i], j[i], rows[i], {k: v[i] for k, v in r.items()}, summary])
    seen = [{} for _ in range(P)]  # the integer designs evaluated so far, per problem
    for i in np.nonzero(owner[:, 1] == 0)[0]:
        seen[owner[i, 0]][tuple(rows[i])] = (skr[i], j[i], {k: v[i] for k, v in r.items()})
    _polish(levels, fixed_p, out, T, seen)
    for o in out:
        o[4].update(cutoff=tuple(int(c) for c in o[2]), secret_key_rate=float(o[0]))
    return [tuple(o) for o in out]


def _scores(r) -> tuple[np.ndarray, np.ndarray]:
    """What integer designs are ranked by: the exact key rate (NaN: 0), then the surrogate
    objective (NaN: −inf)."""
    return (np.nan_to_num(r["secret_key_rate"]),
            np.nan_to_num(surrogate_np(r["key_fraction_smooth"], r["mean_time"]), nan=-np.inf))


def _better(skr, j, skr0, j0) -> bool:
    """``(skr, j)`` beats ``(skr0, j0)``: a higher key rate (beyond rounding), or the same
    rate (zero included) and a higher surrogate objective."""
    if skr > skr0 * (1 + 1e-10) + 1e-300:
        return True
    return skr >= skr0 * (1 - 1e-10) and j > j0 + 1e-9


def _polish(levels, fixed_p, out, T, seen=None, max_iter: int = 50):
    """Integer hill climb from every problem's best design (``out`` rows, updated in place):
    evaluate the designs one step away (every ±1 combination when ``3**L <= 33``, else ±1
    along each level; cut-offs within ``[0, T]``), all problems in one batch, and move to the
    best one while it is :func:`_better`. When one problem is left, the rows its engine block
    of 32 has to spare go to longer steps along its last move (``c + k d``, ``k = 2, 3, …``),
    so a straight climb takes one call instead of one per step. ``seen``: per problem, the
    figures ``(key rate, objective, figures)`` of integer designs already evaluated (the
    integer stage's neighbourhoods; updated in place): only the others go to the engine, and
    a climb whose neighbours are all known ends without an engine call. Ends at an integer
    local optimum (no design one step away is better)."""
    L = len(levels)
    seen = [{} for _ in out] if seen is None else seen
    if 3 ** L <= 33:
        moves = np.array([d for d in itertools.product((-1, 0, 1), repeat=L) if any(d)], float)
    else:
        moves = np.concatenate([np.eye(L), -np.eye(L)])
    n_long = -len(moves) % BLOCK
    along = np.arange(2, n_long + 2, dtype=float)[:, None]
    last = np.zeros((len(out), L))  # each problem's last move (0: none yet)
    active = list(range(len(out)))
    for _ in range(max_iter):
        if not active:
            break
        if len(active) == 1 and np.any(last[active[0]]):  # one problem: its block has room to spare
            steps = np.concatenate([moves, along * last[active[0]]])[None]
        else:
            steps = np.broadcast_to(moves, (len(active),) + moves.shape)
        per = steps.shape[1]
        rows = np.clip(np.stack([out[q][2] for q in active])[:, None, :] + steps, 0, T).reshape(-1, L)
        owner = np.repeat(active, per)
        keys = [tuple(c) for c in rows]
        pending = {}  # rows to evaluate: unseen designs, each once (clipping repeats some)
        for i, (q, c) in enumerate(zip(owner, keys)):
            if c not in seen[q]:
                pending.setdefault((q, c), i)
        new = list(pending.values())
        if new:
            r = evaluate_levels(levels, {k: v[owner[new]] for k, v in fixed_p.items()}, rows[new], T)
            skr, j = _scores(r)
            for a, i in enumerate(new):
                seen[owner[i]][keys[i]] = (skr[a], j[a], {k: v[a] for k, v in r.items()})
        known = [seen[q][c] for q, c in zip(owner, keys)]
        skr = np.array([k[0] for k in known])
        j = np.array([k[1] for k in known])
        still = []
        for a, q in enumerate(active):
            idx = np.arange(a * per, (a + 1) * per)
            i = idx[np.lexsort((-j[idx], -skr[idx]))[0]]
            if _better(skr[i], j[i], out[q][0], out[q][1]):
                if i - a * per < len(moves):
                    last[q] = moves[i - a * per]
                out[q][:4] = [skr[i], j[i], rows[i], known[i][2]]
                still.append(q)
        active = still


def optimize_step(problems, *, seed: int = 0, n_starts: int = 8, n_steps: int = 60,
                  learning_rate: float = 0.15, progress: bool = True, top_k: int = 3,
                  mode: str = "fd") -> list[OptimizeResult]:
    """Optimize one or several :class:`StepProblem` sharing ``protocol``, ``t_trunc`` and
    ``max_distill``, all in the same batched runs (one per distill placement).

    ``t_trunc`` is an upper bound: the search runs at :func:`working_t_trunc` and grows it
    fourfold (searching again from the best points found) while a problem's winning integer design has a coverage below
    ``COVERED`` there. A winner covered at the working truncation ``T_w`` has the figures it
    has at ``t_trunc`` to that accuracy (its pmf is exact below ``T_w`` and non-negative, so
    the coverage at ``t_trunc`` is at least as large; the means come from the attempt
    decomposition, which needs only the sub-protocols covered), and its cut-offs at ``T_w``
    (no cut-off there) are reported as ``t_trunc``."""
    t0 = time.perf_counter()
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    problems = [problems] if isinstance(problems, StepProblem) else list(problems)
    p0 = problems[0]
    for p in problems[1:]:
        if (p.protocol, p.t_trunc, p.max_distill) != (p0.protocol, p0.t_trunc, p0.max_distill):
            raise ValueError("problems solved together must share protocol, t_trunc and max_distill")
    P, S, T = len(problems), n_starts, p0.t_trunc
    dt = jnp.result_type(float)
    fixed_p = {k: np.array([getattr(p, k) for p in problems], float)
               for k in ("p_gen", "w0", "p_swap", "t_coh")}
    protocols = distill_placements(p0.protocol, p0.max_distill)
    n_chunks = max(1, math.ceil(n_steps / CHUNK))
    bar = Progress(progress, "optimizing cut-offs", len(protocols) * (n_chunks + 1))
    key = jax.random.PRNGKey(seed)
    best = [None] * P
    summaries = [[] for _ in range(P)]
    try:
        for pi, levels in enumerate(protocols):
            L = len(levels)
            tw = working_t_trunc(levels, problems, T)
            u0 = np.concatenate([_initial_u(jax.random.fold_in(key, pi * 100003 + q), S, L, tw,
                                            problems[q].p_gen) for q in range(P)])
            while True:
                best_val, u_best, hist = _search(levels, fixed_p, problems, u0, tw, learning_rate,
                                                 n_chunks * CHUNK, mode, dt, top_k)
                bar.advance(n_chunks, description=f"{','.join(levels)} (t_trunc {tw})")
                stage = _integer_stage(levels, fixed_p, best_val.reshape(P, S), u_best.reshape(P, S, L),
                                       tw, top_k)
                covered = all(float(np.nan_to_num(s[3]["coverage"])) >= COVERED for s in stage)
                if covered or tw >= T:
                    break
                tw = min(T, 4 * tw)
                u0 = u_best  # the longer search starts where the shorter one ended
                bar.add_total(n_chunks)
            bar.advance()
            for q, (skr, j, cut, sel, summary) in enumerate(stage):
                cut = np.where(cut >= tw, float(T), cut)  # no cut-off at the working truncation
                summary["cutoff"] = tuple(int(c) for c in cut)
                summary["working_t_trunc"] = tw
                summaries[q].append(summary)
                if best[q] is None or (skr, j) > (best[q][0], best[q][1]):
                    best[q] = (skr, j, levels, cut, sel, hist, summary)
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    out = []
    for q in range(P):
        _, _, levels, cut, r, hist, summary = best[q]
        a = lambda x: jnp.asarray(x, dt)
        out.append(OptimizeResult(
            kind="step", protocol=levels, protocol_text=",".join(levels),
            design={"cutoff": jnp.asarray(cut.astype(np.int64))},
            secret_key_rate=a(r["secret_key_rate"]), skr_bits_per_s=a(np.nan),
            mean_time=a(r["mean_time"]), mean_fidelity=a(r["mean_fidelity"]),
            mean_werner=a(r["mean_werner"]), key_fraction=a(r["key_fraction"]),
            coverage=a(r["coverage"]), history=a(hist),
            baselines={"no_cutoff_secret_key_rate": a(summary["no_cutoff_secret_key_rate"]),
                       "relaxed_secret_key_rate": a(summary["relaxed_secret_key_rate"])},
            candidates=tuple(tuple(sorted(c.items())) for c in summaries[q]),
            wall_s=wall, chain=_chain_of(problems[q], levels, cut),
        ))
    return out
