"""SeQUeNCe scenarios shared by the interop tests: linear router chains built with
SeQUeNCe's own configuration generator (``generate_config``/``build_linear``),
``RouterNetTopo`` and a ``RequestApp`` that records what reaches the end nodes."""

from __future__ import annotations

import copy

from sequence.app.request_app import RequestApp
from sequence.entanglement_management.generation import EntanglementGenerationA, EntanglementGenerationB
from sequence.entanglement_management.purification import PurificationProtocol
from sequence.entanglement_management.swapping import EntanglementSwappingA, EntanglementSwappingB
from sequence.kernel.quantum_manager import QuantumManager
from sequence.topology.router_net_topo import RouterNetTopo
from sequence.utils import nx_converter
from sequence.utils.graphs import build_linear


class RecordingApp(RequestApp):
    """RequestApp that logs every entangled/purified memory of the reservation it sees."""

    def __init__(self, node):
        super().__init__(node)
        self.log = []

    def get_memory(self, info):
        if info.state in ("ENTANGLED", "PURIFIED") and info.index in self.memo_to_reservation:
            self.log.append((self.node.timeline.now(), info.index, info.state, info.remote_node,
                             info.remote_memo, float(info.fidelity)))
        super().get_memory(info)


def select(formalism="bell_diagonal", purification="bell_diagonal"):
    """Set SeQUeNCe's global selectors the way a Bell-diagonal program does."""
    QuantumManager.set_global_manager_formalism(formalism)
    PurificationProtocol.set_formalism(purification)
    EntanglementSwappingA.set_formalism(formalism)
    EntanglementSwappingB.set_formalism(formalism)
    EntanglementGenerationA.set_global_type("single_heralded")
    EntanglementGenerationB.set_global_type("single_heralded")


def run_chain(n_routers, target_fidelity, *, formalism="bell_diagonal", purification="bell_diagonal",
              raw_fidelity=0.9, coherence_time=0.5, memory_size=4, stop_time=0.3, length_km=20.0,
              gate_fid=1.0, meas_fid=1.0, decoherence_errors=None):
    """Build and run a linear chain; returns a dict with the end nodes' logs and counters."""
    select(formalism, purification)
    tpl = copy.deepcopy(nx_converter.default_template)
    mem = tpl["router_template"]["MemoryArray"]
    mem["coherence_time"] = coherence_time
    mem["fidelity"] = raw_fidelity
    if decoherence_errors is not None:
        mem["decoherence_errors"] = list(decoherence_errors)
    cfg, _ = nx_converter.generate_config(
        build_linear(n_routers, length=length_km), cc_delay=0.1, memory_size=memory_size,
        output_directory=None, output_file=None, stop_time=stop_time, formalism=formalism,
        node_template=tpl)
    topo = RouterNetTopo(cfg)
    tl = topo.get_timeline()
    routers = topo.get_nodes_by_type(RouterNetTopo.QUANTUM_ROUTER)
    for r in routers:
        r.gate_fid, r.meas_fid = gate_fid, meas_fid
    apps = {r.name: RecordingApp(r) for r in routers}
    src, dst = routers[0].name, routers[-1].name
    per_link = memory_size if n_routers == 2 else memory_size // 2
    apps[src].start(dst, int(1e10), int(stop_time * 1e12) - 1, per_link, target_fidelity)
    tl.init()
    tl.run()
    memories = []
    for r in routers:
        for m in r.get_components_by_type("MemoryArray")[0]:
            memories.append((m.name, m.entangled_memory["node_id"], m.entangled_memory["memo_id"],
                             float(m.fidelity)))
    return {
        "src": apps[src].log, "dst": apps[dst].log, "events": tl.run_counter, "time": tl.now(),
        "memories": memories, "manager": type(tl.quantum_manager),
    }
