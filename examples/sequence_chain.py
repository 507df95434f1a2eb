"""An unmodified SeQUeNCe Bell-diagonal program, run natively and on qnjax.

Needs Python >= 3.12 and ``pip install "qnjax[sequence]"``.

``program()`` below is an ordinary SeQUeNCe 1.3 script: it selects the
``"bell_diagonal"`` formalism, generates a linear chain of quantum routers with
SeQUeNCe's configuration generator, asks for end-to-end entanglement with a
``RequestApp`` and runs the timeline. It is run twice:

* natively, and
* inside ``with use_qnjax():`` — the same code, with SeQUeNCe's Bell-diagonal
  manager, swapping, purification and memory decoherence computed by qnjax.

The script prints the wall time of both runs, the number of pairs delivered, and
whether the delivered pairs (time, memory, partner, fidelity) agree. It then shows
the batched side: the delivered Bell-diagonal states as one array, evaluated with
qnjax's vectorised key-rate function in one call.

Run: ``python examples/sequence_chain.py [--routers 4] [--stop 0.3]``
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
from sequence.app.request_app import RequestApp
from sequence.entanglement_management.generation import EntanglementGenerationA, EntanglementGenerationB
from sequence.entanglement_management.purification import PurificationProtocol
from sequence.entanglement_management.swapping import EntanglementSwappingA, EntanglementSwappingB
from sequence.kernel.quantum_manager import QuantumManager
from sequence.topology.router_net_topo import RouterNetTopo
from sequence.utils import nx_converter
from sequence.utils.graphs import build_linear

import qnjax
from qnjax.interop import sequence as qs


class CountingApp(RequestApp):
    """RequestApp that also keeps (time, memory index, partner memory, fidelity) of deliveries
    and the delivered Bell-diagonal state (SeQUeNCe's order, read through the manager)."""

    def __init__(self, node):
        super().__init__(node)
        self.delivered = []
        self.states = []

    def get_memory(self, info):
        res = self.memo_to_reservation.get(info.index)
        if (info.state in ("ENTANGLED", "PURIFIED") and res is not None
                and info.remote_node == res.initiator and info.fidelity >= res.fidelity):
            self.delivered.append((self.node.timeline.now(), info.index, info.remote_memo, float(info.fidelity)))
            self.states.append(np.array(self.node.timeline.quantum_manager.get(info.memory.qstate_key).state))
        super().get_memory(info)


def program(n_routers=4, stop_time=0.3, target_fidelity=0.8):
    """A plain SeQUeNCe Bell-diagonal simulation (nothing qnjax-specific in it)."""
    QuantumManager.set_global_manager_formalism("bell_diagonal")
    PurificationProtocol.set_formalism("bell_diagonal")
    EntanglementSwappingA.set_formalism("bell_diagonal")
    EntanglementSwappingB.set_formalism("bell_diagonal")
    EntanglementGenerationA.set_global_type("single_heralded")
    EntanglementGenerationB.set_global_type("single_heralded")

    template = copy.deepcopy(nx_converter.default_template)
    template["router_template"]["MemoryArray"].update(coherence_time=0.5, fidelity=0.95)
    config, _ = nx_converter.generate_config(
        build_linear(n_routers, length=20.0), cc_delay=0.1, memory_size=4, output_directory=None,
        output_file=None, stop_time=stop_time, formalism="bell_diagonal", node_template=template)
    topo = RouterNetTopo(config)
    tl = topo.get_timeline()
    routers = topo.get_nodes_by_type(RouterNetTopo.QUANTUM_ROUTER)
    apps = {r.name: CountingApp(r) for r in routers}
    apps[routers[0].name].start(routers[-1].name, int(1e10), int(stop_time * 1e12) - 1, 2, target_fidelity)
    tl.init()
    tl.run()
    app = apps[routers[-1].name]
    return app.delivered, app.states, tl


def main():
    ap = argparse.ArgumentParser(description="SeQUeNCe bell_diagonal: native vs qnjax backend")
    ap.add_argument("--routers", type=int, default=4)
    ap.add_argument("--stop", type=float, default=0.3, help="simulated time (s)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    native, _, tl_native = program(args.routers, args.stop)
    t1 = time.perf_counter()
    with qs.use_qnjax():
        ours, states, tl_ours = program(args.routers, args.stop)
    t2 = time.perf_counter()

    print(f"native SeQUeNCe : {len(native):4d} pairs delivered, {t1 - t0:6.2f} s wall, "
          f"manager {type(tl_native.quantum_manager).__name__}")
    print(f"on qnjax        : {len(ours):4d} pairs delivered, {t2 - t1:6.2f} s wall, "
          f"manager {type(tl_ours.quantum_manager).__name__}")
    same = len(native) == len(ours) and all(
        a[:3] == b[:3] and abs(a[3] - b[3]) <= 1e-12 for a, b in zip(native, ours))
    dmax = max((abs(a[3] - b[3]) for a, b in zip(native, ours)), default=0.0)
    print(f"same pairs, times and memories: {same}; max |ΔF| = {dmax:.1e}")
    if native:
        f = np.array([d[3] for d in native])
        print(f"delivered fidelity: mean {f.mean():.6f}, min {f.min():.6f}, max {f.max():.6f}")

    # The batched side: all delivered states as one (N, 4) array in qnjax's order, evaluated
    # in one vectorised call (the same API differentiates and runs on GPU).
    if states:
        lam = qs.to_qnjax_order(np.array(states))
        kf = np.asarray(qnjax.key_fraction_bb84(lam))
        print(f"BB84 key fraction of the {len(kf)} delivered pairs (qnjax, one batched call): "
              f"mean {kf.mean():.4f}, min {kf.min():.4f}, max {kf.max():.4f}")
    keys, _ = tl_ours.quantum_manager.bell_array()  # pairs still held when the run stopped
    print(f"pairs still held by the qnjax manager at the end: {len(keys)}")


if __name__ == "__main__":
    main()
