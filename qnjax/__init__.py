"""qnjax: quantum repeater chains as batched, differentiable JAX arrays.

Bell-diagonal coefficients ``(..., 4)`` in the order ``(I, X, Y, Z) = (Φ+, Ψ+, Ψ−, Φ−)``
are the common currency. qnjax never changes global JAX configuration; enable
``jax_enable_x64`` yourself for float64.

Public names are loaded on first use (PEP 562), so ``import qnjax`` is cheap and
simulator adapters that only need the NumPy path (``qnjax.interop``) never import JAX.

Which name answers which question about designs:

* :func:`optimize` — the best design for one problem (a :class:`StepProblem` or one
  :class:`PhysicalScenario` at its distance).
* :func:`sweep` — the best design at each of many distances (optimizes each; scale-out with
  ``out=`` / ``group=``); the CLI's ``qnjax sweep``.
* :func:`sweep_designs` — *evaluates* (does not optimize) a grid of given designs
  (:func:`design_grid`), spread over devices and processes.
"""

from __future__ import annotations

import importlib

from . import _aliases

__version__ = "0.1.0"

# module -> public names it provides at top level
_EXPORTS: dict[str, tuple[str, ...]] = {
    # state algebra
    "states": (
        "walsh", "unwalsh", "werner_to_bell", "bell_to_werner", "fidelity", "werner_fidelity",
        "fidelity_to_werner", "twirl_to_werner", "bell_basis", "bell_to_dm", "werner_to_dm", "dm_to_bell",
        "dm_fidelity", "is_valid_bell", "is_valid_dm",
    ),
    "channels": (
        "pauli_channel", "depolarize", "depolarize_qubit", "dephase", "t1t2_pauli_probs",
        "memory_walsh_rates", "memory_decohere", "werner_decay", "apply_kraus", "pauli_channel_dm",
        "t1t2_kraus", "memory_decohere_dm", "depolarize_dm",
    ),
    "ops": ("swap", "swap_werner", "distill_dejmps", "distill_bbpssw", "distill_bbpssw_werner"),
    "keyrate": (
        "binary_entropy", "shannon_entropy", "qber", "key_fraction_bb84", "key_fraction_bb84_smooth",
        "key_fraction_six_state", "key_fraction_six_state_smooth", "plob_bound", "tgw_bound",
    ),
    "physical": (
        "SPEED_OF_LIGHT_FIBER_KM_S", "LinkModel", "fiber_transmissivity", "direct_transmission",
        "double_click", "single_click", "dark_count_probability", "phase_coherence",
        "multiplex", "decay_per_step", "t_coh_steps", "memory_rates_per_step",
    ),
    # circuit level
    "circuits": (
        "dm_to_tensor", "tensor_to_dm", "tensor_product_pairs", "apply_gate", "apply_two_qubit_gate",
        "apply_single_qubit_gate", "partial_trace", "depolarize_qubits", "bit_flip", "project_z", "rx",
        "werner_twirl_dm", "swap_dm", "distill_bbpssw_dm", "distill_dejmps_dm",
    ),
    # protocols and the exact delivery engine
    "protocol": ("Link", "Swap", "Distill", "levels_to_tree", "swap_asap_tree"),
    "chain": ("Chain",),
    "exact": ("DeliveryResult", "delivery", "delivery_station_rates", "bsm_noise_walsh"),
    # monte carlo
    "montecarlo": ("MonteCarloResult", "simulate_nested", "simulate_swap_asap"),
    # design optimizer (``qnjax.optimize`` is the function; the package is ``qnjax.design``)
    "design": (
        "optimize", "sweep", "OptimizeResult", "SweepResult", "SweepRow", "StepProblem", "PhysicalScenario",
        "Heralding", "Memory", "Station", "StationOverride", "Search", "Multiplexing", "load_scenario",
    ),
    # scale-out
    "distributed": ("sweep_designs", "design_grid", "init_distributed"),
    # provenance and exports
    "_provenance": ("provenance", "scenario_hash"),
    "export": ("write_csv", "read_csv", "to_rows", "to_columns", "to_pandas"),
    # hardware sizing and network planning
    "sizing": ("sensitivity", "requirements", "SensitivityResult", "RequirementsResult",
                     "TargetUnreachable"),
    "network": ("plan", "load_network", "NetworkPlan", "DemandPlan", "NetworkHardware", "NetworkError"),
}

# ``qnjax.optimize`` was the optimizer package: the old import paths stay as deprecated aliases
# of ``qnjax.design`` (same module objects; nothing imported until used)
_aliases.install()

_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name: str):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'qnjax' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value  # cache: later look-ups are plain attribute reads
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
