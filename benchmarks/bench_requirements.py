"""Hardware requirements curve of ``examples/backbone_300_600km.toml`` at 300 km: the least
cost (Σ log k, da Silva et al., Quantum Sci. Technol. 6, 035007 (2021)) of reaching five target
key rates, every hardware parameter of the stations and the heralding free up to a factor
100 (the fibre fixed, the default of qnjax.requirements), plus the elasticities of the
optimized baseline. Wall times include compilation.

    python benchmarks/bench_requirements.py [--factors 1.25,1.5,2,2.5,3] [--plot docs/requirements_backbone.png]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

from qnjax.design import load_scenario, optimize  # noqa: E402
from qnjax.sizing import requirements_curve, sensitivity  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, "..", "examples", "backbone_300_600km.toml")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--factors", default="1.25,1.5,2,2.5,3", help="targets as multiples of the baseline rate")
    ap.add_argument("--plot", default=None)
    ap.add_argument("--json", default=os.path.join(HERE, "out", "requirements.json"))
    a = ap.parse_args(argv)
    scen = load_scenario(SCENARIO)
    t0 = time.perf_counter()
    base = optimize(scen)
    t_base = time.perf_counter() - t0
    t1 = time.perf_counter()
    sens = sensitivity(scen, result=base)
    t_sens = time.perf_counter() - t1
    rate = float(base.skr_bits_per_s)
    targets = [rate * float(f) for f in a.factors.split(",")]
    t2 = time.perf_counter()
    res = requirements_curve(scen, targets, baseline=base)
    t_curve = time.perf_counter() - t2
    rows = []
    for t, r in zip(targets, res):
        if isinstance(r, Exception):
            rows.append({"target_bits_per_s": t, "error": str(r)})
        else:
            j = r.to_json()
            rows.append({k: j[k] for k in ("target_bits_per_s", "skr_bits_per_s", "cost", "improvement",
                                            "required", "design", "wall_s")})
    out = {"baseline_skr_bits_per_s": rate, "baseline_wall_s": t_base, "sensitivity_wall_s": t_sens,
           "curve_wall_s": t_curve, "sensitivity": sens.to_json()["parameters"], "curve": rows,
           "jax": jax.__version__}
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump(out, fh, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "sensitivity"}, indent=1))
    if a.plot:
        sys.path.insert(0, os.path.join(HERE, ".."))
        from qnjax.cli.requirements import plot_curve

        plot_curve(res, targets[-1], scen.name, a.plot, "log-improvement")


if __name__ == "__main__":
    main()
