"""The qnjax benchmark suite: every benchmark, one JSON of results, regenerated RESULTS.md tables.

    python -m benchmarks [--quick] [--gpu] [--only delivery,sweep] [--json PATH] [--no-md]
    python -m benchmarks --from-json benchmarks/out/results-*.json   # tables only, no runs

Benchmarks (each module exposes a function returning rows; only the SeQUeNCe backend, which
needs a Python 3.12 interpreter with ``qnjax[sequence]`` installed (``--python312 PATH``, else
``$QNJAX_PYTHON312``, else the ``.ci-venv312`` venv that ``.ci/interop.sh`` builds), and the
device-scaling runs, which need fresh processes, run as subprocesses):

* ``delivery``   exact engine designs/s, compile time, value_and_grad, FFT floor (bench_delivery)
* ``montecarlo`` delivered samples/s, nested and swap-asap, requsim side by side (bench_montecarlo)
* ``optimize``   gradient optimizer vs differential evolution (bench_optimize)
* ``sequence``   SeQUeNCe native vs qnjax-backed runs (bench_sequence, Python 3.12 venv)
* ``sweep``      sweep_designs over 1, 2, 4 devices (bench_sweep)
* ``mc_equality`` (``--gpu``) same-seed float64 Monte Carlo on the accelerator and on the CPU

``--quick`` is a smoke run of about two minutes on an idle 2-core CPU; the full mode runs the
whole grids. Results go to ``benchmarks/out/results-<machine>-<date>.json`` (git-ignored) and
the generated blocks of ``benchmarks/RESULTS.md`` (between ``<!-- qnjax:begin NAME -->`` and
``<!-- qnjax:end NAME -->``; prose outside the blocks is kept). Blocks are per platform
(``delivery-cpu``, ``delivery-gpu``…), so a GPU run does not overwrite the CPU tables.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
RESULTS_MD = os.path.join(HERE, "RESULTS.md")
OUT_DIR = os.path.join(HERE, "out")
ALL = ("delivery", "montecarlo", "optimize", "sequence", "sweep")
GPU_ALL = ("delivery", "montecarlo", "mc_equality", "sweep")


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- runners


def run_delivery(quick, gpu):
    import bench_delivery as bd

    chunk = 2**33 if gpu else None  # accelerators: large chunks (8 GiB estimate) keep the device busy
    rows = bd.rows(quick=quick, gpu=gpu, max_case_s=60 if quick else 120, chunk_bytes=chunk, log=_log)
    if gpu:  # the engine's default chunking, for comparison
        try:
            import jax.numpy as jnp

            r = bd.bench_case("swap,swap,swap", 10_000, 10_000, jnp.float64, "forward", chunk_bytes=None)
            r["note"] = "default chunk_bytes"
            rows.append(r)
        except Exception as exc:
            rows.append(dict(protocol="swap,swap,swap", t_trunc=10_000, batch=10_000, dtype="float64",
                             mode="forward", skipped=f"default chunk_bytes: {exc}"[:200]))
    return {"rows": rows, "targets": bd.check_targets(rows, gpu)}


def run_montecarlo(quick, gpu):
    import bench_montecarlo as bm

    if gpu:
        samples, asap, segs, rq = 10_000_000, 200_000, (8,), 0
    elif quick:
        samples, asap, segs, rq = 200_000, 50_000, (8,), 0
    else:
        samples, asap, segs, rq = 1_000_000, 200_000, (4, 8, 16, 32), 15
    rows = [bm.bench_nested(samples, None, 1 if quick else 2)]
    _log(f"montecarlo {rows[-1]['case']}: {rows[-1]['per_s_wall']:,.0f}/s")
    for s in segs:
        r = bm.bench_asap(s, asap)
        if rq:
            try:
                n, wall, mt, mw = bm.requsim_swap_asap(s, rq)
                r.update(requsim_pairs=n, requsim_wall_s=wall, requsim_per_s=n / wall, requsim_mean_time=mt,
                         requsim_mean_werner=mw, ratio=r["per_s_wall"] / (n / wall) if n else None)
            except ImportError:
                pass
        rows.append(r)
        _log(f"montecarlo {r['case']}: {r['per_s_wall']:,.0f}/s")
    return {"rows": rows}


def run_optimize(quick, gpu):
    import bench_optimize as bo

    if quick:
        bo.CASES = bo.CASES[:1]
    rows = bo.step_cases(quick)
    phys = {} if quick else bo.physical_cases(False)
    return {"rows": rows, "physical": phys}


PYTHON312 = None  # set from --python312 by main()


def _python312():
    """The Python 3.12 interpreter for the SeQUeNCe benchmark, or None."""
    repo_venv = os.path.join(os.path.dirname(HERE), ".ci-venv312", "bin", "python")
    venv = os.environ.get("QNJAX_VENV312")  # older name: a venv folder
    for cand in (PYTHON312, os.environ.get("QNJAX_PYTHON312"),
                 venv and os.path.join(venv, "bin", "python"), repo_venv):
        if cand and os.path.exists(cand):
            return cand
    return None


def run_sequence(quick, gpu):
    py = _python312()
    if py is None:
        return {"skipped": "no Python 3.12 interpreter with qnjax[sequence] (pass --python312 PATH "
                           "or set QNJAX_PYTHON312)", "rows": []}
    chk = subprocess.run([py, "-c", "import sequence, qnjax"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
    if chk.returncode != 0:
        return {"skipped": "sequence or qnjax not importable in the 3.12 venv", "rows": []}
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    if quick:  # the two short scenarios, one alternation each; no fresh-process or per-call timings
        code = ("import json, sys; sys.path.insert(0, %r); import bench_sequence as b; "
                "b.SCENARIOS = {k: b.SCENARIOS[k] for k in ('link2-purify-dejmps', 'chain3-purify-swap')}; "
                "print(json.dumps(b.bench_runs(1)))" % HERE)
        p = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=600, env=env)
        if p.returncode != 0:
            return {"skipped": "bench_sequence failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:300],
                    "rows": []}
        data = {"runs": json.loads(p.stdout.strip().splitlines()[-1])}
        return {"rows": [dict(scenario=k, **{m: v[m] for m in ("events", "native_median_s", "qnjax_median_s",
                                                                "ratio", "ratio_cpu", "identical_to_native")})
                         for k, v in data["runs"].items()]}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "seq.json")
        args = ["--repeats", "1" if quick else "5", "--process-repeats", "1" if quick else "3", "--json", path]
        p = subprocess.run([py, os.path.join(HERE, "bench_sequence.py"), *args], capture_output=True, text=True,
                           timeout=900, env=env)
        if p.returncode != 0:
            return {"skipped": "bench_sequence failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:300],
                    "rows": []}
        with open(path) as fh:
            data = json.load(fh)
    rows = [dict(scenario=k, **{m: v[m] for m in ("events", "native_median_s", "qnjax_median_s", "ratio",
                                                  "ratio_cpu", "identical_to_native")})
            for k, v in data["runs"].items()]
    return {"rows": rows, "meta": data.get("meta"), "processes": data.get("processes"),
            "per_call": data.get("per_call")}


def run_sweep(quick, gpu):
    import bench_sweep as bs

    if gpu:
        import jax

        n = len(jax.devices())
        devs = tuple(d for d in (1, 2, 4, 8) if d <= n)
        return {"rows": bs.rows(quick, devs, cpu=False, log=_log, n=100_000, t_trunc=1000)}
    return {"rows": bs.rows(quick, (1, 2, 4), cpu=True, log=_log)}


def run_mc_equality(quick, gpu):
    """Same-seed float64 Monte Carlo on the default device and on the CPU: delivered times
    identical, Werner parameters equal to rounding."""
    import jax
    import numpy as np

    from qnjax.montecarlo import simulate_nested, simulate_swap_asap

    cases = {
        "nested swap,distill,swap (Werner)": lambda: simulate_nested(
            "swap,distill,swap", p_gen=0.3, p_swap=0.7, w0=0.95, t_coh=50.0, cutoff=[6, 10, 20],
            samples=20000, seed=5, keep=20000),
        "nested distill,swap (Bell-diagonal)": lambda: simulate_nested(
            "distill,swap", p_gen=0.25, p_swap=0.8, lam0=np.array([0.9, 0.05, 0.03, 0.02]), t_coh=40.0,
            cutoff=[8, 15], samples=20000, seed=6, keep=20000),
        "swap-asap 5 segments": lambda: simulate_swap_asap(
            6, p_gen=[0.3, 0.5, 0.4, 0.6, 0.5], p_swap=0.85, w0=0.97, t_coh=30.0, cutoff=5, samples=5000,
            seed=7, keep=5000),
    }
    cpu = jax.devices("cpu")[0]
    dev = jax.devices()[0]
    rows = []
    for name, fn in cases.items():
        try:
            a = fn()
            with jax.default_device(cpu):
                b = fn()
            ta, tb = np.asarray(a.times), np.asarray(b.times)
            wa, wb = np.asarray(a.werner), np.asarray(b.werner)
            rows.append(dict(case=name, device=str(getattr(dev, "device_kind", dev)),
                             times_identical=bool(np.array_equal(ta, tb)),
                             werner_max_abs_diff=float(np.nanmax(np.abs(wa - wb))) if wa.size else 0.0,
                             mean_time_device=float(a.mean_time), mean_time_cpu=float(b.mean_time),
                             mean_werner_device=float(a.mean_werner), mean_werner_cpu=float(b.mean_werner)))
        except Exception as exc:
            rows.append(dict(case=name, skipped=f"{type(exc).__name__}: {exc}"[:300]))
        _log(f"mc_equality {rows[-1]}")
    return {"rows": rows}


RUNNERS = {"delivery": run_delivery, "montecarlo": run_montecarlo, "optimize": run_optimize,
           "sequence": run_sequence, "sweep": run_sweep, "mc_equality": run_mc_equality}


# ----------------------------------------------------------------------------- tables


def _f(x, fmt="{:.3g}"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return fmt.format(x)


def _table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def render(results: dict) -> dict:
    """Markdown of each generated block, keyed ``<benchmark>-<platform>``."""
    from _common import machine_label

    meta = results["meta"]
    m, date = machine_label(meta), meta["date"]
    plat = "gpu" if meta.get("backend") not in (None, "cpu") else "cpu"
    load = f"load average {meta.get('load_avg')} → {meta.get('load_avg_end')}"
    mode = "quick" if results.get("quick") else "full"
    hdr = lambda what: [f"_{what}: {m}, {date}, jax {meta.get('jax')}, {mode} run, {load}; "
                        f"commit {meta.get('commit')}._", ""]
    blocks = {}
    b = results["benchmarks"]

    def skipped(name):
        r = b[name]
        return ["_skipped: " + r["skipped"] + "_"] if "skipped" in r and not r.get("rows") else []

    if "delivery" in b and "rows" in b["delivery"]:
        rs = b["delivery"]["rows"]
        body = [[m, date, r["protocol"], r["dtype"], r["t_trunc"], r["batch"], r["mode"] + (f" ({r['note']})" if r.get("note") else ""),
                 _f(r["first_call_s"], "{:.2f}"), _f(r["compile_s"], "{:.2f}"), _f(r["per_design_ms"], "{:.4g}"),
                 _f(r["designs_per_s"], "{:,.0f}"), f"{r['ffts_per_design']} × {r['fft_length']}",
                 _f(r["floor_designs_per_s"], "{:,.0f}"), _f(100 * r["floor_ratio"], "{:.0f}%"),
                 _f(r.get("vg_over_forward"), "{:.2f}")] for r in rs if "wall_s" in r]
        lines = hdr("Exact engine") + _table(
            ["machine", "date", "protocol", "dtype", "t_trunc", "batch", "mode", "first call s", "compile s",
             "ms/design", "designs/s", "FFTs/design × length", "FFT-floor designs/s", "% of floor", "vg/fwd"], body)
        sk = [r for r in rs if "skipped" in r]
        if sk:
            lines += ["", "Skipped: " + "; ".join(f"{r['protocol']} {r['dtype']} T={r['t_trunc']} B={r['batch']} "
                                                   f"{r['mode']} ({r['skipped']})" for r in sk) + "."]
        tg = b["delivery"].get("targets") or {}
        if tg:
            lines += ["", "Targets (float64, three swap levels): " + "; ".join(
                f"{k} {v['value']:.4g} vs {v['target']:g} **{'met' if v['met'] else 'not met'}**" for k, v in tg.items()) + "."]
        blocks[f"delivery-{plat}"] = lines
    if "montecarlo" in b and "rows" in b["montecarlo"]:
        body = [[m, date, r["case"], f"{r['samples']:,}", _f(r["per_s_wall"], "{:,.0f}"), _f(r["per_s_cpu"], "{:,.0f}"),
                 _f(r["first_call_s"], "{:.1f}"), f"{r['mean_time']:.2f} ± {r['mean_time_stderr']:.2f}",
                 _f(r["mean_werner"], "{:.4f}"), _f(r.get("requsim_per_s"), "{:,.1f}"), _f(r.get("ratio"), "{:,.0f}×")]
                for r in b["montecarlo"]["rows"]]
        blocks[f"montecarlo-{plat}"] = hdr("Monte Carlo") + _table(
            ["machine", "date", "case", "samples", "delivered/s (wall)", "per CPU-s", "first call s", "E[T]",
             "mean w", "requsim pairs/s", "ratio"], body)
    if "optimize" in b and "rows" in b["optimize"]:
        body = [[m, date, r["case"], r["protocol"], r["qnjax_cutoff"], _f(r["qnjax_skr"], "{:.4g}"),
                 _f(r["best_baseline"], "{:.4g}"), _f(r["ratio"], "{:.4f}"), _f(r["qnjax_s"], "{:.1f}"),
                 _f(r["de_s"], "{:.1f}"), _f(r["time_ratio"], "{:.2f}")] for r in b["optimize"]["rows"]]
        blocks[f"optimize-{plat}"] = hdr("Optimizer vs differential evolution") + _table(
            ["machine", "date", "case", "protocol", "qnjax cut-offs", "qnjax bits/step", "best baseline",
             "rate ratio", "qnjax s", "DE s", "time ratio"], body) + skipped("optimize")
    if "sequence" in b:
        body = [[m, date, r["scenario"], r["events"], _f(r["native_median_s"], "{:.3f}"), _f(r["qnjax_median_s"], "{:.3f}"),
                 _f(r["ratio"], "{:.3f}"), _f(r["ratio_cpu"], "{:.3f}"), r["identical_to_native"]]
                for r in b["sequence"].get("rows", [])]
        blocks[f"sequence-{plat}"] = hdr("SeQUeNCe backend") + (_table(
            ["machine", "date", "scenario", "events", "native s", "qnjax s", "ratio", "CPU ratio", "identical"],
            body) if body else []) + skipped("sequence")
    if "sweep" in b and "rows" in b["sweep"]:
        body = [[m, date, r["devices"], r["designs"], r["t_trunc"], _f(r.get("designs_per_s"), "{:,.0f}"),
                 _f(r.get("speedup"), "{:.2f}×"), _f(r.get("first_s"), "{:.1f}"), r.get("same_results", "–")
                 if "skipped" not in r else r["skipped"]] for r in b["sweep"]["rows"]]
        note = ("forced host devices share the machine's cores" if plat == "cpu" else "real devices")
        blocks[f"sweep-{plat}"] = hdr(f"sweep_designs scaling ({note})") + _table(
            ["machine", "date", "devices", "designs", "t_trunc", "designs/s", "speed-up", "first sweep s",
             "same results"], body)
    if "mc_equality" in b and "rows" in b["mc_equality"]:
        body = [[m, date, r["case"], r.get("times_identical", "–"), _f(r.get("werner_max_abs_diff"), "{:.2g}"),
                 _f(r.get("mean_time_device"), "{:.6g}"), _f(r.get("mean_time_cpu"), "{:.6g}"),
                 r.get("skipped", "")] for r in b["mc_equality"]["rows"]]
        blocks[f"mc_equality-{plat}"] = hdr("Same-seed float64 Monte Carlo, accelerator vs CPU") + _table(
            ["machine", "date", "case", "times identical", "max |Δw|", "E[T] device", "E[T] CPU", "note"], body)
    return {k: "\n".join(v) for k, v in blocks.items()}


_TITLES = {"delivery": "Exact delivery engine", "montecarlo": "Monte Carlo engine", "optimize": "Design optimizer",
           "sequence": "SeQUeNCe backend", "sweep": "Sharded sweeps", "mc_equality": "Monte Carlo CPU vs accelerator"}

_SKELETON = """# qnjax benchmark results

