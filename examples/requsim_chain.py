"""A requsim repeater (A — C — B) with qnjax as its state physics.

Needs ``pip install "qnjax[requsim]"``. Each link's source sits at the middle station
C and delivers Φ+ pairs; all memories dephase; each link first distils two pairs with
DEJMPS, then C swaps the two purified pairs with a noisy Bell-state measurement.

The same protocol runs twice with the same random seed:

* ``requsim`` — requsim's own pieces: the dephasing memory of its examples
  (``z_noise_channel``), its ``"dejmps"`` purification and its BSM with a
  two-qubit depolarising ``channel_before``;
* ``qnjax``   — :mod:`qnjax.interop.requsim`: ``dephasing_channel``, ``dejmps()``,
  ``bsm_noise_model()``.

and the script prints the delivered pairs (time, fidelity) of both and their largest
difference. Run: ``python examples/requsim_chain.py [--pairs 200]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import jax

jax.config.update("jax_enable_x64", True)  # requsim works in complex128; compare at float64

import requsim.libs.matrix as mat  # noqa: E402
from requsim.events import EntanglementPurificationEvent, EntanglementSwappingEvent  # noqa: E402
from requsim.libs.aux_functions import distance  # noqa: E402
from requsim.noise import NoiseChannel, NoiseModel  # noqa: E402
from requsim.quantum_objects import SchedulingSource, Station  # noqa: E402
from requsim.tools.noise_channels import z_noise_channel  # noqa: E402
from requsim.tools.protocol import TwoLinkProtocol  # noqa: E402
from requsim.world import World  # noqa: E402

from qnjax.interop import requsim as qr  # noqa: E402

PARAMS = {
    "length": 40e3,            # A—B distance (m)
    "p_link": 0.8,             # link efficiency at zero distance
    "t_dephasing": 50e-3,      # memory dephasing time (s)
    "lambda_bsm": 0.99,        # BSM ideality: depolarising 1 − λ on the measured qubits
    "speed": 2e8,              # signal speed in fibre (m/s)
    "l_att": 22e3,             # attenuation length (m)
}


def requsim_dephasing(t_dephasing):
    """requsim's dephasing memory (as in its examples): Z flip with (1 − e^{−t/T})/2."""
    def f(rho, t):
        return z_noise_channel(rho=rho, epsilon=(1 - np.exp(-t / t_dephasing)) / 2)
    return NoiseChannel(n_qubits=1, channel_function=f)


def requsim_bsm(lambda_bsm):
    """requsim's ideal BSM preceded by two-qubit depolarising of the measured qubits."""
    def f(rho):
        return lambda_bsm * rho + (1 - lambda_bsm) * mat.I(4) / 4 * np.trace(rho)
    return NoiseModel(channel_before=NoiseChannel(n_qubits=2, channel_function=f))


class PurifyThenSwap(TwoLinkProtocol):
    """Per link: keep up to two pairs, distil two raw pairs; swap two purified pairs."""

    def __init__(self, world, communication_speed, purification):
        super().__init__(world, communication_speed)
        self.purification = purification
        self.purified = set()

    def _pending(self):
        busy = set()
        for ev in self.world.event_queue.queue:
            busy.update(getattr(ev, "pairs", ()))
        return busy

    def _link(self, pairs, scheduled, source, busy, comm_time):
        if len(pairs) + len(scheduled) < 2:
            source.schedule_event()
        raw = [p for p in pairs if p not in self.purified and not p.is_blocked and p not in busy]
        if len(raw) >= 2:
            self.world.event_queue.add_event(EntanglementPurificationEvent(
                time=self.world.event_queue.current_time, pairs=raw[:2],
                communication_time=comm_time, protocol=self.purification))

    def check(self, message=None):
        if message and message.get("is_successful"):
            self.purified.add(message["output_pair"])
        busy = self._pending()
        comm = distance(self.station_A, self.station_central) / self.communication_speed
        self._link(self._get_left_pairs(), self._left_pairs_scheduled(), self.source_A, busy, comm)
        self._link(self._get_right_pairs(), self._right_pairs_scheduled(), self.source_B, busy, comm)
        ready_l = [p for p in self._get_left_pairs() if p in self.purified and not p.is_blocked and p not in busy]
        ready_r = [p for p in self._get_right_pairs() if p in self.purified and not p.is_blocked and p not in busy]
        if ready_l and ready_r:
            self.world.event_queue.add_event(EntanglementSwappingEvent(
                time=self.world.event_queue.current_time, pairs=[ready_l[0], ready_r[0]],
                station=self.station_central))
        for pair in self._get_long_range_pairs():
            self._eval_pair(pair)
            for qubit in pair.qubits:
                qubit.destroy()
            pair.destroy()


