"""Shared helpers of the benchmark suite: machine description, timers, FFT census."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import time


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_meta(jax=None) -> dict:
    """Who measured: host, CPU, cores, accelerator, load, versions, date (UTC)."""
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
    }
    if jax is not None:
        dev = jax.devices()[0]
        meta.update(jax=jax.__version__, backend=dev.platform, device=str(getattr(dev, "device_kind", dev)),
                    n_devices=len(jax.devices()))
    try:
        meta["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        cwd=os.path.dirname(os.path.abspath(__file__)), timeout=5).stdout.strip() or None
    except Exception:
        meta["commit"] = None
    return meta


def machine_label(meta: dict) -> str:
    """Short name of the machine for table rows, e.g. ``cpu 2c (Xeon …)`` or ``NVIDIA H100``."""
    if meta.get("backend") not in (None, "cpu"):
        return meta.get("device", meta["backend"])
    cpu = re.sub(r"\((R|TM)\)|CPU|@.*$|Processor", "", meta.get("cpu", "")).strip()
    cpu = re.sub(r"\s+", " ", cpu)
    return f"CPU {meta.get('cores')}c {cpu}".strip()


def timeit(fn, block, *, min_time=0.3, min_repeats=2, max_repeats=20):
    """Best-of wall time of ``fn()`` (and process CPU time of that run), after it has run once."""
    best = None
    t_start = time.perf_counter()
    for i in range(max_repeats):
        w, c = time.perf_counter(), time.process_time()
        block(fn())
        w, c = time.perf_counter() - w, time.process_time() - c
        if best is None or w < best[0]:
            best = (w, c)
        if i + 1 >= min_repeats and time.perf_counter() - t_start >= min_time:
            break
    return best


_FFT_RE = re.compile(r"=\s*(\w+)\[([\d,]*)\][^ ]* fft\(.*?fft_type=(\w+), fft_length=\{([\d,]+)\}")


def fft_census(hlo_text: str) -> dict:
    """Count the 1-D transforms in compiled HLO text: each ``fft`` op contributes the product
    of its batch dimensions (all but the transformed one). Returns totals by type and length."""
    by = {}
    for m in _FFT_RE.finditer(hlo_text):
        dims = [int(x) for x in m.group(2).split(",") if x]
        kind, length = m.group(3), int(m.group(4).split(",")[-1])
        batch = 1
        for d in dims[:-1]:
            batch *= d
        key = f"{kind}:{length}"
        by[key] = by.get(key, 0) + batch
    return {"total": sum(by.values()), "by_type": by}