Generated by `python -m benchmarks` (see `benchmarks/run.py`): the tables between
`<!-- qnjax:begin NAME -->` / `<!-- qnjax:end NAME -->` markers are rewritten by each run
(one block per benchmark and platform, every row naming its machine and date); text outside
them is kept. Raw results: `benchmarks/out/results-<machine>-<date>.json` (not committed).
Figures taken on a shared, loaded machine say so (load average in each block's header):
read them as relative figures.
"""


def update_markdown(blocks: dict, path: str = RESULTS_MD) -> None:
    text = open(path).read() if os.path.exists(path) else _SKELETON
    rank = {n: i for i, n in enumerate(_TITLES)}
    for name, body in sorted(blocks.items(), key=lambda kv: (rank.get(kv[0].rsplit("-", 1)[0], 99), kv[0])):
        begin, end = f"<!-- qnjax:begin {name} -->", f"<!-- qnjax:end {name} -->"
        block = f"{begin}\n{body}\n{end}"
        pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if pat.search(text):
            text = pat.sub(lambda _: block, text)
        else:
            base, plat = name.rsplit("-", 1)
            text = text.rstrip("\n") + f"\n\n## {_TITLES.get(base, base)} ({plat.upper()})\n\n{block}\n"
    with open(path, "w") as fh:
        fh.write(text)


# ----------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description="qnjax benchmark suite")
    ap.add_argument("--quick", action="store_true", help="smoke run (about 2 minutes on an idle 2-core CPU)")
    ap.add_argument("--gpu", action="store_true", help="the accelerator subset (delivery, montecarlo, "
                    "CPU-vs-device Monte Carlo equality, sweep)")
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(RUNNERS))
    ap.add_argument("--json", default=None, help="results JSON path (default benchmarks/out/results-<machine>-<date>.json)")
    ap.add_argument("--no-md", action="store_true", help="do not rewrite RESULTS.md")
    ap.add_argument("--md", default=RESULTS_MD, help="RESULTS.md to update")
    ap.add_argument("--from-json", nargs="+", default=None, help="regenerate tables from saved result files only")
    ap.add_argument("--python312", default=None, help="Python 3.12 interpreter with qnjax[sequence] installed, "
                    "for the SeQUeNCe benchmark (default $QNJAX_PYTHON312, else .ci-venv312/bin/python)")
    a = ap.parse_args(argv)
    global PYTHON312
    PYTHON312 = a.python312

    if a.from_json:
        for path in a.from_json:
            for p in sorted(glob.glob(path)) or [path]:
                with open(p) as fh:
                    update_markdown(render(json.load(fh)), a.md)
                _log(f"tables from {p} → {a.md}")
        return 0

    import jax

    jax.config.update("jax_enable_x64", True)
    from _common import machine_label, machine_meta

    names = a.only.split(",") if a.only else list(GPU_ALL if a.gpu else ALL)
    for n in names:
        if n not in RUNNERS:
            ap.error(f"--only: unknown benchmark {n!r}; choose from {', '.join(RUNNERS)}")
    meta = machine_meta(jax)
    results = {"meta": meta, "quick": a.quick, "gpu": a.gpu, "benchmarks": {}}
    path = a.json or os.path.join(OUT_DIR, "results-{}-{}.json".format(
        re.sub(r"[^A-Za-z0-9]+", "-", machine_label(meta)).strip("-").lower(),
        time.strftime("%Y%m%d-%H%M", time.gmtime())))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _log(f"qnjax benchmarks ({'quick' if a.quick else 'full'}{', gpu' if a.gpu else ''}) on {machine_label(meta)}, "
         f"load {meta['load_avg']}: {', '.join(names)}")
    t_all = time.perf_counter()
    for n in names:
        t0 = time.perf_counter()
        try:
            res = RUNNERS[n](a.quick, a.gpu)
        except Exception as exc:
            traceback.print_exc()
            res = {"skipped": f"{type(exc).__name__}: {exc}"[:500], "rows": []}
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        results["benchmarks"][n] = res
        _log(f"== {n}: {res['wall_s']} s")
        meta["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        meta["total_s"] = round(time.perf_counter() - t_all, 1)
        with open(path, "w") as fh:  # after each benchmark: an interrupted suite keeps what it measured
            json.dump(results, fh, indent=1, default=float)
    if not a.no_md:
        update_markdown(render(results), a.md)
        _log(f"tables → {a.md}")
    _log(f"results → {path} ({meta['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
