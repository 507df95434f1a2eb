"""Wall time of whole SeQUeNCe runs: native ``"bell_diagonal"`` vs the same program on qnjax.

Needs Python >= 3.12 and ``pip install -e ".[sequence]"``. For each scenario (linear
router chains built by SeQUeNCe's own ``generate_config``/``build_linear`` and
``RouterNetTopo``, driven by a ``RequestApp``), the run — topology construction,
``init`` and ``run`` — is timed natively and under :func:`qnjax.interop.sequence.use_qnjax`,
alternating the two ``--repeats`` times in one process; the medians and their ratio
are printed and written as JSON. Each qnjax run is also checked to deliver the same
pairs (times, memories, fidelities to 1e-12) as the native one.

A second part times fresh interpreter processes (imports included): ``sequence`` alone
vs ``sequence`` + ``qnjax.interop.sequence`` (which imports JAX once). A third part
times one call of each Bell-diagonal operation: SeQUeNCe's, qnjax's NumPy scalar path,
and qnjax's batched JAX API called on a single state (what a naive backend would do).

Run: ``python benchmarks/bench_sequence.py [--repeats 5] [--json benchmarks/bench_sequence.json]``
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
import types

import numpy as np

SCENARIOS = {
    "link2-bbpssw": dict(n_routers=2, target_fidelity=0.85, stop_time=1.0, memory_size=4),
    "link2-purify-dejmps": dict(n_routers=2, target_fidelity=0.93, stop_time=1.0, memory_size=4,
                                purification="dejmps_bds", gate_fid=0.99, meas_fid=0.99),
    "chain3-purify-swap": dict(n_routers=3, target_fidelity=0.87, raw_fidelity=0.85, memory_size=6,
                               stop_time=1.0),
    "chain5-swap": dict(n_routers=5, target_fidelity=0.7, raw_fidelity=0.95, memory_size=4, stop_time=0.3),
}


def run_chain(n_routers, target_fidelity, *, purification="bell_diagonal", raw_fidelity=0.9,
              coherence_time=0.5, memory_size=4, stop_time=0.3, gate_fid=1.0, meas_fid=1.0):
    """Build, run and return (deliveries at the far end, events executed)."""
    from sequence.app.request_app import RequestApp
    from sequence.entanglement_management.generation import EntanglementGenerationA, EntanglementGenerationB
    from sequence.entanglement_management.purification import PurificationProtocol
    from sequence.entanglement_management.swapping import EntanglementSwappingA, EntanglementSwappingB
    from sequence.kernel.quantum_manager import QuantumManager
    from sequence.topology.router_net_topo import RouterNetTopo
    from sequence.utils import nx_converter
    from sequence.utils.graphs import build_linear

    class App(RequestApp):
        def __init__(self, node):
            super().__init__(node)
            self.log = []

        def get_memory(self, info):
            if info.state in ("ENTANGLED", "PURIFIED") and info.index in self.memo_to_reservation:
                self.log.append((self.node.timeline.now(), info.index, info.remote_memo, float(info.fidelity)))
            super().get_memory(info)

    QuantumManager.set_global_manager_formalism("bell_diagonal")
    PurificationProtocol.set_formalism(purification)
    EntanglementSwappingA.set_formalism("bell_diagonal")
    EntanglementSwappingB.set_formalism("bell_diagonal")
    EntanglementGenerationA.set_global_type("single_heralded")
    EntanglementGenerationB.set_global_type("single_heralded")
    tpl = copy.deepcopy(nx_converter.default_template)
    tpl["router_template"]["MemoryArray"].update(coherence_time=coherence_time, fidelity=raw_fidelity)
    cfg, _ = nx_converter.generate_config(
        build_linear(n_routers, length=20.0), cc_delay=0.1, memory_size=memory_size, output_directory=None,
        output_file=None, stop_time=stop_time, formalism="bell_diagonal", node_template=tpl)
    topo = RouterNetTopo(cfg)
    tl = topo.get_timeline()
    routers = topo.get_nodes_by_type(RouterNetTopo.QUANTUM_ROUTER)
    for r in routers:
        r.gate_fid, r.meas_fid = gate_fid, meas_fid
    apps = {r.name: App(r) for r in routers}
    per_link = memory_size if n_routers == 2 else memory_size // 2
    apps[routers[0].name].start(routers[-1].name, int(1e10), int(stop_time * 1e12) - 1, per_link, target_fidelity)
    tl.init()
    tl.run()
    return apps[routers[-1].name].log, tl.run_counter


def _same(a, b):
    return len(a) == len(b) and all(x[:3] == y[:3] and abs(x[3] - y[3]) <= 1e-12 for x, y in zip(a, b))


def bench_runs(repeats):
    from qnjax.interop import sequence as qs

    out = {}
    for name, kw in SCENARIOS.items():
        run_chain(**kw)  # warm caches (imports, numpy) once for both
        with qs.use_qnjax():
            run_chain(**kw)
        native, ours, native_cpu, ours_cpu = [], [], [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            log_n, ev = run_chain(**kw)
            native.append(time.perf_counter() - t0)
            native_cpu.append(time.process_time() - c0)
            with qs.use_qnjax():
                t0, c0 = time.perf_counter(), time.process_time()
                log_q, ev_q = run_chain(**kw)
                ours.append(time.perf_counter() - t0)
                ours_cpu.append(time.process_time() - c0)
            assert ev == ev_q and _same(log_n, log_q), f"{name}: qnjax run differs from native"
        med_n, med_q = statistics.median(native), statistics.median(ours)
        cpu_n, cpu_q = statistics.median(native_cpu), statistics.median(ours_cpu)
        out[name] = {
            "events": ev, "delivered_pairs_logged": len(log_n), "identical_to_native": True,
            "native_s": native, "qnjax_s": ours, "native_median_s": med_n, "qnjax_median_s": med_q,
            "ratio": med_q / med_n, "native_cpu_s": native_cpu, "qnjax_cpu_s": ours_cpu,
            "native_cpu_median_s": cpu_n, "qnjax_cpu_median_s": cpu_q, "ratio_cpu": cpu_q / cpu_n,
        }
        print(f"{name:22s} events {ev:6d}  pairs {len(log_n):5d}  wall: native {med_n:7.3f} s  "
              f"qnjax {med_q:7.3f} s  ratio {med_q / med_n:5.3f}  | cpu ratio {cpu_q / cpu_n:5.3f}  (identical runs)")
    return out


_PROCESS_SNIPPET = """
import time, sys
t0, c0 = time.perf_counter(), time.process_time()
sys.path.insert(0, {here!r})
import bench_sequence as b
{setup}
t1, c1 = time.perf_counter(), time.process_time()
log, ev = b.run_chain(**b.SCENARIOS[{name!r}])
t2, c2 = time.perf_counter(), time.process_time()
print(t1 - t0, t2 - t1, c1 - c0, c2 - c1)
"""


def bench_processes(repeats, name="chain3-purify-swap"):
    here = os.path.dirname(os.path.abspath(__file__))
    setups = {
        "native": "import sequence.topology.router_net_topo",
        "qnjax": "import sequence.topology.router_net_topo\nfrom qnjax.interop import sequence as qs\nqs.use_qnjax()",
    }
    res = {k: [] for k in setups}
    for _ in range(repeats):
        for k, setup in setups.items():
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", _PROCESS_SNIPPET.format(here=here, setup=setup, name=name)],
                               capture_output=True, text=True, check=True)
            total = time.perf_counter() - t0
            imp, run, imp_cpu, run_cpu = map(float, r.stdout.split()[-4:])
            res[k].append({"process_s": total, "imports_s": imp, "run_s": run,
                           "imports_cpu_s": imp_cpu, "run_cpu_s": run_cpu})
    out = {"scenario": name}
    for k, rows in res.items():
        out[k] = {m: statistics.median(r[m] for r in rows) for m in ("process_s", "imports_s", "run_s", "imports_cpu_s", "run_cpu_s")}
    out["ratio_process"] = out["qnjax"]["process_s"] / out["native"]["process_s"]
    out["ratio_run"] = out["qnjax"]["run_s"] / out["native"]["run_s"]
    out["ratio_run_cpu"] = out["qnjax"]["run_cpu_s"] / out["native"]["run_cpu_s"]
    print(f"fresh process ({name}): native {out['native']['process_s']:.3f} s "
          f"(imports {out['native']['imports_s']:.3f}), qnjax {out['qnjax']['process_s']:.3f} s "
          f"(imports {out['qnjax']['imports_s']:.3f}); ratio {out['ratio_process']:.3f} whole process, "
          f"{out['ratio_run']:.3f} run only (cpu {out['ratio_run_cpu']:.3f})")
    return out


def bench_calls():
    import jax.numpy as jnp
    from sequence.components.memory import Memory
    from sequence.entanglement_management.purification import BBPSSW_BDS, DEJMPS_BDS
    from sequence.entanglement_management.swapping import EntanglementSwappingA_BDS

    import qnjax
    from qnjax.interop import _sequence_hooks as _hooks, sequence as qs

    a, b = np.array([0.9, 0.04, 0.03, 0.03]), np.array([0.88, 0.05, 0.04, 0.03])

    class QM:
        states = {1: types.SimpleNamespace(state=a, keys=[1, 2]), 2: types.SimpleNamespace(state=b, keys=[3, 4])}

        def get(self, k):
            return self.states[k]

        @staticmethod
        def get_active_formalism():
            return "bell_diagonal"

        def set(self, keys, st):
            pass

    remote = types.SimpleNamespace(gate_fid=0.99, meas_fid=0.99)
    tl = types.SimpleNamespace(quantum_manager=QM(), get_entity_by_name=lambda n: remote, now=lambda: 2 * 10**12)
    owner = types.SimpleNamespace(timeline=tl, gate_fid=0.99, meas_fid=0.99, name="n")
    p = types.SimpleNamespace(owner=owner, name="p", left_memo=types.SimpleNamespace(qstate_key=1),
                              right_memo=types.SimpleNamespace(qstate_key=2), kept_memo=types.SimpleNamespace(qstate_key=1),
                              meas_memo=types.SimpleNamespace(qstate_key=2), remote_node_name="r", is_twirled=False)
    mem = types.SimpleNamespace(decoherence_errors=[1 / 3] * 3, timeline=tl, last_update_time=10**12,
                                decoherence_rate=2.0, qstate_key=1, name="m")
    qmq = qs.QnjaxBellDiagonalManager()
    qmq.set([1, 2], a)
    tlq = types.SimpleNamespace(now=lambda: 2 * 10**12, quantum_manager=qmq)
    memq = types.SimpleNamespace(decoherence_errors=[1 / 3] * 3, timeline=tlq, last_update_time=10**12,
                                 decoherence_rate=2.0, qstate_key=1, name="m")
    from sequence.kernel.quantum_manager import QuantumManagerBellDiagonal
    qmn = QuantumManagerBellDiagonal()
    ja, jb = jnp.asarray(a), jnp.asarray(b)

    def reset_q():
        memq.last_update_time = 10**12

    def reset_n():
        mem.last_update_time = 10**12

    cases = {
        "swap": (lambda: EntanglementSwappingA_BDS.swapping_res(p), lambda: qs.QnjaxSwappingA.swapping_res(p),
                 lambda: np.asarray(qnjax.swap(ja, jb, 0.01, 0.01))),
        "dejmps": (lambda: DEJMPS_BDS.purification_res(p), lambda: qs.QnjaxDEJMPS.purification_res(p),
                   lambda: [np.asarray(x) for x in qnjax.distill_dejmps(ja, jb)]),
        "bbpssw": (lambda: BBPSSW_BDS.purification_res(p), lambda: qs.QnjaxBBPSSW.purification_res(p),
                   lambda: [np.asarray(x) for x in qnjax.distill_bbpssw(ja, jb)]),
        "memory_decohere": (lambda: (reset_n(), _hooks.ORIGINAL_DECOHERE(mem)),
                            lambda: (reset_q(), qmq.decohere(memq)),
                            lambda: np.asarray(qnjax.pauli_channel(ja, jnp.asarray([0.97, 0.01, 0.01, 0.01])))),
        "manager_set": (lambda: qmn.set([5, 6], [0.9, 0.04, 0.03, 0.03]), lambda: qmq.set([5, 6], [0.9, 0.04, 0.03, 0.03]),
                        None),
    }
    out = {}
    for name, (fn_n, fn_q, fn_j) in cases.items():
        row = {}
        for label, fn in (("sequence_us", fn_n), ("qnjax_numpy_us", fn_q), ("qnjax_jax_single_us", fn_j)):
            if fn is None:
                continue
            fn()
            n, t = timeit.Timer(fn).autorange()
            row[label] = min(timeit.Timer(fn).repeat(3, n)) / n * 1e6
        out[name] = row
        print(f"{name:16s} " + "  ".join(f"{k} {v:8.2f}" for k, v in row.items()))
    return out


def main():
    ap = argparse.ArgumentParser(description="SeQUeNCe native vs qnjax-backed wall time")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--process-repeats", type=int, default=3)
    ap.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_sequence.json"))
    args = ap.parse_args()
    meta = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "sequence": _dist_version("sequence"), "qnjax_commit": _git_head(),
        "numpy": np.__version__, "repeats": args.repeats, "load_avg_at_start": os.getloadavg(),
    }
    print(json.dumps(meta))
    result = {"meta": meta, "runs": bench_runs(args.repeats)}
    result["processes"] = bench_processes(args.process_repeats)
    result["per_call"] = bench_calls()
    result["max_ratio"] = max(r["ratio"] for r in result["runs"].values())
    result["max_ratio_cpu"] = max(r["ratio_cpu"] for r in result["runs"].values())
    print(f"max run-time ratio qnjax/native: wall {result['max_ratio']:.3f}, cpu {result['max_ratio_cpu']:.3f} "
          f"(requirement <= 1.2)")
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {args.json}")


def _git_head():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or None
    except Exception:
        return None


def _dist_version(name):
    from importlib.metadata import version

    try:
        return version(name)
    except Exception:
        return None


if __name__ == "__main__":
    main()
