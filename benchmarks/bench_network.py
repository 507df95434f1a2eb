"""Network planning on SURFnet (Topology Zoo via topohub): key rate against repeater budget.

Ten demands between cities 150 to 330 km apart by fiber, the built-in hardware
(``qnjax.network.default_hardware``), dedicated memories, max-min objective, two routes per
demand, up to three repeaters per chain (every swap-tree shape). The candidate table is
built once by the first budget and reused by the others (the same process), so the first
row carries the table's engine work (every tree shape through the padded programs: depth 2
for trees over 2 to 4 segments except the caterpillars, the compact depth-3 program for
those, three truncation lengths each, six compiled programs); later rows pay the search, the refinement of
newly chosen chains and the exact re-evaluation at ``t_trunc="auto"``. A reduced instance (three demands, at most two repeaters per
chain) compares branch-and-bound with exhaustive enumeration of every repeater set of the
budget's size on the same table. Wall times include
compilation. Compare Rabbie et al., npj Quantum Inf. 8, 5 (2022) (placement on SURFnet by
linear programming over a memoryless link model).

    python benchmarks/bench_network.py [--budgets 2,3,4,5,6,7,8] [--plot docs/network_surfnet_budget.png]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_label, machine_meta  # noqa: E402

from qnjax.network import plan  # noqa: E402

NETWORK = "topozoo/Surfnet"
DEMANDS = ("Groningen:Maastricht,Amsterdam:Enschede,Leeuwarden:Delft,Den Helder:Eindhoven,"
           "Vlissingen:Utrecht,Emmen:Rotterdam,Middelburg:Zwolle,Heerlen:Leiden,Winschoten:Nijmegen,"
           "Alkmaar:Venlo")
REDUCED = "Vlissingen:Utrecht,Heerlen:Leiden,Alkmaar:Venlo"
REDUCED_KW = dict(max_repeaters=2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="2,3,4,5,6,7,8")
    ap.add_argument("--plot", default="docs/network_surfnet_budget.png")
    ap.add_argument("--map", default="docs/network_surfnet_plan.png", help="map of the plan at the largest budget")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    ap.add_argument("--reduced-only", action="store_true", help="only the B&B vs exhaustive comparison")
    args = ap.parse_args(argv)
    budgets = [] if args.reduced_only else [int(b) for b in args.budgets.split(",")]
    meta = machine_meta(jax)
    load0 = os.getloadavg()
    rows, t_all, cpu0 = [], time.perf_counter(), os.times()
    res = None
    for b in budgets:
        c0 = time.process_time()
        res = plan(NETWORK, DEMANDS, budget=b)
        cpu_b = time.process_time() - c0
        rows.append(dict(budget=b, sites=list(res.repeaters), min=res.min_rate, sum=res.sum_rate, wall_s=res.wall_s,
                         optimal=res.optimal, bound=res.bound, method=res.method, chains=res.chains_evaluated,
                         cpu_s=cpu_b))
        print(f"budget {b}: {len(res.repeaters)} sites {res.repeaters} min {res.min_rate:.4g} bits/s "
              f"sum {res.sum_rate:.4g} ({res.method}, optimal={res.optimal}) {res.wall_s:.1f} s, "
              f"{cpu_b:.1f} s CPU", flush=True)
    total = time.perf_counter() - t_all
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    red = []
    for b in (2, 3, 4):
        bb = plan(NETWORK, REDUCED, budget=b, exhaustive_limit=0, **REDUCED_KW)
        ex = plan(NETWORK, REDUCED, budget=b, exhaustive_limit=10**9, **REDUCED_KW)
        red.append(dict(budget=b, bb_min=bb.min_rate, ex_min=ex.min_rate, bb_sites=list(bb.repeaters),
                        ex_sites=list(ex.repeaters), bb_s=bb.wall_s, ex_s=ex.wall_s, bb_optimal=bb.optimal))
        print(f"reduced budget {b}: B&B {bb.min_rate:.6g} {bb.repeaters} ({bb.wall_s:.1f} s) vs exhaustive "
              f"{ex.min_rate:.6g} {ex.repeaters} ({ex.wall_s:.1f} s)", flush=True)
    load1 = os.getloadavg()
    if args.plot and rows:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([r["budget"] for r in rows], [r["min"] for r in rows], "o-", label="minimum over demands")
        ax.plot([r["budget"] for r in rows], [r["sum"] / 10 for r in rows], "s--", label="mean over demands")
        ax.set_yscale("log")
        ax.set_xlabel("repeater sites (budget)")
        ax.set_ylabel("secret-key rate (bits/s)")
        ax.set_title("SURFnet, 10 demands, max-min plan")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=130)
        plt.close(fig)
    if args.map and res is not None:
        from qnjax.network import load_network
        from qnjax.network.plot import plot_plan

        plot_plan(res, load_network(NETWORK), args.map)
    label = machine_label(meta)
    print(f"\n_{label}, {meta['date']}, jax {meta.get('jax')}, load average {[round(x, 2) for x in load0]} → "
          f"{[round(x, 2) for x in load1]}; total {total:.0f} s wall, {cpu:.0f} s CPU (user + sys) for the budget curve; commit {meta.get('commit')}._\n")
    print("| budget | sites | min bits/s | mean bits/s | method | optimal | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['budget']} | {', '.join(r['sites'])} | {r['min']:.4g} | {r['sum'] / 10:.4g} | {r['method']} | "
              f"{r['optimal']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} |")
    print("\n| reduced budget | B&B min bits/s | exhaustive min bits/s | B&B sites | exhaustive sites | B&B s | exhaustive s |")
    print("|---|---|---|---|---|---|---|")
    for r in red:
        print(f"| {r['budget']} | {r['bb_min']:.6g} | {r['ex_min']:.6g} | {', '.join(r['bb_sites'])} | "
              f"{', '.join(r['ex_sites'])} | {r['bb_s']:.2f} | {r['ex_s']:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(meta=meta, rows=rows, reduced=red, total_s=total, cpu_s=cpu), fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
