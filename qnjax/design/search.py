"""Physical-scenario search over segment counts, tree shapes, positions and cut-offs, for one
or many distances.

1. **Counts**: the scenario's ``search.segments``, or every count from 1 up to
   ``MAX_SEGMENTS`` that the segment-length bounds and station overrides allow. Each gets a
   rigorous key-rate upper bound (:func:`.chain.rate_upper_bound`); counts past the first
   whose bound is zero (the links and swaps alone leave no key) are never considered.
2. **Branch and bound**: counts are screened best bound first (:mod:`.treesearch`: every
   balanced tree variant at uniform spacing, a few cut-off scales); a count whose bound is
   below the best design already found at a distance is pruned there, so the search stops
   once the bound of every remaining count falls below the best key rate.
3. **Refinement**: the ``search.top_structures`` best screened structures per distance are
   refined by a pattern search on integer cut-offs at uniform spacing (the uniform-spacing
   baseline); the best of them also moves its repeaters (free spacing).
4. Structures with purification rounds (``max_rounds_per_level > 0``) keep the gradient
   stage of :mod:`.gradient`, for the counts whose bound is above the best design.

If nothing yields a key, :class:`NoFeasibleDesign` says what stopped each count.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._common import Progress
from .chain import (Structure, bound_hardware, build_tree, hardware, link_host, mean_max_geometric,
                    n_levels,
                    rate_upper_bound)
from .gradient import T_CAP, evaluate, link_knobs, rounds_stage
from .problems import PhysicalScenario
from .padded import depth_of
from .records import DesignFigures, DistanceResult
from .treesearch import Job, evaluate_designs, objective, refine, screen, screen_cutoffs, tree_variants

MAX_SEGMENTS = 64
T_MIN = 512
MEAN_TIMES = 10
SHARED_DEPTH = 4


class NoFeasibleDesign(ValueError):
    """No structure yields a secret key; ``reasons`` maps each segment count to what stopped it."""

    def __init__(self, distance_km: float, reasons: dict):
        self.distance_km, self.reasons = distance_km, dict(reasons)
        parts = "; ".join(f"{n} segments: {r}" for n, r in self.reasons.items())
        super().__init__(f"no design yields a secret key at {distance_km:g} km ({parts})")


def _stations(scenario, n):
    st = [scenario.station(i, n) for i in range(n + 1)]
    return dict(rates=np.array([s.memory.walsh_rates_per_s() for s in st], float),
                p_swap=np.array([s.swap_success for s in st], float),
                bsm=np.array([s.bsm_walsh() for s in st], float)), st == st[::-1]


def _count_reason(scenario, n, d):
    s = scenario.search
    if n * s.min_segment_km > d * (1 + 1e-12):
        return f"infeasible: min_segment_km = {s.min_segment_km:g} times {n} exceeds {d:g} km"
    if n * s.max_segment_km < d * (1 - 1e-12):
        return f"infeasible: max_segment_km = {s.max_segment_km:g} times {n} is below {d:g} km"
    for ov in scenario.stations:
        if not -(n + 1) <= ov.index <= n:
            return f"infeasible: station index {ov.index} does not exist with {n} segments"
    return None


def _work_t(scenario, st, hw, d):
    """Working truncation: a power of two >= ``MEAN_TIMES`` estimated mean delivery times
    (``E[max]`` of the links' first successes, the delivery time without cut-offs and
    failures, divided by ``p_swap`` per level)
    at least ``T_MIN``, at most the scenario's ``t_trunc`` (or ``T_CAP``); ``None`` when the
    estimate exceeds four times the cap (the count is then reported as truncation-limited)."""
    cap = scenario.search.t_trunc or T_CAP
    p = float(link_host(scenario.heralding.scheme, hw, d / st.n)[0][0])
    est = mean_max_geometric(p, st.n) / max(float(np.min(np.asarray(hw["p_swap"]))), 1e-9) ** n_levels(st.n)
    if MEAN_TIMES * est > 4 * cap:
        return None
    return int(min(cap, max(T_MIN, 1 << math.ceil(math.log2(max(MEAN_TIMES * est, 1))))))


def search(scenario: PhysicalScenario, distances, *, seed=None, n_starts=None, n_steps=None,
           learning_rate=None, top_structures=None, progress=True, description="optimizing"):
    """Optimize the scenario's design at every distance in ``distances`` (km).

    Returns ``(per_distance, summaries)``: for each distance a :class:`.records.DistanceResult`
    (the winning ``structure``, ``t_trunc``, and the ``best`` / ``uniform`` / ``no_cutoff`` /
    ``free`` designs as :class:`.records.DesignFigures`, the winner's ``history`` and
    ``reason``: ``None``, or (no design yields a key, every rate 0) ``{segments: why}``);
    ``summaries`` has one entry per segment count (and per
    purification structure) considered: ``segments``, ``protocol``, ``skr_bits_per_s``,
    ``bound_bits_per_s``, ``status`` and ``reason`` per distance.
    """
    s = scenario.search
    seed = s.seed if seed is None else seed
    n_starts = s.starts if n_starts is None else n_starts
    n_steps = s.steps if n_steps is None else n_steps
    lr = s.learning_rate if learning_rate is None else learning_rate
    top = s.top_structures if top_structures is None else top_structures
    distances = np.atleast_1d(np.asarray(distances, float))
    for d in distances:
        scenario.check_distance(float(d), "distance")
    B, scheme = len(distances), scenario.heralding.scheme
    lmin = s.min_segment_km
    lmax = s.max_segment_km
    counts = list(s.segments) if s.segments else list(range(1, MAX_SEGMENTS + 1))
    knobs = link_knobs(scenario)
    bar = Progress(progress, description, len(counts))
    best = np.zeros(B)
    results = [None] * B  # per distance: (structure, job, {name: (design, figs)}, history)
    entries = {}
    try:
        # ---- bounds (cheap, no compilation); counts past a zero bound everywhere are dropped
        info = []
        for n in counts:
            st0 = Structure(n, (0,) * n_levels(n), build_tree(n, (0,) * n_levels(n)))
            hw0 = hardware(scenario, st0)
            hw_t, hw_kf = bound_hardware(scenario, hw0)
            ub = np.zeros(B)
            why = [None] * B
            for b, d in enumerate(distances):
                why[b] = _count_reason(scenario, n, d)
                if why[b] is None:
                    ub[b] = rate_upper_bound(st0, scheme, hw_t, d, hw_kf)
                    if ub[b] <= 0:
                        why[b] = "no key: the fresh links and swaps alone leave a key fraction <= 0"
            info.append((n, st0, hw0, ub, why))
            entries[n] = dict(segments=n, structure=st0.label, protocol=st0.text, rounds=list(st0.rounds),
                              skr_bits_per_s=[0.0] * B, bound_bits_per_s=ub.tolist(),
                              status=["infeasible" if w else "pending" for w in why],
                              reason=list(why), t_trunc=0, wall_s=0.0)
            if not s.segments and all(w is not None and w.startswith("no key") for w in why) and n > 1:
                break
        # ---- one padded depth for every count up to 2**SHARED_DEPTH segments (one program)
        live_n = [x[0] for x in info if (x[3] > 0).any()]
        d_shared = min(SHARED_DEPTH, depth_of(max(live_n))) if live_n else 0
        # ---- screening, best bound first
        order = sorted(info, key=lambda x: -x[3].max())
        screened = {}  # (n, b) -> (job, design, figs)
        for n, st0, hw0, ub, why in order:
            if knobs:  # link knobs are tuned by the gradient stage (below)
                break
            t0 = time.perf_counter()
            live = [b for b in range(B) if why[b] is None and ub[b] > best[b] * (1 + 1e-9)]
            e = entries[n]
            for b in range(B):
                if why[b] is None and b not in live:
                    e["status"][b] = "pruned"
                    e["reason"][b] = f"pruned: bound below the best design ({best[b]:.4g} bits/s)"
            if not live:
                bar.advance(description=f"pruned {n} seg")
                continue
            bar.advance(description=f"screening {n} seg")
            stations, sym = _stations(scenario, n)
            if n == 1:
                for b in live:
                    f = evaluate(st0, scheme, hw0, [[distances[b]]], np.zeros((1, 0)), 0)
                    skr = float(f["skr_bits_per_s"][0]) if np.isfinite(f["skr_bits_per_s"][0]) else 0.0
                    figs = {k: float(np.asarray(v)[0]) for k, v in f.items() if np.asarray(v).ndim == 1}
                    figs.update(p_gen=np.asarray(f["p_gen"][0]), skr=skr)
                    figs["obj"] = objective(figs)
                    screened[(n, b)] = (None, (np.array([distances[b]]), np.zeros(0)), figs, st0)
                    e["skr_bits_per_s"][b] = skr
                    e["status"][b] = "optimized"
                    best[b] = max(best[b], skr)
                continue
            jobs, refs = [], []
            cap = scenario.search.t_trunc or T_CAP
            for b in live:
                t = _work_t(scenario, st0, hw0, distances[b])
                if t is None:
                    e["status"][b], e["reason"][b] = "infeasible", (
                        f"truncation: the mean delivery time needs more than t_trunc = "
                        f"{scenario.search.t_trunc or T_CAP} steps")
                    continue
                e["t_trunc"] = max(e["t_trunc"], t)
                p, dur = (float(x[0]) for x in link_host(scheme, hw0, distances[b] / n)[:2])
                t_mem = 1.0 / max(float(stations["rates"].max()) * 2 * dur, 1e-300)
                cuts = screen_cutoffs(p, t_mem, t)
                for tree in tree_variants(n, sym):
                    st = Structure(n, (0,) * n_levels(n), tree)
                    jobs.append(Job(st, b, distances[b], t, stations, d_shared))
                    refs.append(cuts)
            jobs, res = screen(scheme, _shared(hw0), jobs, refs, cap)
            for job, (des, figs) in zip(jobs, res):
                key = (n, job.b)
                if key not in screened or figs["obj"] > screened[key][2]["obj"]:
                    screened[key] = (job, des, figs, job.st)
            for b in live:
                if (n, b) in screened:
                    job, des, figs, st = screened[(n, b)]
                    e["skr_bits_per_s"][b] = figs["skr"]
                    e["protocol"] = st.text
                    e["status"][b] = "screened"
                    best[b] = max(best[b], _certain(figs))
            e["wall_s"] += time.perf_counter() - t0
        # ---- refinement: top structures per distance, cut-offs at uniform spacing
        hist = {b: [] for b in range(B)}
        ref_jobs, ref_starts = [], []
        for b in range(B):
            cands = sorted([k for k in screened if k[1] == b and screened[k][0] is not None],
                           key=lambda k: (-screened[k][2]["skr"], -screened[k][2]["obj"]))
            for k in cands[:top]:
                ref_jobs.append(screened[k][0])
                ref_starts.append((screened[k][1], screened[k][2]))
        hw_s = _shared(info[0][2])
        bar.add_total(2)
        bar.advance(description="refining cut-offs")
        cap = s.t_trunc or T_CAP
        ref_jobs, uni = refine(scheme, hw_s, ref_jobs, ref_starts, free=False, lmin=lmin, lmax=lmax, cap=cap,
                               history=hist[0] if B == 1 else None) if ref_jobs else ([], [])
        per_b = {}
        for job, (des, figs) in zip(ref_jobs, uni):
            e = entries[job.n]
            e["skr_bits_per_s"][job.b] = max(e["skr_bits_per_s"][job.b], figs["skr"])
            e["status"][job.b] = "optimized"
            if job.b not in per_b or (figs["skr"], figs["obj"]) > (per_b[job.b][2]["skr"], per_b[job.b][2]["obj"]):
                per_b[job.b] = (job, des, figs)
        # ---- the winner per distance also moves its repeaters
        win = [per_b[b] for b in sorted(per_b) if per_b[b][0].n > 1]
        bar.advance(description="refining positions")
        wjobs, free = refine(scheme, hw_s, [w[0] for w in win], [(w[1], w[2]) for w in win], free=True,
                             lmin=lmin, lmax=lmax, cap=cap, history=hist[0] if B == 1 else None) if win else ([], [])
        free_by_b = {w.b: (w, f) for w, f in zip(wjobs, free)}
        for b in range(B):
            cands = [(screened[k][3], None, screened[k][1], screened[k][2]) for k in screened
                     if k[1] == b and screened[k][0] is None]  # one segment
            if b in per_b:
                job, des, figs = per_b[b]
                cands.append((job.st, job, des, figs))
            if not cands:
                continue
            st, job, des, figs = max(cands, key=lambda c: c[3]["skr"])
            designs = {"uniform": (des, figs)}
            if job is not None and b in free_by_b:
                fjob, designs["free"] = free_by_b[b]
                if fjob.t > job.t:  # one truncation for the reported designs
                    none = des[1] >= job.t
                    job, des = fjob, (des[0], np.where(none, fjob.t, des[1]))
                    designs["uniform"] = (des, evaluate_designs(scheme, hw_s, [(job, *des)])[0])
                L_free = designs["free"][0][0]
                nc = evaluate_designs(scheme, hw_s, [(job, L_free, np.full(job.K, np.inf))])[0]
                designs["no_cutoff"] = ((L_free, np.full(job.K, np.inf)), nc)
            else:
                designs["free"] = designs["no_cutoff"] = designs["uniform"]
            results[b] = (st, job, designs, hist[b])
            best[b] = max(best[b], max(_certain(v[1]) for v in designs.values()))
        # counts whose bound lies below the final best are pruned (a screened count above it
        # was not refined: top_structures)
        for e in entries.values():
            for b in range(B):
                if e["status"][b] in ("screened", "pending") and e["bound_bits_per_s"][b] < best[b]:
                    e["status"][b] = "pruned"
                    e["reason"][b] = f"pruned: bound below the best design ({best[b]:.4g} bits/s)"
                elif e["status"][b] == "screened":
                    e["reason"][b] = f"screened only (not among the top_structures = {top} refined)"
                elif e["status"][b] == "optimized" and e["skr_bits_per_s"][b] <= 0:
                    e["status"][b], e["reason"][b] = "no key", "no design with a positive key fraction found"
        # ---- purification structures (and every structure when link knobs are tuned): the
        # gradient stage, best bound first
        rounds_stage(scenario, distances, info, best, results, entries, top, seed, n_starts,
                     n_steps, lr, bar, with_plain=bool(knobs))
    finally:
        bar.close()
    per_distance = []
    for b, d in enumerate(distances):
        if results[b] is not None and max(v[1]["skr"] for v in results[b][2].values()) <= 0:
            results[b] = None
        per_distance.append(_pack(scenario, float(d), results[b], entries, b))
    summaries = list(entries.values())
    return per_distance, summaries


def _certain(figs) -> float:
    """A rate that may prune other counts: only from a design whose truncation coverage is
    within 1e-6 of one (the search compares designs down to 0.95)."""
    return figs["skr"] if figs["coverage"] >= 1 - 1e-6 else 0.0


def _shared(hw):
    return {k: v for k, v in hw.items() if k not in ("rates", "p_swap", "bsm")}


def _final_check(scenario, job, design, figs):
    """Coverage at the working truncation below ``1 − 1e-9``: evaluate again at longer
    truncations, up to the scenario's ``t_trunc`` (or the automatic cap)."""
    cap = scenario.search.t_trunc or T_CAP
    t = job.t
    while figs["coverage"] < 1 - 1e-9 and t < cap:
        t = min(cap, 4 * t)
        job = Job(job.st, job.b, job.distance, t, _stations(scenario, job.n)[0], job.depth)
        figs = evaluate_designs(scenario.heralding.scheme, _shared(hardware(scenario, job.st)),
                                [(job, design[0], design[1])])[0]
    return job, figs


