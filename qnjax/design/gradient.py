"""Gradient stage for one static structure (used for trees with purification rounds).

Per structure, one jitted, vmapped Adam step (looped) over ``distances × starts``: segment
lengths by softmax (or bounded stick-breaking with min/max) of ``z``, cut-offs ``τ = exp(u)``
steps, the smooth surrogate of :mod:`._common` on bits per second. Half of the starts keep
the spacing frozen at uniform (gradient mask 0), which gives the "uniform spacing" baseline
in the same call. Then the cut-offs of the best free and best uniform start are rounded and
the neighbourhood ``{floor, ceil}^K`` (or, for many nodes, nearest ± 1 per node) is evaluated
exactly in one batch; the best integer design's exact clipped rate is reported.
"""

from __future__ import annotations

import itertools
import math
import time
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._common import integer_neighbourhood, make_runner, surrogate
from .chain import (Structure, auto_t_trunc, bound_hardware, build_tree, chain_eval, hardware,
                    knob_coordinate, knob_value, lengths_from_z, n_levels, rate_upper_bound,
                    uniform_lengths, z_from_lengths)

CHUNK = 20
T_CAP = 1 << 15


class StageDesigns(NamedTuple):
    """The gradient stage's designs of one structure at one distance, each a figures dict
    (``lengths_km``, ``cutoff``, ``skr``, the :class:`.figures.ChainFigures` fields, the link
    knobs): ``free`` (repeaters moved), ``uniform`` (uniform spacing), ``best`` (the better of
    the two), ``no_cutoff`` (the free spacing without cut-offs)."""

    best: dict
    uniform: dict
    no_cutoff: dict
    free: dict


@lru_cache(maxsize=128)
def _forward(st: Structure, scheme: str, t_trunc: int):
    return jax.jit(lambda hw, lengths, tau: chain_eval(st, scheme, hw, lengths, tau, t_trunc))


def evaluate(st, scheme, hw, lengths, tau, t_trunc, alpha=None, knobs=None):
    """Exact figures of a batch of designs (padded to a power of two to reuse compiled code);
    ``alpha`` / ``knobs`` (``{"alpha" | "modes": values}``): link knobs of every design
    (default: the scenario's)."""
    lengths, tau = np.asarray(lengths, float), np.asarray(tau, float).reshape(len(lengths), -1)
    b = len(lengths)
    size = max(8, 1 << (b - 1).bit_length())
    pad = lambda a: np.concatenate([a, np.repeat(a[:1], size - b, 0)], 0)
    dt = jnp.result_type(float)
    knobs = dict(knobs or {}, **({"alpha": alpha} if alpha is not None else {}))
    for k, v in knobs.items():
        hw = {**hw, k: jnp.asarray(pad(np.asarray(v, float).reshape(b, 1)), dt)}
    f = _forward(st, scheme, t_trunc)(hw, jnp.asarray(pad(lengths), dt), jnp.asarray(pad(tau), dt))
    return {k: np.asarray(v)[:b] for k, v in f.as_dict().items()}


@lru_cache(maxsize=64)
def _runner(st: Structure, scheme: str, bounded: bool, t_trunc: int, lr: float, n_steps: int,
            mode: str, knobs: tuple = ()):
    tmax = math.log(max(t_trunc, 2))

    def value(free, fixed, hw):
        # link knobs (single-click alpha, modes) as design variables: gradients through the link model
        hw = {**hw, **{k: knob_value(k, free["knobs"][i], hw) for i, k in enumerate(knobs)}}
        lengths = lengths_from_z(free["z"], fixed["D"], hw, bounded)
        f = chain_eval(st, scheme, hw, lengths, jnp.exp(free["u"]), t_trunc)
        j = surrogate(f.key_fraction_smooth, f.mean_time * f.clock_s) - 50.0 * (1 - f.coverage)
        return j, f.skr_bits_per_s

    project = lambda p: {**p, "u": jnp.clip(p["u"], -3.0, tmax),
                         **({"knobs": jnp.clip(p["knobs"], -5.0, 5.0)} if knobs else {})}
    return make_runner(value, lr, n_steps, CHUNK, project, mode)


