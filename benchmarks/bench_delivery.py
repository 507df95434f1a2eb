"""Exact delivery engine throughput (issue 3): designs/s against the machine's FFT floor.

Cases: three swap levels (8 segments; p_gen ~ 0.1, p_swap 0.5, w0 0.98, t_coh 400, cut-offs
~ (17, 32, 56), every design jittered so no two are equal) and a protocol with two distill
levels (``distill,swap,distill,swap``, 4 segments); t_trunc 10^3, 10^4, 10^5; batches 1, 100,
1000, 10^4; forward (the public ``qnjax.delivery`` call, jitted internally) and
``value_and_grad`` of the summed smooth key rate with respect to p_gen, p_swap, w0, t_coh and
the cut-offs (one jitted function); float32 and float64.

* ``first call s``: the first call at new shapes (tracing + compilation + one run), measured
  separately; ``compile s`` = first call − best run; the timed figures are best-of-repeats after it.
* FFT floor: the compiled HLO of one design is searched for ``fft`` ops; their batch sizes give
  the transforms one design needs, counted in units of the longest one (a transform of
  length ``n`` weighs ``n log n`` against it: the root's series inverse runs many short ones). A batched ``rfft``+``irfft`` of the same length on this
  machine, with as many rows as the engine's FFT calls have at that batch (2 × batch, capped
  at 64 MB of data on a CPU, 1 GB on an accelerator), gives the floor rate; ``% floor`` is the achieved transform rate (designs/s ×
  transforms per design) over that floor rate (100% = nothing but FFTs at full speed).
* Combinations expected to exceed ``--max-case-s`` (estimated from the smaller batches) or
  ~8 GB are skipped and listed.

Targets (2-core CPU, float64): one design at t_trunc 10^4 <= 3 ms; >= 600 designs/s batched
at 10^4; value_and_grad <= 3x forward; first call <= 5 s. H100 float64: >= 100,000 designs/s
at 10^4, >= 1,000,000/s at 10^3.

    python benchmarks/bench_delivery.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import fft_census, machine_meta, timeit  # noqa: E402

import qnjax  # noqa: E402

PROTOCOLS = {
    "swap,swap,swap": dict(p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=400.0, cutoff=(17.0, 32.0, 56.0)),
    "distill,swap,distill,swap": dict(p_gen=0.3, p_swap=0.8, w0=0.97, t_coh=300.0, cutoff=(20.0, 30.0, 45.0, 60.0)),
}
TARGETS = {"single_ms_1e4": 3.0, "batched_per_s_1e4": 600.0, "vg_ratio": 3.0, "first_call_s": 5.0,
           "gpu_per_s_1e4": 1e5, "gpu_per_s_1e3": 1e6}


def designs(protocol: str, batch: int, dtype, seed: int = 0) -> dict:
    """``batch`` jittered designs around the protocol's base point."""
    base = PROTOCOLS[protocol]
    rng = np.random.default_rng(seed)
    j = lambda v, s=0.1: v * (1 + s * rng.uniform(-1, 1, batch))
    K = len(base["cutoff"])
    d = dict(p_gen=np.clip(j(base["p_gen"]), 1e-3, 1), p_swap=np.clip(j(base["p_swap"]), 1e-3, 1),
             w0=np.clip(j(base["w0"], 0.01), 0, 1), t_coh=j(base["t_coh"]),
             cutoff=np.asarray(base["cutoff"])[None, :] * (1 + 0.2 * rng.uniform(-1, 1, (batch, K))))
    return {k: jnp.asarray(v, dtype) for k, v in d.items()}


def _forward(protocol, t_trunc, chunk_bytes):
    kw = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}
    return lambda d: qnjax.delivery(protocol, **d, t_trunc=t_trunc, warn=False, **kw)


def _vg(protocol, t_trunc, chunk_bytes):
    kw = {} if chunk_bytes is None else {"chunk_bytes": chunk_bytes}

    def f(d):
        return jnp.sum(qnjax.delivery(protocol, **d, t_trunc=t_trunc, warn=False, **kw).secret_key_rate_smooth)

    return jax.jit(jax.value_and_grad(f))


_CENSUS: dict = {}


def census(protocol, t_trunc, dtype) -> dict:
    """Transforms one design needs (from the compiled HLO of a batch of one)."""
    key = (protocol, t_trunc, jnp.dtype(dtype).name)
    if key not in _CENSUS:
        d = designs(protocol, 1, dtype)
        txt = jax.jit(_forward(protocol, t_trunc, None)).lower(d).compile().as_text()
        c = fft_census(txt)
        c["length"] = n_max = max((int(k.split(":")[1]) for k in c["by_type"]), default=0)
        # transforms of other lengths (the root's series inverse) in units of the longest one,
        # by the n log n cost of an FFT
        cost = lambda n: n * math.log2(max(n, 2))
        c["equiv"] = (sum(v * cost(int(k.split(":")[1])) for k, v in c["by_type"].items()) / cost(n_max)
                      if n_max else 0.0)
        _CENSUS[key] = c
    return _CENSUS[key]


_FLOOR: dict = {}


