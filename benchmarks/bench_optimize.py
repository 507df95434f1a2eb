"""Design optimizer vs differential evolution (Li, Coopmans & Elkouss 2021) on the same engine.

Step model: for each case, qnjax's gradient optimizer (``qnjax.optimize``) and
``scipy.optimize.differential_evolution`` over the integer cut-offs (popsize 10, cut-offs
rounded inside the objective, bounds ``[0, t_trunc]`` per level, no polish, then the integer
neighbourhood check ``±1`` per level around DE's best, as in Li et al.), both calling
``qnjax.delivery`` in float64; an exhaustive integer grid where it is small. Wall times
include compilation (a structure compiled for an earlier case is reused by both methods).

Physical scenarios: identical hardware → uniform spacing; one poor memory → spacing shifts
and beats uniform spacing; the default scenario against the PLOB bound.

    python benchmarks/bench_optimize.py [--quick] [--out benchmarks/out/results_optimize.md]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import differential_evolution  # noqa: E402

import qnjax  # noqa: E402
from qnjax.optimize import StepProblem, default_scenario, load_scenario, scenario_from_dict  # noqa: E402

# (name, levels, params, t_trunc, grid side per level or 0)
CASES = [
    ("1 swap, cut-off decisive", ("swap",), dict(p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=40.0), 512, 512),
    ("1 swap, good memory", ("swap",), dict(p_gen=0.5, p_swap=1.0, w0=0.99, t_coh=1e5), 512, 512),
    ("2 swaps, cut-offs matter", ("swap", "swap"), dict(p_gen=0.4, p_swap=0.9, w0=0.97, t_coh=80.0), 1024, 96),
    ("2 swaps, good memory", ("swap", "swap"), dict(p_gen=0.5, p_swap=0.9, w0=0.99, t_coh=1e4), 1024, 96),
    ("3 swaps (issue example)", ("swap", "swap", "swap"), dict(p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=400.0), 4096, 0),
    ("3 swaps, better links", ("swap", "swap", "swap"), dict(p_gen=0.3, p_swap=0.8, w0=0.99, t_coh=200.0), 4096, 0),
    ("distill + swap", ("distill", "swap"), dict(p_gen=0.3, p_swap=0.8, w0=0.9, t_coh=100.0), 1024, 96),
    ("distill + swap, noisy", ("distill", "swap"), dict(p_gen=0.5, p_swap=0.9, w0=0.85, t_coh=60.0), 1024, 96),
    ("swap, distill, swap", ("swap", "distill", "swap"), dict(p_gen=0.3, p_swap=0.9, w0=0.93, t_coh=300.0), 2048, 0),
]


def rate(levels, kw, cut, T):
    r = qnjax.delivery(levels, cutoff=jnp.asarray(cut, float), t_trunc=T, warn=False, **kw)
    return np.asarray(r.secret_key_rate)


def run_de(levels, kw, T, seed=0):
    """Li et al. 2021: DE over integer cut-offs, then the ±1 integer neighbourhood of the best."""
    L = len(levels)
    n = [0]

    def f(x):
        n[0] += 1
        return -float(rate(levels, kw, np.round(x), T))

    t0 = time.perf_counter()
    res = differential_evolution(f, [(0, T)] * L, popsize=10, seed=seed, polish=False)
    best = np.round(res.x)
    best_v = -res.fun
    for d in itertools.product((-1, 0, 1), repeat=L):
        c = np.clip(best + np.array(d), 0, T)
        v = -f(c)
        if v > best_v:
            best, best_v = c, v
    return best_v, best, time.perf_counter() - t0, n[0]


def run_grid(levels, kw, T, g):
    L = len(levels)
    grid = np.array(np.meshgrid(*[np.arange(g)] * L, indexing="ij")).reshape(L, -1).T.astype(float)
    grid = np.concatenate([grid, np.full((1, L), np.inf)])
    vals = np.concatenate([rate(levels, kw, grid[i:i + 2048], T) for i in range(0, len(grid), 2048)])
    i = int(np.argmax(vals))
    return vals[i], grid[i]


def step_cases(quick):
    rows = []
    cases = CASES[:3] if quick else CASES
    for name, levels, kw, T, g in cases:
        t0 = time.perf_counter()
        res = qnjax.optimize(StepProblem(levels, t_trunc=T, **kw), seed=0)
        ours_t = time.perf_counter() - t0
        ours = float(res.secret_key_rate)
        de_v, de_c, de_t, de_n = run_de(levels, kw, T)
        grid_v, grid_c = run_grid(levels, kw, T, g) if g else (np.nan, None)
        best_base = np.nanmax([de_v, grid_v])
        row = dict(case=name, protocol=",".join(levels), t_trunc=T, **kw,
                   qnjax_cutoff=res.to_json()["cutoff"], qnjax_skr=ours, qnjax_s=ours_t,
                   de_cutoff=[int(c) for c in de_c], de_skr=float(de_v), de_s=de_t, de_evals=de_n,
                   grid_cutoff=None if grid_c is None else [float(c) for c in grid_c],
                   grid_skr=float(grid_v), best_baseline=float(best_base),
                   ratio=float(ours / best_base) if best_base > 0 else (float("inf") if ours > 0 else 1.0),
                   time_ratio=ours_t / de_t)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def physical_cases(quick):
    out = {}
    # identical hardware, three segments: spacing uniform?
    sym = scenario_from_dict({
        "name": "identical hardware, 3 segments, 150 km",
        "distance_km": 150.0,
        "heralding": {"scheme": "double_click", "efficiency": 0.9, "visibility": 0.99, "prep_time_s": 1e-6},
        "memory": {"t_coh_s": 1.0},
        "repeater": {"gate_depolarizing": 0.002, "measurement_error": 0.001},
        "search": {"segments": [3], "starts": 6, "steps": 60},
    })
    t0 = time.perf_counter()
    r = qnjax.optimize(sym)
    L = np.asarray(r.baselines["free_spacing_lengths_km"])  # the starts that moved the repeaters
    out["uniform"] = dict(scenario=sym.name, lengths_km=L.tolist(),
                          max_dev_pct=float(np.max(np.abs(L - 50.0)) / 50.0 * 100),
                          skr_bits_per_s=float(r.skr_bits_per_s), wall_s=time.perf_counter() - t0)
    print(json.dumps(out["uniform"]), flush=True)
    poor = load_scenario(os.path.join(os.path.dirname(__file__), "..", "examples", "poor_memory_chain.toml"))
    t0 = time.perf_counter()
    r = qnjax.optimize(poor)
    j = r.to_json()
    out["poor_memory"] = dict(scenario=poor.name, lengths_km=j["lengths_km"], cutoff=j["cutoff"],
                              skr_bits_per_s=j["skr_bits_per_s"],
                              uniform_skr_bits_per_s=j["uniform_spacing_skr_bits_per_s"],
                              gain_over_uniform=j["gain_over_uniform_spacing"],
                              wall_s=time.perf_counter() - t0)
    print(json.dumps(out["poor_memory"]), flush=True)
    if not quick:
        d = default_scenario()
        t0 = time.perf_counter()
        r = qnjax.optimize(d)
        j = r.to_json()
        out["default"] = dict(scenario=d.name, segments=j["segments"], lengths_km=j["lengths_km"],
                              cutoff=j["cutoff"], skr_bits_per_s=j["skr_bits_per_s"],
                              skr_per_channel_use=j["skr_per_channel_use"],
                              plob_per_channel_use=j["plob_per_channel_use"],
                              gain_over_no_cutoff=j["gain_over_no_cutoff"],
                              gain_over_uniform=j["gain_over_uniform_spacing"],
                              wall_s=time.perf_counter() - t0)
        print(json.dumps(out["default"]), flush=True)
    return out


def write_md(path, rows, phys, meta):
    f = lambda x: f"{x:.4g}"
    lines = [
        "# Design optimizer benchmark (`benchmarks/bench_optimize.py`)",
        "",
        f"Machine: {meta['machine']}; {meta['date']}; jax {jax.__version__}, float64. "
        "Wall times include compilation; a structure compiled for an earlier case is reused by both methods. "
        f"Load average during the run: {meta['load']}.",
        "",
        "## Step model: qnjax vs differential evolution (Li et al. 2021) and an exhaustive grid",
        "",
        "Targets: key rate >= 99.5% of the best baseline; wall time <= 1/5 of DE's.",
        "",
        "| case | protocol | t_trunc | qnjax cut-offs | qnjax bits/step | DE cut-offs | DE bits/step | DE evals | grid optimum | rate ratio | qnjax s | DE s | time ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        grid = "–" if r["grid_cutoff"] is None else f"{[int(c) if np.isfinite(c) else 'inf' for c in r['grid_cutoff']]} ({f(r['grid_skr'])})"
        lines.append(f"| {r['case']} | {r['protocol']} | {r['t_trunc']} | {r['qnjax_cutoff']} | {f(r['qnjax_skr'])} | "
                     f"{r['de_cutoff']} | {f(r['de_skr'])} | {r['de_evals']} | {grid} | {r['ratio']:.4f} | "
                     f"{r['qnjax_s']:.1f} | {r['de_s']:.1f} | {r['time_ratio']:.2f} |")
    if rows:
        tot_q = sum(r["qnjax_s"] for r in rows)
        tot_d = sum(r["de_s"] for r in rows)
        lines += ["", f"Totals: qnjax {tot_q:.1f} s, DE {tot_d:.1f} s (ratio {tot_q / tot_d:.2f}); "
                  f"min rate ratio {min(r['ratio'] for r in rows):.4f}; "
                  f"cases at >= 99.5%: {sum(r['ratio'] >= 0.995 for r in rows)}/{len(rows)}; "
                  f"cases at time ratio <= 0.2: {sum(r['time_ratio'] <= 0.2 for r in rows)}/{len(rows)}."]
    lines += ["", "## Physical scenarios", ""]
    if "uniform" in phys:
        u = phys["uniform"]
        lines.append(f"- {u['scenario']}: lengths found by the starts that move the repeaters "
                     f"{[round(x, 2) for x in u['lengths_km']]} km, max deviation "
                     f"from uniform {u['max_dev_pct']:.3f}% (target < 1%), {f(u['skr_bits_per_s'])} bits/s, {u['wall_s']:.0f} s.")
    if "poor_memory" in phys:
        p = phys["poor_memory"]
        lines.append(f"- {p['scenario']}: lengths {[round(x, 2) for x in p['lengths_km']]} km, cut-offs {p['cutoff']}, "
                     f"{f(p['skr_bits_per_s'])} bits/s vs {f(p['uniform_skr_bits_per_s'])} bits/s at uniform spacing "
                     f"(gain {p['gain_over_uniform']:.4f}), {p['wall_s']:.0f} s.")
    if "default" in phys:
        d = phys["default"]
        lines.append(f"- {d['scenario']}: {d['segments']} segments {[round(x, 2) for x in d['lengths_km']]} km, cut-offs "
                     f"{d['cutoff']}, {f(d['skr_bits_per_s'])} bits/s = {f(d['skr_per_channel_use'])} bits per channel use vs "
                     f"PLOB {f(d['plob_per_channel_use'])} (x{d['skr_per_channel_use'] / d['plob_per_channel_use']:.3g}); "
                     f"gain over no cut-offs {d['gain_over_no_cutoff']:.3g}, over uniform spacing {d['gain_over_uniform']:.4f}; "
                     f"{d['wall_s']:.0f} s.")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="three step cases and two physical scenarios")
    ap.add_argument("--skip-step", action="store_true")
    ap.add_argument("--skip-physical", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out", "results_optimize.md"))
    a = ap.parse_args(argv)
    meta = dict(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                load=" ".join(f"{x:.1f}" for x in os.getloadavg()))
    rows = [] if a.skip_step else step_cases(a.quick)
    phys = {} if a.skip_physical else physical_cases(a.quick)
    meta["load"] += " → " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_md(a.out, rows, phys, meta)
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