def link_knobs(scenario) -> tuple:
    """Link knobs the search optimizes: single-click ``alpha`` (``search.tune_alpha``) and the
    modes per round (``search.max_modes``)."""
    s = scenario.search
    return ((("alpha",) if s.tune_alpha and scenario.heralding.scheme == "single_click" else ())
            + (("modes",) if s.max_modes else ()))


def _int_candidates(tau, t_trunc):
    tau = np.clip(np.asarray(tau, float), 0, t_trunc)
    if 2 ** len(tau) <= 256:
        return integer_neighbourhood(tau, t_trunc, radius=0)
    base = np.round(tau)
    out = [base]
    for k in range(len(tau)):
        for d in (-1, 1):
            c = base.copy()
            c[k] = min(max(c[k] + d, 0), t_trunc)
            out.append(c)
    return np.unique(np.array(out), axis=0)


def _t_trunc(scenario, st, hw, distances):
    if st.n_nodes == 0:
        return 0, np.ones(len(distances), bool)
    if scenario.search.t_trunc:
        return scenario.search.t_trunc, np.ones(len(distances), bool)
    ests = np.array([auto_t_trunc(st, scenario.heralding.scheme, hw, uniform_lengths(st.n, d), T_CAP)[1]
                     for d in distances])
    ok = 20 * ests <= 4 * T_CAP
    dmax = distances[ok].max() if ok.any() else distances.min()
    t, _ = auto_t_trunc(st, scenario.heralding.scheme, hw, uniform_lengths(st.n, dmax), T_CAP)
    return t, ok


def _p_gen(scheme, hw, L):
    from .chain import link_model

    return link_model(scheme, hw, jnp.asarray(L)).p_gen


