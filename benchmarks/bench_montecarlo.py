"""Monte Carlo engine throughput: delivered samples per second.

* nested three-level swap chain (8 segments): p_gen 0.1, p_swap 0.5, w0 0.98, t_coh 400,
  cut-offs 17, 32, 56 — target >= 350,000 delivered samples/s on the 2-core CPU,
  >= 50 million/s on an H100;
* swap-asap chains of 4, 8, 16, 32 segments (p_gen 0.1, p_swap 0.9, w0 0.98, t_coh 400,
  cut-off 56), and side by side the same chains simulated with requsim (event-driven, its
  own objects: stations with a memory cut-off and depolarising memories, scheduling sources,
  entanglement-swapping events; failed swaps discard the output pair; after a delivery the
  chain is emptied, as each trajectory of the slotted model starts empty).

Compilation is excluded (a warm-up call with the same shapes runs first) and reported
separately. Wall and process-CPU time are both recorded: on a shared machine the wall
figure depends on the neighbours' load. Run:

    python benchmarks/bench_montecarlo.py [--samples 1000000] [--requsim-seconds 20] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import numpy as np

import jax

jax.config.update("jax_enable_x64", True)

from qnjax.montecarlo import simulate_nested, simulate_swap_asap  # noqa: E402

NESTED = dict(p_gen=0.1, p_swap=0.5, w0=0.98, t_coh=400.0, cutoff=[17, 32, 56])
ASAP = dict(p_gen=0.1, p_swap=0.9, w0=0.98, t_coh=400.0, cutoff=56)


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    jax.block_until_ready(out.mean_time)
    return out, time.perf_counter() - w, time.process_time() - c


def bench_nested(samples: int, chunk_size: int | None, repeats: int):
    kw = dict(NESTED, chunk_size=chunk_size, keep=0)
    _, compile_s, _ = _timed(lambda: simulate_nested("swap,swap,swap", samples=1000, seed=0, **kw))
    best = None
    for r in range(repeats):
        res, wall, cpu = _timed(lambda: simulate_nested("swap,swap,swap", samples=samples, seed=1 + r, **kw))
        if best is None or wall < best[1]:
            best = (res, wall, cpu)
    res, wall, cpu = best
    n = int(res.samples)
    return dict(case="nested swap,swap,swap (8 segments)", samples=n, wall_s=wall, cpu_s=cpu,
                per_s_wall=n / wall, per_s_cpu=n / cpu, first_call_s=compile_s,
                mean_time=float(res.mean_time), mean_time_stderr=float(res.mean_time_stderr),
                mean_werner=float(res.mean_werner))


def bench_asap(segments: int, samples: int):
    kw = dict(ASAP, keep=0)
    _, compile_s, _ = _timed(lambda: simulate_swap_asap(segments + 1, samples=samples, seed=0, **kw))
    res, wall, cpu = _timed(lambda: simulate_swap_asap(segments + 1, samples=samples, seed=1, **kw))
    n = int(res.samples)
    return dict(case=f"swap-asap {segments} segments", segments=segments, samples=n,
                undelivered=int(res.undelivered), wall_s=wall, cpu_s=cpu, per_s_wall=n / wall,
                per_s_cpu=n / cpu, first_call_s=compile_s, mean_time=float(res.mean_time),
                mean_time_stderr=float(res.mean_time_stderr), mean_werner=float(res.mean_werner))


# ---------------------------------------------------------------- requsim, same chain

def requsim_swap_asap(segments: int, seconds: float, seed: int = 1, max_pairs: int = 10**6):
    """The swap-asap chain in requsim; returns (pairs, wall_s, mean_time, mean_werner)."""
    import requsim.libs.matrix as mat
    from requsim.events import EntanglementSwappingEvent, SourceEvent
    from requsim.noise import NoiseChannel
    from requsim.quantum_objects import SchedulingSource, Station
    from requsim.tools.protocol import Protocol
    from requsim.world import World

    p_gen, p_swap, w0, t_coh, cutoff = (ASAP[k] for k in ("p_gen", "p_swap", "w0", "t_coh", "cutoff"))
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    phi = mat.phiplus @ mat.H(mat.phiplus)
    rho0 = w0 * phi + (1 - w0) * np.eye(4) / 4

    def memory(rho, t):  # each qubit depolarises: the pair's w decays as e^{-t / t_coh}
        a = math.exp(-t / (2 * t_coh))
        return a * rho + (1 - a) * np.eye(2) / 2 * np.trace(rho)

    class SwapAsap(Protocol):
        def __init__(self, world, stations, sources):
            super().__init__(world)
            self.stations, self.sources = stations, sources
            self.pending = set()
            self.times, self.werner = [], []
            self.t0 = 0.0

        def setup(self):
            pass

        def _pairs(self, st):
            left = right = None
            for q in st.qubits:
                pair = q.higher_order_object
                if pair is None:
                    continue
                other = pair.qubits[1] if pair.qubits[0] is q else pair.qubits[0]
                if other._info["station"].position < st.position:
                    left = pair
                else:
                    right = pair
            return left, right

        def check(self, message=None):
            if message is not None:
                ev = message.get("event_type")
                if ev == "SourceEvent":
                    self.pending.discard(message["source"])
                elif ev == "EntanglementSwappingEvent" and rng.random() >= p_swap:
                    pair = message["output_pair"]
                    for q in pair.qubits:
                        q.destroy()
                    pair.destroy()
            now = self.world.event_queue.current_time
            busy = {p for ev in self.world.event_queue.queue for p in getattr(ev, "pairs", ())}
            for st in self.stations[1:-1]:
                left, right = self._pairs(st)
                if left is not None and right is not None and left not in busy and right not in busy:
                    self.world.event_queue.add_event(EntanglementSwappingEvent(time=now, pairs=[left, right], station=st))
                    busy.update((left, right))
            a, b = self.stations[0], self.stations[-1]
            for q in list(a.qubits):
                pair = q.higher_order_object
                if pair is not None and pair.is_between_stations(a, b) and pair not in busy:
                    pair.update_time()
                    f = float(np.real(mat.H(mat.phiplus) @ pair.state @ mat.phiplus)[0, 0])
                    self.times.append(now - self.t0)
                    self.werner.append((4 * f - 1) / 3)
                    # the next trajectory starts from an empty chain, as in the slotted model:
                    # drop every pair and every scheduled event (sources, swaps, cut-offs)
                    self.world.event_queue.queue.clear()
                    for st in self.stations:
                        for x in list(st.qubits):
                            p = x.higher_order_object
                            if p is not None:
                                for y in p.qubits:
                                    y.destroy()
                                p.destroy()
                            else:
                                x.destroy()
                    self.pending.clear()
                    self.t0 = now
                    busy = set()
                    break
            for i, src in enumerate(self.sources):
                l_st, r_st = self.stations[i], self.stations[i + 1]
                if src in self.pending or self._pairs(l_st)[1] is not None or self._pairs(r_st)[0] is not None:
                    continue
                src.schedule_event()
                self.pending.add(src)

    world = World()
    stations = [Station(world=world, position=float(i), memory_noise=NoiseChannel(n_qubits=1, channel_function=memory),
                        memory_cutoff_time=float(cutoff)) for i in range(segments + 1)]
    sources = [SchedulingSource(world=world, position=i + 0.5, target_stations=[stations[i], stations[i + 1]],
                                time_distribution=lambda source: float(rng.geometric(p_gen)),
                                state_generation=lambda source: rho0) for i in range(segments)]
    proto = SwapAsap(world, stations, sources)
    proto.setup()
    w0_, message = time.perf_counter(), None
    while time.perf_counter() - w0_ < seconds and len(proto.times) < max_pairs:
        proto.check(message=message)
        message = world.event_queue.resolve_next_event()
    wall = time.perf_counter() - w0_
    n = len(proto.times)
    return n, wall, (float(np.mean(proto.times)) if n else math.nan), (float(np.mean(proto.werner)) if n else math.nan)


def main():
    ap = argparse.ArgumentParser(description="Monte Carlo engine throughput (delivered samples/s).")
    ap.add_argument("--samples", type=int, default=1_000_000, help="nested-chain samples per timed run")
    ap.add_argument("--asap-samples", type=int, default=200_000,
                    help="swap-asap samples for the 4-segment chain (scaled by 4/segments for longer ones)")
    ap.add_argument("--segments", type=str, default="4,8,16,32")
    ap.add_argument("--chunk-size", type=int, default=None, help="nested: attempts per node and chunk")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--requsim-seconds", type=float, default=15.0, help="wall budget per requsim chain (0: skip)")
    ap.add_argument("--out", type=str, default=None, help="write the results as JSON here")
    args = ap.parse_args()

    dev = jax.devices()[0]
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), backend=dev.platform,
                device=str(getattr(dev, "device_kind", dev)), cpus=os.cpu_count(),
                machine=platform.processor() or platform.machine(), jax=jax.__version__,
                dtype="float64", load_avg=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    rows = [bench_nested(args.samples, args.chunk_size, args.repeats)]
    print(f"{rows[0]['case']}: {rows[0]['per_s_wall']:,.0f}/s wall, {rows[0]['per_s_cpu']:,.0f}/s per CPU-second "
          f"(E[T] = {rows[0]['mean_time']:.2f} ± {rows[0]['mean_time_stderr']:.2f})", flush=True)
    for seg in [int(s) for s in args.segments.split(",") if s]:
        row = bench_asap(seg, max(args.asap_samples * 4 // seg, 2_000))
        if args.requsim_seconds > 0:
            try:
                n, wall, mt, mw = requsim_swap_asap(seg, args.requsim_seconds)
                row.update(requsim_pairs=n, requsim_wall_s=wall, requsim_per_s=n / wall,
                           requsim_mean_time=mt, requsim_mean_werner=mw,
                           ratio=row["per_s_wall"] / (n / wall) if n else math.inf)
            except ImportError:
                row.update(requsim_per_s=None, ratio=None)
        rows.append(row)
        rq = f", requsim {row['requsim_per_s']:,.1f}/s, ratio {row['ratio']:,.0f}x" if row.get("requsim_per_s") else ""
        print(f"{row['case']}: {row['per_s_wall']:,.0f}/s wall (E[T] {row['mean_time']:.2f}){rq}", flush=True)

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"qnjax Monte Carlo throughput ({meta['backend']}: {meta['device']}, {meta['cpus']} CPUs, {meta['date']})")
    for c in ("case", "delivered/s (wall)", "per CPU-s", "first call s", "E[T]", "mean w",
              "requsim pairs/s", "requsim E[T]", "ratio"):
        t.add_column(c, justify="left" if c == "case" else "right")
    for r in rows:
        t.add_row(r["case"], f"{r['per_s_wall']:,.0f}", f"{r['per_s_cpu']:,.0f}", f"{r['first_call_s']:.1f}",
                  f"{r['mean_time']:.2f}", f"{r['mean_werner']:.4f}",
                  f"{r['requsim_per_s']:,.1f}" if r.get("requsim_per_s") else "",
                  f"{r['requsim_mean_time']:.2f}" if r.get("requsim_per_s") else "",
                  f"{r['ratio']:,.0f}x" if r.get("ratio") else "")
    Console(width=170).print(t)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(meta=meta, nested_params=NESTED, asap_params=ASAP, rows=rows), f, indent=2)


if __name__ == "__main__":
    main()
