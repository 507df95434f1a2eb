"""Sweep scaling: ``qnjax.sweep_designs`` over 1, 2, 4 devices.

Each device count runs in a fresh subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count``
on CPU, so the devices share the machine's cores; on a GPU host the real devices). In each, the
same grid of three-swap-level designs is swept twice; the second (compiled) sweep is timed,
with the JSONL writer on, so the figure includes gathering and writing rows.

    python benchmarks/bench_sweep.py [--quick] [--devices 1,2,4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

_CHILD = r"""
import json, os, sys, tempfile, time
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
from qnjax.distributed import design_grid, sweep_designs
n, T = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
g = dict(p_gen=rng.uniform(0.05, 0.3, n), t_coh=rng.uniform(100, 800, n),
         cutoff=rng.uniform(5, 120, (n, 3)))
fixed = dict(p_swap=0.5, w0=0.98)
with tempfile.TemporaryDirectory() as d:
    t0 = time.perf_counter()
    sweep_designs("swap,swap,swap", g, fixed=fixed, t_trunc=T, out=os.path.join(d, "a.jsonl"))
    first = time.perf_counter() - t0
    w, c = time.perf_counter(), time.process_time()
    r = sweep_designs("swap,swap,swap", g, fixed=fixed, t_trunc=T, out=os.path.join(d, "b.jsonl"))
    w, c = time.perf_counter() - w, time.process_time() - c
print(json.dumps(dict(devices=len(jax.devices()), platform=jax.devices()[0].platform, designs=n, t_trunc=T,
                      first_s=first, wall_s=w, cpu_s=c, designs_per_s=n / w,
                      checksum=float(np.sum(r["mean_time"])))))
"""


def run_one(devices: int, n: int, t_trunc: int, cpu: bool = True, timeout: float = 600) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    if cpu:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        env["JAX_PLATFORMS"] = "cpu"
    else:  # accelerators: restrict the visible devices
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(devices))
    p = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(t_trunc)], env=env, capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        return dict(devices=devices, designs=n, t_trunc=t_trunc, skipped=p.stderr.strip().splitlines()[-1][:200])
    return json.loads(p.stdout.strip().splitlines()[-1])


def rows(quick: bool = False, devices=(1, 2, 4), cpu: bool = True, log=print, n: int | None = None,
         t_trunc: int | None = None) -> list[dict]:
    n0, T0 = (400, 1000) if quick else (2000, 2000)
    n, T = n or n0, t_trunc or T0
    out = []
    for d in devices:
        r = run_one(d, n, T, cpu=cpu)
        out.append(r)
        if "wall_s" in r:
            r["speedup"] = out[0]["wall_s"] / r["wall_s"] if "wall_s" in out[0] else None
            log(f"sweep {r['designs']} designs T={T} on {d} {'CPU ' if cpu else ''}devices: "
                f"{r['designs_per_s']:,.0f}/s (speed-up {r['speedup']:.2f}x, first sweep {r['first_s']:.1f} s)")
        else:
            log(f"sweep on {d} devices skipped: {r['skipped']}")
    sums = {round(r["checksum"], 6) for r in out if "checksum" in r}
    for r in out:
        r["same_results"] = len(sums) <= 1
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--devices", default="1,2,4")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    rs = rows(a.quick, tuple(int(x) for x in a.devices.split(",")))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dict(rows=rs, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           load_avg=os.getloadavg()), fh, indent=1)


if __name__ == "__main__":
    main()