def _optimize_structure(scenario, st, hw, distances, t_trunc, ok, key, n_starts, n_steps, lr, bar):
    """Gradient + integer stages of one structure at every distance (one batched run): a
    :class:`StageDesigns` per distance and the history of the surrogate objective."""
    scheme = scenario.heralding.scheme
    bounded = math.isfinite(scenario.search.max_segment_km)
    K, n, B = st.n_nodes, st.n, len(distances)
    dt = jnp.result_type(float)
    n_free = max(1, (n_starts + 1) // 2) if n > 1 else n_starts
    n_unif = n_starts - n_free if n > 1 else 0
    S = n_free + n_unif
    z0 = np.zeros((B, S, n))
    u0 = np.zeros((B, S, K))
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()[-1])
    for b, d in enumerate(distances):
        zu = z_from_lengths(uniform_lengths(n, d), d, hw, bounded)
        z0[b] = zu
        z0[b, 1:n_free] += rng.normal(0, 0.2, (n_free - 1, n))
        p = float(np.min(np.asarray(_p_gen(scheme, hw, uniform_lengths(n, d)))))
        if K:
            u0[b] = rng.uniform(0, math.log(t_trunc), (S, K))
            u0[b, 0] = math.log(min(3.0 / p, t_trunc))
        if n_unif:
            u0[b, n_free] = u0[b, 0]
    mask_z = np.ones((B, S, n))
    mask_z[:, n_free:] = 0.0
    D = np.repeat(np.asarray(distances, float)[:, None], S, 1)
    flat = lambda a: jnp.asarray(a.reshape((B * S,) + a.shape[2:]), dt)
    n_chunks = max(1, math.ceil(n_steps / CHUNK))
    hist = []
    knobs = link_knobs(scenario)
    # knob starts: the scenario's value, the others spread log-uniformly (alpha over 0.005..0.3,
    # modes over 1..max_modes)
    spread = {"alpha": (0.005, 0.3), "modes": (1.0, float(hw["max_modes"]))}
    start = {"alpha": float(hw["alpha"]), "modes": min(float(hw["modes"]), float(hw["max_modes"]))}
    x0 = np.zeros((B, S, len(knobs)))
    for j, k in enumerate(knobs):
        v = np.r_[start[k], np.geomspace(*spread[k], max(S - 1, 1))][:S]
        x0[:, :, j] = knob_coordinate(k, v, hw)
    if K > 0 or n > 1 or knobs:
        mode = "fwd" if n + K <= 10 else "rev"
        init, run = _runner(st, scheme, bounded, t_trunc, float(lr), n_chunks * CHUNK, mode, knobs)
        # phase 1 (first chunk, or a third of the steps): every start tunes its cut-offs (and
        # alpha) at uniform spacing; phase 2: the free starts also move the repeaters
        mask_u = jnp.ones((B * S, K), dt)
        extra = {"knobs": flat(x0)} if knobs else {}
        extra_mask = {"knobs": jnp.ones((B * S, len(knobs)), dt)} if knobs else {}
        state = init({"z": flat(z0), "u": flat(u0), **extra}, {"D": flat(D)},
                     {"z": flat(np.zeros_like(mask_z)) if n_chunks > 1 else flat(mask_z), "u": mask_u,
                      **extra_mask})
        for c in range(n_chunks):
            if c == max(1, n_chunks // 3) and n_chunks > 1:
                state = state._replace(mask={"z": flat(mask_z), "u": mask_u, **extra_mask})
            state, h = run(state, hw)
            hist.append(np.asarray(h))
            bar.advance(description=f"optimizing {st.label}")
        best_val = np.asarray(state.best_value).reshape(B, S)
        zb = np.asarray(state.best_params["z"]).reshape(B, S, n)
        ub = np.asarray(state.best_params["u"]).reshape(B, S, K)
        xb = np.asarray(state.best_params["knobs"]).reshape(B, S, len(knobs)) if knobs else x0
    else:
        bar.advance(n_chunks)
        best_val, zb, ub, xb = np.zeros((B, S)), z0, u0, x0

    def knob_sets(b, i):
        """Knob values of start ``i`` for the exact stage: modes rounded down and up."""
        vals = {k: float(knob_value(k, jnp.asarray(xb[b, i, j]), hw)) for j, k in enumerate(knobs)}
        if "modes" not in vals:
            return [vals]
        m = min(max(vals["modes"], 1.0), float(hw["max_modes"]))
        return [{**vals, "modes": float(v)} for v in sorted({math.floor(m), math.ceil(m)})]
    # integer stage: candidates of the best free and best uniform start, every distance at once
    lens_b, taus, owner, kvals = [], [], [], []
    for b, d in enumerate(distances):
        groups = [(0, n_free)] + ([(n_free, S)] if n_unif else [])
        for g, (lo, hi) in enumerate(groups):
            top = lo + np.argsort(-best_val[b, lo:hi])[: (2 if g == 0 else 1)]
            for i in top:  # the two best free starts, the best uniform start
                L = np.asarray(lengths_from_z(jnp.asarray(zb[b, i], dt), jnp.asarray(d, dt), hw, bounded))
                cands = _int_candidates(np.exp(ub[b, i]), t_trunc) if K else np.zeros((1, 0))
                cands = np.concatenate([cands, np.full((1, K), float(t_trunc))]) if K else cands
                for c in cands:
                    for kv in knob_sets(b, i):
                        lens_b.append(L)
                        taus.append(c)
                        owner.append((b, g))
                        kvals.append(kv)
            i = top[0]
            L = np.asarray(lengths_from_z(jnp.asarray(zb[b, i], dt), jnp.asarray(d, dt), hw, bounded))
            lens_b.append(L)
            taus.append(np.full(K, np.inf))
            owner.append((b, 2 + g))  # no cut-off at the same spacing
            kvals.append(knob_sets(b, i)[0])
    f = evaluate(st, scheme, hw, np.array(lens_b), np.array(taus).reshape(len(lens_b), K), t_trunc,
                 knobs={k: np.array([kv[k] for kv in kvals]) for k in knobs})
    skr = np.where(np.isfinite(f["skr_bits_per_s"]), f["skr_bits_per_s"], 0.0)
    owner = np.array(owner)
    out = []
    for b in range(B):
        res = {}
        for g, name in ((0, "best"), (1, "uniform"), (2, "no_cutoff")):
            idx = np.nonzero((owner[:, 0] == b) & (owner[:, 1] == g))[0]
            if len(idx) == 0:
                continue
            i = idx[np.argmax(skr[idx])]
            res[name] = {"lengths_km": lens_b[i], "cutoff": np.asarray(taus[i]),
                         **{k: v[i] for k, v in f.items()}, "skr": skr[i] if ok[b] else 0.0,
                         "alpha": float(hw["alpha"]), "modes": float(hw["modes"]), **kvals[i]}
        free = res["best"]
        uniform = res.get("uniform", free)  # one segment: the only spacing is uniform
        best = uniform if uniform["skr"] > free["skr"] else free  # uniform spacing is a design too
        out.append(StageDesigns(best=best, uniform=uniform, no_cutoff=res["no_cutoff"], free=free))
    return out, (np.concatenate(hist) if hist else np.zeros(0))


def rounds_stage(scenario, distances, info, best, results, entries, top, seed, n_starts, n_steps, lr,
                  bar, with_plain=False):
    """Trees with purification rounds (and, ``with_plain``, without): the gradient stage
    :func:`.gradient._optimize_structure` for the structures whose bound exceeds the best
    design, best bound first (at most ``top``)."""
    s = scenario.search
    if s.max_rounds_per_level == 0 and not with_plain:
        return
    scheme = scenario.heralding.scheme
    B = len(distances)
    cands = []
    for n, _, _, _, why in info:
        h = n_levels(n)
        for rounds in itertools.product(range(s.max_rounds_per_level + 1), repeat=h):
            if (0 if with_plain else 1) <= sum(rounds) <= s.max_rounds_total:
                st = Structure(n, tuple(rounds), build_tree(n, tuple(rounds)))
                hw = hardware(scenario, st)
                hw_t, hw_kf = bound_hardware(scenario, hw)
                ub = np.array([0.0 if why[b] and not why[b].startswith("no key") else
                               rate_upper_bound(st, scheme, hw_t, d, hw_kf) for b, d in enumerate(distances)])
                cands.append((st, hw, ub))
    cands.sort(key=lambda c: -c[2].max())
    key = jax.random.PRNGKey(seed)
    done = 0
    for k, (st, hw, ub) in enumerate(cands):
        live = ub > best * (1 + 1e-9)
        if not any(st.rounds) and st.n in entries:  # the count's own entry
            entries.pop(st.n)
        e = dict(segments=st.n, structure=st.label, protocol=st.text, rounds=list(st.rounds),
                 skr_bits_per_s=[0.0] * B, bound_bits_per_s=ub.tolist(),
                 status=["pruned"] * B, reason=[f"pruned: bound below the best design ({v:.4g} bits/s)"
                                                for v in best],
                 t_trunc=0, wall_s=0.0)
        if not live.any() or done >= top:
            if done >= top and live.any():
                e["reason"] = [f"not optimized (top_structures = {top})"] * B
            e["status"] = ["infeasible" if ub[b] <= 0 else e["status"][b] for b in range(B)]
            entries[st.label] = e
            continue
        t, ok = _t_trunc(scenario, st, hw, distances)
        bar.add_total(max(1, math.ceil(n_steps / 20)))
        t0 = time.perf_counter()
        out, hist = _optimize_structure(scenario, st, hw, distances, t, ok & live,
                                        jax.random.fold_in(key, k), n_starts, n_steps, lr, bar)
        e.update(t_trunc=t, wall_s=round(time.perf_counter() - t0, 2))
        done += 1
        for b in range(B):
            r = out[b]
            e["skr_bits_per_s"][b] = float(r.best["skr"])
            e["status"][b], e["reason"][b] = "optimized", None
            if r.best["skr"] > best[b]:
                best[b] = r.best["skr"]
                job = _FixedJob(st, b, distances[b], t)
                designs = {name: ((d["lengths_km"], d["cutoff"]), dict(d))
                           for name, d in (("uniform", r.uniform), ("free", r.free), ("no_cutoff", r.no_cutoff))}
                results[b] = (st, job, designs, hist)
        entries[st.label] = e


class _FixedJob:
    """Stand-in for a :class:`.treesearch.Job` of a gradient-stage structure (no padding)."""

    def __init__(self, st, b, d, t):
        self.st, self.b, self.distance, self.t, self.n, self.K = st, b, d, t, st.n, st.n_nodes