def fft_floor_rows(length: int, dtype) -> int:
    """Rows of the default floor batch: about 64 MB of data on a CPU, 1 GB on an accelerator."""
    size = 64 * 2**20 if jax.devices()[0].platform == "cpu" else 2**30
    return max(8, min(65536, size // (length * jnp.dtype(dtype).itemsize)))


def fft_floor(length: int, dtype, rows: int | None = None) -> float:
    """Measured transforms/s of a batched ``rfft`` + ``irfft`` round trip of ``length``
    (each round trip counts two transforms); ``rows`` transforms per call (default
    :func:`fft_floor_rows`)."""
    key = (length, jnp.dtype(dtype).name, rows)
    if True:  # measured afresh next to each case: on a shared machine the load drifts
        if rows is None:
            rows = fft_floor_rows(length, dtype)
        x = jnp.asarray(np.random.default_rng(0).standard_normal((rows, length)), dtype)
        f = jax.jit(lambda a: jnp.fft.irfft(jnp.fft.rfft(a, axis=-1), n=length, axis=-1))
        jax.block_until_ready(f(x))
        wall, _ = timeit(lambda: f(x), jax.block_until_ready, min_time=0.3, min_repeats=3)
        _FLOOR[key] = 2 * rows / wall
    return _FLOOR[key]


def bench_case(protocol: str, t_trunc: int, batch: int, dtype, mode: str = "forward",
               chunk_bytes: int | None = None, min_time: float = 0.3) -> dict:
    """One row: first-call time, best-of wall time, designs/s, FFT census and floor ratio."""
    d = designs(protocol, batch, dtype)
    fn = _forward(protocol, t_trunc, chunk_bytes) if mode == "forward" else _vg(protocol, t_trunc, chunk_bytes)
    t0 = time.perf_counter()
    jax.block_until_ready(fn(d))
    first = time.perf_counter() - t0
    d2 = designs(protocol, batch, dtype, seed=1)  # new values, same shapes: no recompilation
    wall, cpu = timeit(lambda: fn(d2), jax.block_until_ready, min_time=min_time)
    c = census(protocol, t_trunc, dtype)
    # the floor at the batch the engine's own FFT calls see (two Walsh components per design),
    # capped at the rows the default 64 MB / 1 GB floor batch holds
    cap = fft_floor_rows(c["length"], dtype) if c["length"] else 1
    floor = fft_floor(c["length"], dtype, min(cap, max(1, 2 * batch))) if c["length"] else float("nan")
    per_s = batch / wall
    achieved = per_s * c["equiv"]
    return dict(protocol=protocol, t_trunc=t_trunc, batch=batch, dtype=jnp.dtype(dtype).name, mode=mode,
                chunk_bytes=chunk_bytes, first_call_s=round(first, 3), compile_s=round(max(first - wall, 0), 3),
                wall_s=wall, cpu_s=cpu,
                per_design_ms=1e3 * wall / batch, designs_per_s=per_s, ffts_per_design=round(c["equiv"], 1),
                fft_count=c["total"],
                fft_by_type=c["by_type"], fft_length=c["length"], fft_floor_per_s=floor,
                fft_achieved_per_s=achieved, floor_ratio=achieved / floor if floor else float("nan"),
                floor_designs_per_s=floor / c["equiv"] if c["equiv"] else float("nan"))


def plan(quick: bool, gpu: bool):
    """(protocol, t_trunc, batch, dtype, mode) tuples in the order they run."""
    f64, f32 = jnp.float64, jnp.float32
    if gpu:
        out = []
        for dt in (f32, f64):
            for T, batches in ((1000, (1, 10_000, 100_000)), (10_000, (1, 10_000, 50_000))):
                out += [("swap,swap,swap", T, b, dt, "forward") for b in batches]
        out += [("swap,swap,swap", 10_000, 1000, f64, "value_and_grad"),
                ("distill,swap,distill,swap", 10_000, 10_000, f64, "forward")]
        return out
    if quick:
        return [("swap,swap,swap", 10_000, 1, f64, "forward"), ("swap,swap,swap", 10_000, 100, f64, "forward"),
                ("swap,swap,swap", 1000, 1, f64, "forward"), ("swap,swap,swap", 1000, 1, f64, "value_and_grad"),
                ("swap,swap,swap", 1000, 1000, f64, "forward"), ("swap,swap,swap", 10_000, 100, f32, "forward")]
    out = []
    for proto in PROTOCOLS:
        for dt in (f64, f32):
            for T in (1000, 10_000, 100_000):
                for b in (1, 100, 1000, 10_000):
                    out.append((proto, T, b, dt, "forward"))
                for b in (1, 100):
                    out.append((proto, T, b, dt, "value_and_grad"))
    return out


def rows(quick: bool = False, gpu: bool = False, max_case_s: float = 120.0, max_bytes: float = 8e9,
         chunk_bytes: int | None = None, log=print) -> list[dict]:
    """Run the plan; returns one dict per case (skipped ones carry ``skipped``: reason)."""
    out, per_design, big = [], {}, {}
    for proto, T, b, dt, mode in plan(quick, gpu):
        key = (proto, T, jnp.dtype(dt).name, mode)
        est = per_design.get(key)
        base = dict(protocol=proto, t_trunc=T, batch=b, dtype=jnp.dtype(dt).name, mode=mode)
        # value_and_grad keeps every intermediate of the batch (no chunking of the tape)
        mem = b * 16 * 4 * 2.5 * T * 6 * (len(proto.split(",")) if mode != "forward" else 0)
        if mem > max_bytes:
            out.append(dict(base, skipped=f"needs about {mem / 1e9:.0f} GB for the gradient tape"))
            log(f"skip {base}: memory"); continue
        if est is not None and est * b > max_case_s / 3:
            out.append(dict(base, skipped=f"estimated {est * b:.0f} s per call (> {max_case_s / 3:.0f} s)"))
            log(f"skip {base}: time"); continue
        try:
            r = bench_case(proto, T, b, dt, mode, chunk_bytes=chunk_bytes, min_time=0.2 if quick else 0.5)
        except Exception as exc:  # out of memory on a device, say: record and go on
            out.append(dict(base, skipped=f"{type(exc).__name__}: {str(exc)[:200]}"))
            log(f"fail {base}: {exc}"); continue
        if key not in big or b >= big[key]:  # per-design time at the largest batch so far
            big[key], per_design[key] = b, r["wall_s"] / b
        out.append(r)
        log(f"{proto:26s} T={T:<6d} B={b:<6d} {r['dtype']:7s} {mode:14s} first {r['first_call_s']:6.2f} s (compile {r['compile_s']:5.2f})  "
            f"{r['per_design_ms']:9.3f} ms/design  {r['designs_per_s']:12,.0f}/s  "
            f"FFT {r['ffts_per_design']}x{r['fft_length']}  {100 * r['floor_ratio']:5.1f}% of floor")
    # value_and_grad / forward ratio at equal case
    fw = {(r["protocol"], r["t_trunc"], r["batch"], r["dtype"]): r["wall_s"] for r in out
          if r.get("mode") == "forward" and "wall_s" in r}
    for r in out:
        if r.get("mode") == "value_and_grad" and "wall_s" in r:
            f = fw.get((r["protocol"], r["t_trunc"], r["batch"], r["dtype"]))
            r["vg_over_forward"] = r["wall_s"] / f if f else None
    return out


def check_targets(rs: list[dict], gpu: bool = False) -> dict:
    """Issue 3's targets against the measured rows (float64)."""
    ok = [r for r in rs if "wall_s" in r and r["dtype"] == "float64" and r["protocol"] == "swap,swap,swap"]
    get = lambda **k: [r for r in ok if all(r.get(a) == v for a, v in k.items())]
    t = {}
    if gpu:
        b4 = get(t_trunc=10_000, mode="forward")
        b3 = get(t_trunc=1000, mode="forward")
        if b4:
            v = max(r["designs_per_s"] for r in b4)
            t["gpu_per_s_1e4"] = dict(value=v, target=TARGETS["gpu_per_s_1e4"], met=v >= TARGETS["gpu_per_s_1e4"])
        if b3:
            v = max(r["designs_per_s"] for r in b3)
            t["gpu_per_s_1e3"] = dict(value=v, target=TARGETS["gpu_per_s_1e3"], met=v >= TARGETS["gpu_per_s_1e3"])
        return t
    one = get(t_trunc=10_000, batch=1, mode="forward")
    if one:
        v = one[0]["per_design_ms"]
        t["single_ms_1e4"] = dict(value=v, target=TARGETS["single_ms_1e4"], met=v <= TARGETS["single_ms_1e4"])
        v = one[0]["compile_s"]
        t["first_call_s"] = dict(value=v, target=TARGETS["first_call_s"], met=v <= TARGETS["first_call_s"])
    many = [r for r in get(t_trunc=10_000, mode="forward") if r["batch"] > 1]
    if many:
        v = max(r["designs_per_s"] for r in many)
        t["batched_per_s_1e4"] = dict(value=v, target=TARGETS["batched_per_s_1e4"], met=v >= TARGETS["batched_per_s_1e4"])
    vg = [r["vg_over_forward"] for r in get(mode="value_and_grad") if r.get("vg_over_forward")]
    if vg:
        v = max(vg)
        t["vg_ratio"] = dict(value=v, target=TARGETS["vg_ratio"], met=v <= TARGETS["vg_ratio"])
    return t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gpu", action="store_true", help="the accelerator plan (large batches)")
    ap.add_argument("--max-case-s", type=float, default=120.0)
    ap.add_argument("--chunk-bytes", type=int, default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    meta = machine_meta(jax)
    print(json.dumps(meta), flush=True)
    rs = rows(a.quick, a.gpu, a.max_case_s, chunk_bytes=a.chunk_bytes)
    meta["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    tg = check_targets(rs, a.gpu)
    for k, v in tg.items():
        print(f"target {k}: {v['value']:.4g} (target {v['target']:g}) {'met' if v['met'] else 'NOT met'}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(meta=meta, rows=rs, targets=tg), fh, indent=1, default=float)


if __name__ == "__main__":
    main()
