"""Swap-tree designs of any segment count: tree variants, screening and integer refinement.

Every design is evaluated exactly by the padded program of its depth (:mod:`.padded`), in
batches of a fixed size ``B0``, so one compiled program per (depth, truncation) serves every
segment count, tree shape and distance of a search.

1. **Variants**: for ``S`` segments, every balanced swap tree (each sub-chain of ``m``
   segments splits into ``ceil(m/2)`` and ``floor(m/2)``, either side taking the extra
   segment, which decides which links are swapped first); mirror images are dropped when
   the stations' hardware is mirror-symmetric; at most ``MAX_VARIANTS`` are kept.
2. **Screening**: every variant at uniform spacing with all cut-offs tied, at waiting-time
   scales ``c / p_gen`` and memory scales (:func:`screen_cutoffs`), and none: the best is the
   count's screened design.
3. **Refinement**: a pattern search on integer designs, on the exact figures through the
   smooth surrogate of :mod:`._common` (``log`` of the key rate where the key fraction exceeds
   ``1e-3``, continued linearly below, so designs without key still lead somewhere). Each
   round evaluates, in one batch for all jobs, every single move (each cut-off times
   ``1 ± s``, at least one step; with free spacing, each repeater moved by ``± δ`` km), then
   the combination of all improving moves; the best is kept, and ``s`` / ``δ`` halve when
   nothing improves. The cut-offs are integers throughout (a cut-off of ``t`` steps or more
   never acts at truncation ``t``: it means none).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..protocol import Link, Swap
from ._common import F0
from .padded import chain_eval_padded, layout, layout_arrays, tree_depth

B0 = 32
MAX_VARIANTS = 8
SCREEN_FACTORS = (2.0, 4.0, 8.0, 16.0)
MEMORY_FACTORS = (0.25, 1.0)
COVERAGE_OK = 0.95
NO_KEY_GROWTH = 4
"""How far :func:`refine` lengthens the truncation of a job whose design has no key: at most
this factor times the truncation it started at."""
MEAN_TIMES = 10
FIG_KEYS = ("key_fraction_smooth", "key_fraction", "mean_time", "mean_fidelity", "mean_werner",
            "coverage", "clock_s", "secret_key_rate", "skr_per_channel_use", "skr_bits_per_s")


# ------------------------------------------------------------------ tree variants
def balanced_variants(n: int) -> list:
    """Every balanced swap tree over segments ``0..n-1`` (sorted by their text)."""

    @lru_cache(maxsize=None)
    def build(lo, hi):
        if hi - lo == 1:
            return (Link(lo),)
        m = hi - lo
        splits = {lo + (m + 1) // 2, lo + m // 2}
        out = []
        for mid in sorted(splits):
            for a in build(lo, mid):
                for b in build(mid, hi):
                    out.append(Swap(a, b))
        return tuple(out)

    return list(build(0, n))


def _mirror(v, n):
    if isinstance(v, Link):
        return Link(n - 1 - v.segment)
    return Swap(_mirror(v.right, n), _mirror(v.left, n))


def tree_variants(n: int, symmetric: bool, limit: int = MAX_VARIANTS) -> list:
    """Balanced trees over ``n`` segments, one per mirror pair when ``symmetric``; the
    left-heavy tree (:func:`qnjax.protocol.swap_asap_tree`) first, at most ``limit``."""
    from ..protocol import format_tree, swap_asap_tree

    out, seen = [], set()
    first = swap_asap_tree(n)
    for t in [first] + sorted(balanced_variants(n), key=format_tree):
        key = format_tree(t)
        if key in seen:
            continue
        seen.add(key)
        if symmetric:
            seen.add(format_tree(_mirror(t, n)))
        out.append(t)
    return out[:limit]


# ------------------------------------------------------------------ batched evaluation
@lru_cache(maxsize=32)
def _program(depth: int, t_trunc: int, scheme: str):
    def f(hw, rows, lengths, tau):
        return jax.vmap(lambda r, L, c: chain_eval_padded(depth, t_trunc, scheme, hw, r, L, c))(
            rows, lengths, tau)

    return jax.jit(f)


class Job:
    """One structure at one distance: static tree, padded layout, station hardware."""

    def __init__(self, st, b: int, distance: float, t_trunc: int, stations: dict, depth: int = 0):
        self.st, self.b, self.distance, self.t = st, b, float(distance), int(t_trunc)
        self.t_first = self.t  # the truncation the job was made with (kept by with_t)
        self.n, self.K = st.n, st.n_nodes
        self.depth = max(tree_depth(st.tree), depth)
        smax = 2**self.depth
        row = layout_arrays(layout(st.tree, self.depth))
        pad = lambda a, m: np.concatenate([a, np.repeat(a[-1:], m - len(a), 0)], 0)
        row["seg_mask"] = (np.arange(smax) < self.n).astype(float)
        row["st_rates"] = pad(stations["rates"], smax + 1)
        row["st_pswap"] = pad(stations["p_swap"], smax + 1)
        row["st_bsm"] = pad(stations["bsm"], smax + 1)
        self.row = row

    @property
    def key(self):
        return (self.depth, self.t)

    def with_t(self, t: int) -> "Job":
        """The same job at truncation ``t``."""
        new = object.__new__(Job)
        new.__dict__.update(self.__dict__)
        new.t = int(t)
        return new


def wanted_t(job, figs, cap: int) -> int:
    """``job.t``, or a power of two >= ``MEAN_TIMES`` mean delivery times of ``figs`` (at
    most ``cap``) when the design outgrew its truncation."""
    m = figs.get("mean_time", 0.0)
    if not np.isfinite(m) or MEAN_TIMES * m <= job.t or job.t >= cap:
        return job.t
    return int(min(cap, 1 << math.ceil(math.log2(MEAN_TIMES * m))))


def evaluate_designs(scheme: str, hw: dict, designs: list) -> list[dict]:
    """Exact figures of ``designs`` = ``[(job, lengths (n,), cut-offs (K,)), ...]``; cut-offs
    ``>= t_trunc`` (or inf) mean none. Returns one dict of floats per design."""
    out = [None] * len(designs)
    groups: dict = {}
    for i, (job, _, _) in enumerate(designs):
        groups.setdefault(job.key, []).append(i)
    dt = jnp.result_type(float)
    for (depth, t), idx in groups.items():
        smax = 2**depth
        prog = _program(depth, t, scheme)
        for c0 in range(0, len(idx), B0):
            ids = idx[c0:c0 + B0]
            ids_p = ids + [ids[0]] * (B0 - len(ids))
            rows = {k: np.stack([designs[i][0].row[k] for i in ids_p]) for k in designs[ids[0]][0].row}
            L = np.zeros((B0, smax))
            tau = np.full((B0, smax - 1), np.inf)
            for r, i in enumerate(ids_p):
                job, lens, cut = designs[i]
                L[r, :job.n] = lens
                c = np.asarray(cut, float)
                tau[r, :job.K] = np.where(c >= job.t, np.inf, c)
            f = prog(hw, {k: jnp.asarray(v) if v.dtype.kind == "i" else jnp.asarray(v, dt)
                          for k, v in rows.items()}, jnp.asarray(L, dt), jnp.asarray(tau, dt))
            f = {k: np.asarray(getattr(f, k)) for k in FIG_KEYS + ("p_gen",)}
            for r, i in enumerate(ids):
                d = {k: float(f[k][r]) for k in FIG_KEYS}
                d["p_gen"] = f["p_gen"][r, :designs[i][0].n]
                ok = np.isfinite(d["skr_bits_per_s"]) and d["coverage"] >= COVERAGE_OK
                d["skr"] = d["skr_bits_per_s"] if ok else 0.0
                d["obj"] = objective(d) if ok else -np.inf
                out[i] = d
    return out


def objective(d) -> float:
    """The search's objective: the smooth surrogate of :mod:`._common` on bits per second,
    ``log(rate)`` where the key fraction exceeds ``F0`` and continued linearly below, so a
    design without key still compares (``−inf`` where the figures are not finite)."""
    f, T = d["key_fraction_smooth"], d["mean_time"] * d["clock_s"]
    if not (np.isfinite(f) and np.isfinite(T) and T > 0):
        return -np.inf
    g = math.log(f) if f >= F0 else math.log(F0) + (f - F0) / F0
    return g - math.log(T)


# ------------------------------------------------------------------ screening and refinement
def screen_cutoffs(p: float, t_mem: float, t: int) -> list:
    """Cut-offs (steps) tried at screening: ``c / p_gen`` for ``c`` in ``SCREEN_FACTORS``
    (waiting-time scale), ``MEMORY_FACTORS`` times the shortest memory's coherence time in
    steps ``t_mem``, and ``t`` (none)."""
    out = [c / max(p, 1e-300) for c in SCREEN_FACTORS] + [m * t_mem for m in MEMORY_FACTORS] + [t]
    return [float(min(t, max(1, round(v)))) for v in out]


def screen(scheme, hw, jobs: list, cutoffs: list, cap: int) -> tuple[list, list]:
    """Best (by the search's objective) of tied cut-offs ``cutoffs[j]`` at uniform spacing
    for every job; a job whose best design outgrew its truncation is screened again at a
    longer one (:func:`wanted_t`). Returns the jobs and ``(design, figures)`` per job,
    design = ``(lengths, cut-offs)``."""
    out = _screen(scheme, hw, jobs, cutoffs)
    for _ in range(3):
        redo = [j for j, job in enumerate(jobs) if wanted_t(job, out[j][1], cap) > job.t]
        if not redo:
            break
        for j in redo:
            jobs[j] = jobs[j].with_t(wanted_t(jobs[j], out[j][1], cap))
        again = _screen(scheme, hw, [jobs[j] for j in redo], [cutoffs[j] for j in redo])
        for j, r in zip(redo, again):
            out[j] = r
    return jobs, out


def _screen(scheme, hw, jobs, cutoffs):
    designs, owner = [], []
    for j, job in enumerate(jobs):
        L = np.full(job.n, job.distance / job.n)
        for tau in sorted({min(c, job.t) for c in cutoffs[j]} | {job.t}):
            designs.append((job, L, np.full(job.K, tau)))
            owner.append(j)
    figs = evaluate_designs(scheme, hw, designs)
    out = []
    for j in range(len(jobs)):
        k = max((i for i, o in enumerate(owner) if o == j), key=lambda i: (figs[i]["obj"], figs[i]["skr"]))
        out.append(((designs[k][1], designs[k][2]), figs[k]))
    return out


def _moves(job, L, tau, s, delta, free, lmin, lmax):
    """Single-coordinate moves: cut-offs ``× (1 ± s)`` (at least ±1 step), repeaters ``± delta`` km."""
    out = []
    for k in range(job.K):
        for sign in (-1, 1):
            v = tau[k] * (1 + sign * s)
            v = round(v) if round(v) != tau[k] else tau[k] + sign
            v = min(max(v, 1), job.t)
            if v != tau[k]:
                c = tau.copy()
                c[k] = v
                out.append((("c", k, sign), L, c))
    if free and delta > 0:
        for j in range(job.n - 1):  # station j + 1 between segments j and j + 1
            for sign in (-1, 1):
                Ln = L.copy()
                Ln[j] += sign * delta
                Ln[j + 1] -= sign * delta
                if Ln[j] >= lmin - 1e-12 and Ln[j + 1] >= lmin - 1e-12 and Ln[j] <= lmax and Ln[j + 1] <= lmax:
                    out.append((("L", j, sign), Ln, tau))
    return out


def _no_key(figs) -> bool:
    """The figures are trustworthy (covered, finite: a finite objective) and give no key: the
    case :func:`refine` stops lengthening the truncation for. An uncovered design's zero rate
    says nothing about its key."""
    return figs["obj"] > -np.inf and figs["skr"] <= 0


class Point(NamedTuple):
    """Where the pattern search of one job stands: a design and its figures."""

    lengths: np.ndarray
    """Segment lengths ``(n,)``, km."""
    cutoff: np.ndarray
    """Cut-offs ``(K,)`` per internal node, steps (``>= t_trunc``: none)."""
    figs: dict
    """Figures of :func:`evaluate_designs` (``skr``, ``obj``, ...)."""


def refine(scheme, hw, jobs: list, starts: list, *, free: bool, lmin: float, lmax: float,
           cap: int, max_rounds: int = 16, halvings: int = 4, rtol: float = 1e-4,
           history=None) -> list:
    """Pattern search from ``starts`` (``((lengths, cut-offs), figures)`` per job), all jobs
    batched together: a move is kept when it raises the objective (the log key rate, continued
    where there is no key) by more than ``rtol``; the steps halve when none does, ``halvings`` times, then the job stops.
    A job whose design outgrows its truncation continues at a longer one (:func:`wanted_t`),
    unless the design has no key (:func:`_no_key`) and the truncation would exceed
    :data:`NO_KEY_GROWTH` times the job's first one (:attr:`Job.t_first`, also across
    refinements): the job then stops. (Without key the search climbs the key fraction toward
    shorter cut-offs and ever longer delivery times; 15 segments over the default scenario's
    300 km went from 512 to 32768 steps in six minutes and found none.)
    Returns the jobs and the improved ``((lengths, cut-offs), figures)`` per job."""
    jobs = list(jobs)
    state = [Point(np.asarray(d[0], float).copy(), np.asarray(d[1], float).copy(), f) for d, f in starts]
    s = [0.5] * len(jobs)
    left = [halvings] * len(jobs)
    delta = [0.1 * j.distance / j.n if free else 0.0 for j in jobs]
    active = [True] * len(jobs)
    for _ in range(max_rounds):
        batch, owner = [], []
        for j, job in enumerate(jobs):
            if not active[j]:
                continue
            L, tau = state[j].lengths, state[j].cutoff
            for mv, Ln, c in _moves(job, L, tau, s[j], delta[j], free, lmin, lmax):
                batch.append((job, Ln, c))
                owner.append((j, mv))
        if not batch:
            break
        figs = evaluate_designs(scheme, hw, batch)
        combo, combo_owner, best_single = [], [], {}
        for j in {o[0] for o in owner}:
            mine = [i for i, o in enumerate(owner) if o[0] == j]
            cur = state[j].figs["obj"]
            better = [i for i in mine if figs[i]["obj"] > cur + rtol]
            if not better:
                best_single[j] = None
                continue
            best_single[j] = max(better, key=lambda i: figs[i]["obj"])
            # combine the best improving move of every coordinate
            L, tau = state[j].lengths.copy(), state[j].cutoff.copy()
            coords = {}
            for i in better:
                kind, k, _ = owner[i][1]
                if (kind, k) not in coords or figs[i]["obj"] > figs[coords[(kind, k)]]["obj"]:
                    coords[(kind, k)] = i
            if len(coords) > 1:
                for (kind, k), i in coords.items():
                    if kind == "c":
                        tau[k] = batch[i][2][k]
                    else:
                        d = batch[i][1][k] - state[j].lengths[k]
                        L[k] += d
                        L[k + 1] -= d
                if np.all(L >= lmin - 1e-12) and np.all(L <= lmax):
                    combo.append((jobs[j], L, tau))
                    combo_owner.append(j)
        cfigs = evaluate_designs(scheme, hw, combo) if combo else []
        for j, i in best_single.items():
            if i is None:
                s[j] /= 2
                delta[j] /= 2
                left[j] -= 1
                active[j] = left[j] > 0
                continue
            cand = Point(batch[i][1], batch[i][2], figs[i])
            for c, jj in zip(range(len(combo)), combo_owner):
                if jj == j and cfigs[c]["obj"] > cand.figs["obj"]:
                    cand = Point(combo[c][1], combo[c][2], cfigs[c])
            state[j] = Point(np.asarray(cand.lengths, float), np.asarray(cand.cutoff, float), cand.figs)
        want = {j: wanted_t(job, state[j].figs, cap) for j, job in enumerate(jobs)}
        retune = []
        for j in (j for j in want if want[j] > jobs[j].t):
            if _no_key(state[j].figs) and want[j] > NO_KEY_GROWTH * jobs[j].t_first:
                active[j] = False  # no key, and heading for ever longer delivery times: stop here
            else:
                retune.append(j)
        if retune:
            for j in retune:  # "none" (>= the old truncation) stays none
                old = jobs[j].t
                jobs[j] = jobs[j].with_t(want[j])
                tau = state[j].cutoff
                state[j] = state[j]._replace(cutoff=np.where(tau >= old, jobs[j].t, tau))
            again = evaluate_designs(scheme, hw, [(jobs[j], state[j].lengths, state[j].cutoff) for j in retune])
            for j, f in zip(retune, again):
                state[j] = state[j]._replace(figs=f)
        if history is not None:
            history.append(max(st.figs["obj"] for st in state))
        if not any(active):
            break
    return jobs, [((p.lengths, p.cutoff), p.figs) for p in state]


__all__ = ["tree_variants", "balanced_variants", "Job", "Point", "evaluate_designs", "objective",
           "screen", "refine"]
