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
import resource
import subprocess
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import differential_evolution  # noqa: E402

import qnjax  # noqa: E402
from qnjax.design import StepProblem, default_scenario, load_scenario, scenario_from_dict  # noqa: E402

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


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn):
    """``(result, wall s, CPU s)`` of ``fn()`` (CPU: user + system of this process)."""
    t0, c0 = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - t0, _cpu() - c0


def step_cases(quick):
    rows = []
    cases = CASES[:3] if quick else CASES
    for name, levels, kw, T, g in cases:
        prob = StepProblem(levels, t_trunc=T, **kw)
        # first run: compilation included (empty in-memory cache for this structure unless an
        # earlier case had the same protocol and t_trunc); second run: warm
        res, ours_t, ours_c = _timed(lambda: qnjax.optimize(prob, seed=0))
        ours = float(res.secret_key_rate)
        (de_v, de_c, _, de_n), de_t, de_cpu = _timed(lambda: run_de(levels, kw, T))
        _, ours_w, ours_wc = _timed(lambda: qnjax.optimize(prob, seed=0))
        _, de_w, de_wc = _timed(lambda: run_de(levels, kw, T))
        grid_v, grid_c = run_grid(levels, kw, T, g) if g else (np.nan, None)
        best_base = np.nanmax([de_v, grid_v])
        row = dict(case=name, protocol=",".join(levels), t_trunc=T, **kw,
                   qnjax_cutoff=res.to_json()["cutoff"], qnjax_skr=ours, qnjax_s=ours_t,
                   qnjax_cpu_s=ours_c, qnjax_warm_s=ours_w, qnjax_warm_cpu_s=ours_wc,
                   de_cutoff=[int(c) for c in de_c], de_skr=float(de_v), de_s=de_t, de_cpu_s=de_cpu,
                   de_warm_s=de_w, de_warm_cpu_s=de_wc, de_evals=de_n,
                   grid_cutoff=None if grid_c is None else [float(c) for c in grid_c],
                   grid_skr=float(grid_v), best_baseline=float(best_base),
                   ratio=float(ours / best_base) if best_base > 0 else (float("inf") if ours > 0 else 1.0),
                   time_ratio=ours_t / de_t, cpu_ratio=ours_c / de_cpu,
                   warm_ratio=ours_w / de_w, warm_cpu_ratio=ours_wc / de_wc)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def many_problems(n, n_de=5):
    """``n`` one-swap problems (t_trunc 512, p_gen 0.05..0.3, t_coh 20..200) in one
    ``qnjax.optimize([...])`` call vs DE run on ``n_de`` of them (warm: after one DE run on the
    structure), scaled to ``n``."""
    rng = np.random.default_rng(0)
    kws = [dict(p_gen=float(rng.uniform(0.05, 0.3)), p_swap=0.5, w0=0.98, t_coh=float(np.exp(rng.uniform(np.log(20), np.log(200)))))
           for _ in range(n)]
    probs = [StepProblem(("swap",), t_trunc=512, **kw) for kw in kws]
    res, q_t, q_c = _timed(lambda: qnjax.optimize(probs, seed=0))
    _, q_w, q_wc = _timed(lambda: qnjax.optimize(probs, seed=0))
    run_de(("swap",), kws[0], 512)  # compile DE's program first
    de, de_t, de_c = _timed(lambda: [run_de(("swap",), kw, 512) for kw in kws[:n_de]])
    ratios = [float(r.secret_key_rate) / d[0] for r, d in zip(res[:n_de], de) if d[0] > 0]
    row = dict(n=n, qnjax_s=q_t, qnjax_cpu_s=q_c, qnjax_warm_s=q_w, qnjax_warm_cpu_s=q_wc, de_n=n_de,
               de_s_each=de_t / n_de, de_cpu_s_each=de_c / n_de, de_s_scaled=de_t / n_de * n,
               speedup_cold=de_t / n_de * n / q_t, speedup_warm=de_t / n_de * n / q_w,
               min_rate_ratio_vs_de=min(ratios) if ratios else float("nan"))
    print(json.dumps(row), flush=True)
    return row


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


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_md(path, rows, phys, meta):
    f = lambda x: f"{x:.4g}"
    lines = [
        "# Design optimizer benchmark (`benchmarks/bench_optimize.py`)",
        "",
        f"Machine: {meta['machine']}; {meta['date']}; jax {jax.__version__}, float64; commit {meta['commit']}. "
        "Wall times include compilation; a program compiled for an earlier case is reused by the method that "
        "compiled it (DE: one per protocol and t_trunc, one design per call; qnjax: one padded level program per "
        "working truncation, blocks of 32 designs, shared by every protocol). "
        f"Load average during the run: {meta['load']}.",
        "",
        "## Step model: qnjax vs differential evolution (Li et al. 2021) and an exhaustive grid",
        "",
        "Targets (issue 11): key rate >= 99.5% of the best baseline on every case; median time ratio "
        "<= 0.5 cold (first run, compilation included) and <= 0.1 warm (second run in the same process). "
        "CPU = user + system seconds of this process (the fairer figure on a loaded machine).",
        "",
        "| case | protocol | t_trunc | qnjax cut-offs | qnjax bits/step | DE cut-offs | DE bits/step | DE evals | grid optimum | rate ratio "
        "| qnjax s (CPU) | DE s (CPU) | cold ratio (CPU) | qnjax warm s (CPU) | DE warm s (CPU) | warm ratio (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        grid = "–" if r["grid_cutoff"] is None else f"{[int(c) if np.isfinite(c) else 'inf' for c in r['grid_cutoff']]} ({f(r['grid_skr'])})"
        lines.append(f"| {r['case']} | {r['protocol']} | {r['t_trunc']} | {r['qnjax_cutoff']} | {f(r['qnjax_skr'])} | "
                     f"{r['de_cutoff']} | {f(r['de_skr'])} | {r['de_evals']} | {grid} | {r['ratio']:.4f} | "
                     f"{r['qnjax_s']:.1f} ({r['qnjax_cpu_s']:.1f}) | {r['de_s']:.1f} ({r['de_cpu_s']:.1f}) | "
                     f"{r['time_ratio']:.2f} ({r['cpu_ratio']:.2f}) | {r['qnjax_warm_s']:.2f} ({r['qnjax_warm_cpu_s']:.2f}) | "
                     f"{r['de_warm_s']:.2f} ({r['de_warm_cpu_s']:.2f}) | {r['warm_ratio']:.2f} ({r['warm_cpu_ratio']:.2f}) |")
    if rows:
        tot = lambda k: sum(r[k] for r in rows)
        med = lambda k: float(np.median([r[k] for r in rows]))
        ok = sum(r["ratio"] >= 0.995 for r in rows)
        lines += ["", f"Totals: qnjax {tot('qnjax_s'):.1f} s ({tot('qnjax_cpu_s'):.1f} s CPU), DE {tot('de_s'):.1f} s "
                  f"({tot('de_cpu_s'):.1f} s CPU); warm: qnjax {tot('qnjax_warm_s'):.1f} s, DE {tot('de_warm_s'):.1f} s. "
                  f"Min rate ratio {min(r['ratio'] for r in rows):.4f}; cases at >= 99.5%: {ok}/{len(rows)}.",
                  "",
                  f"Against the targets: rate {'met' if ok == len(rows) else 'not met'} ({ok}/{len(rows)}); "
                  f"median cold ratio {med('time_ratio'):.2f} wall / {med('cpu_ratio'):.2f} CPU "
                  f"({'met' if med('time_ratio') <= 0.5 else 'not met'}, target <= 0.5); median warm ratio "
                  f"{med('warm_ratio'):.2f} wall / {med('warm_cpu_ratio'):.2f} CPU "
                  f"({'met' if med('warm_ratio') <= 0.1 else 'not met'}, target <= 0.1)."]
    if meta.get("many"):
        m = meta["many"]
        lines += ["", f"Many problems at once: {m['n']} one-swap problems (t_trunc 512) in one `qnjax.optimize([...])` "
                  f"call: {m['qnjax_s']:.1f} s ({m['qnjax_cpu_s']:.1f} s CPU) first run, {m['qnjax_warm_s']:.1f} s "
                  f"({m['qnjax_warm_cpu_s']:.1f} s CPU) second; DE {m['de_s_each']:.2f} s ({m['de_cpu_s_each']:.2f} s CPU) per "
                  f"problem (mean of {m['de_n']}, compiled), {m['de_s_scaled']:.0f} s for {m['n']} sequential runs: "
                  f"speed-up {m['speedup_cold']:.1f}x cold / {m['speedup_warm']:.1f}x warm (target >= 50x); "
                  f"qnjax / DE key rate on the DE-solved problems >= {m['min_rate_ratio_vs_de']:.4f}."]
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
    ap.add_argument("--many", type=int, default=0, help="also solve this many problems at once vs sequential DE")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out", "results_optimize.md"))
    a = ap.parse_args(argv)
    meta = dict(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                load=" ".join(f"{x:.1f}" for x in os.getloadavg()), commit=_commit())
    rows = [] if a.skip_step else step_cases(a.quick)
    if a.many:
        meta["many"] = many_problems(a.many)
    phys = {} if a.skip_physical else physical_cases(a.quick)
    meta["load"] += " → " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_md(a.out, rows, phys, meta)
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