def run(variant: str, n_pairs: int = 100, seed: int = 7, params=PARAMS):
    """Run the repeater until ``n_pairs`` long-distance pairs; returns (times, states)."""
    if variant == "requsim":
        memory, purification, bsm = requsim_dephasing(params["t_dephasing"]), "dejmps", requsim_bsm(params["lambda_bsm"])
    elif variant == "qnjax":
        memory = qr.dephasing_channel(params["t_dephasing"])
        purification = qr.dejmps()
        bsm = qr.bsm_noise_model(gate_depolarizing=1 - params["lambda_bsm"])
    else:
        raise ValueError(f"variant must be 'requsim' or 'qnjax'; got {variant!r}")
    np.random.seed(seed)
    c, length = params["speed"], params["length"]

    def state_generation(source):
        state = mat.phiplus @ mat.H(mat.phiplus)
        comm = max(distance(source, s) for s in source.target_stations)
        for idx, station in enumerate(source.target_stations):
            if station.memory_noise is not None:
                state = station.memory_noise.apply_to(rho=state, qubit_indices=[idx], t=2 * comm / c)
        return state

    def time_distribution(source):
        comm = max(distance(source, s) for s in source.target_stations)
        eta = params["p_link"] * np.exp(-comm / params["l_att"])
        return np.random.geometric(eta) * 2 * comm / c

    world = World()
    a = Station(world=world, position=0, memory_noise=memory)
    mid = Station(world=world, position=length / 2, memory_noise=memory, BSM_noise_model=bsm)
    b = Station(world=world, position=length, memory_noise=memory)
    SchedulingSource(world=world, position=mid.position, target_stations=[a, mid],
                     time_distribution=time_distribution, state_generation=state_generation)
    SchedulingSource(world=world, position=mid.position, target_stations=[mid, b],
                     time_distribution=time_distribution, state_generation=state_generation)
    protocol = PurifyThenSwap(world, communication_speed=c, purification=purification)
    protocol.setup()
    message = None
    while len(protocol.time_list) < n_pairs:
        protocol.check(message=message)
        message = world.event_queue.resolve_next_event()
    return np.array(protocol.time_list), np.array(protocol.state_list)


def fidelity(states):
    phi = mat.phiplus.ravel()
    return np.real(np.einsum("i,nij,j->n", phi.conj(), states, phi))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    out = {}
    for variant in ("requsim", "qnjax"):
        t0 = time.perf_counter()
        out[variant] = run(variant, args.pairs, args.seed)
        print(f"{variant:8s} {args.pairs} pairs in {time.perf_counter() - t0:6.2f} s wall; "
              f"mean fidelity {fidelity(out[variant][1]).mean():.6f}; "
              f"mean delivery time {out[variant][0].mean() * 1e3:.3f} ms")
    (t_r, s_r), (t_q, s_q) = out["requsim"], out["qnjax"]
    print(f"same delivery times: {np.array_equal(t_r, t_q)}; "
          f"max |Δρ| = {np.max(np.abs(s_r - s_q)):.2e}; "
          f"max |ΔF| = {np.max(np.abs(fidelity(s_r) - fidelity(s_q))):.2e}")
    print("first pairs (time ms, F requsim, F qnjax):")
    for i in range(min(5, len(t_r))):
        print(f"  {t_r[i] * 1e3:9.4f}  {fidelity(s_r)[i]:.12f}  {fidelity(s_q)[i]:.12f}")


if __name__ == "__main__":
    main()
