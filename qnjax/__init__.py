"""qnjax: quantum repeater chains as batched, differentiable JAX arrays.

Bell-diagonal coefficients ``(..., 4)`` in the order ``(I, X, Y, Z) = (Φ+, Ψ+, Ψ−, Φ−)``
are the common currency. qnjax never changes global JAX configuration; enable
``jax_enable_x64`` yourself for float64.
"""

from .states import (
    walsh, unwalsh, werner_to_bell, bell_to_werner, fidelity, werner_fidelity,
    fidelity_to_werner, twirl_to_werner, bell_basis, bell_to_dm, werner_to_dm, dm_to_bell,
    dm_fidelity, is_valid_bell, is_valid_dm,
)
from .channels import (
    pauli_channel, depolarize, depolarize_qubit, dephase, t1t2_pauli_probs, memory_walsh_rates,
    memory_decohere, werner_decay, apply_kraus, pauli_channel_dm, t1t2_kraus, memory_decohere_dm,
    depolarize_dm,
)
from .ops import swap, swap_werner, distill_dejmps, distill_bbpssw, distill_bbpssw_werner
from .keyrate import (
    binary_entropy, shannon_entropy, qber, key_fraction_bb84, key_fraction_bb84_smooth,
    key_fraction_six_state, key_fraction_six_state_smooth, plob_bound, tgw_bound,
)
from .physical import (
    SPEED_OF_LIGHT_FIBER_KM_S, LinkModel, fiber_transmissivity, direct_transmission, double_click,
    single_click, decay_per_step, t_coh_steps, memory_rates_per_step,
)
# circuit level
from .circuits import (
    dm_to_tensor, tensor_to_dm, tensor_product_pairs, apply_gate, apply_two_qubit_gate,
    apply_single_qubit_gate, partial_trace, depolarize_qubits, bit_flip, project_z, rx,
    werner_twirl_dm, swap_dm, distill_bbpssw_dm, distill_dejmps_dm,
)

__version__ = "0.1.0"

__all__ = [
    # states
    "walsh", "unwalsh", "werner_to_bell", "bell_to_werner", "fidelity", "werner_fidelity",
    "fidelity_to_werner", "twirl_to_werner", "bell_basis", "bell_to_dm", "werner_to_dm",
    "dm_to_bell", "dm_fidelity", "is_valid_bell", "is_valid_dm",
    # channels
    "pauli_channel", "depolarize", "depolarize_qubit", "dephase", "t1t2_pauli_probs",
    "memory_walsh_rates", "memory_decohere", "werner_decay", "apply_kraus", "pauli_channel_dm",
    "t1t2_kraus", "memory_decohere_dm", "depolarize_dm",
    # operations
    "swap", "swap_werner", "distill_dejmps", "distill_bbpssw", "distill_bbpssw_werner",
    # key rates
    "binary_entropy", "shannon_entropy", "qber", "key_fraction_bb84", "key_fraction_bb84_smooth",
    "key_fraction_six_state", "key_fraction_six_state_smooth", "plob_bound", "tgw_bound",
    # physical layer
    "SPEED_OF_LIGHT_FIBER_KM_S", "LinkModel", "fiber_transmissivity", "direct_transmission",
    "double_click", "single_click", "decay_per_step", "t_coh_steps", "memory_rates_per_step",
    # circuit level
    "dm_to_tensor", "tensor_to_dm", "tensor_product_pairs", "apply_gate", "apply_two_qubit_gate",
    "apply_single_qubit_gate", "partial_trace", "depolarize_qubits", "bit_flip", "project_z",
    "rx", "werner_twirl_dm", "swap_dm", "distill_bbpssw_dm", "distill_dejmps_dm",
]

# exact delivery engine
from .delivery import DeliveryResult, delivery, delivery_station_rates, bsm_noise_walsh  # noqa: E402
from .protocol import Link, Swap, Distill, levels_to_tree, swap_asap_tree  # noqa: E402

__all__ += ["DeliveryResult", "delivery", "delivery_station_rates", "bsm_noise_walsh",
            "Link", "Swap", "Distill", "levels_to_tree", "swap_asap_tree"]

# monte carlo
from .montecarlo import MonteCarloResult, simulate_nested, simulate_swap_asap  # noqa: E402

__all__ += ["MonteCarloResult", "simulate_nested", "simulate_swap_asap"]

# optimizer
from .optimize import (  # noqa: E402
    optimize, sweep, OptimizeResult, StepProblem, PhysicalScenario, Heralding, Memory, Station,
    StationOverride, Search, load_scenario,
)

__all__ += ["optimize", "sweep", "OptimizeResult", "StepProblem", "PhysicalScenario", "Heralding",
            "Memory", "Station", "StationOverride", "Search", "load_scenario"]