def _pack(scenario, d, res, entries, b) -> DistanceResult:
    alpha, modes = float(scenario.heralding.alpha), float(scenario.multiplexing.modes)
    if res is None:
        none = DesignFigures.none(d, alpha, modes)
        reason = {n: (e["reason"][b] or e["status"][b]) for n, e in entries.items()}
        return DistanceResult(distance_km=d, structure=Structure(1, (0,), build_tree(1, (0,))),
                              t_trunc=0, best=none, uniform=none, no_cutoff=none, free=none,
                              history=np.zeros(0), reason=reason)
    st, job, designs, hist = res
    t_trunc = job.t if job is not None else 0
    packed = {}
    for name, (des, figs) in designs.items():
        cut = np.asarray(des[1], float)
        if isinstance(job, Job):  # "none" is a cut-off >= the working truncation
            none = cut >= job.t
            job2, figs = _final_check(scenario, job, (des[0], np.where(none, np.inf, cut)), figs)
            t_trunc = max(t_trunc, job2.t)
            cut = np.where(none, job2.t, cut)
        packed[name] = (des[0], cut, figs)
    out = {}
    for name, (lengths, cut, figs) in packed.items():
        if isinstance(job, Job):  # one truncation for every reported cut-off "none"
            cut = np.where(cut >= job.t, t_trunc, cut)
        out[name] = DesignFigures.from_figs(lengths, cut, alpha, modes, figs)
    best = max(("free", "uniform"), key=lambda k: out[k].skr)
    return DistanceResult(distance_km=d, structure=st, t_trunc=t_trunc, best=out[best],
                          uniform=out["uniform"], no_cutoff=out["no_cutoff"], free=out["free"],
                          history=np.asarray(hist), reason=None)


__all__ = ["search", "evaluate", "NoFeasibleDesign", "MAX_SEGMENTS"]
