"""Batched Monte Carlo engine: nested and swap-asap policies as JAX arrays.

* :func:`simulate_nested` — the exact engine's model (swap/distill trees, cut-offs),
  sampled by direct geometric waiting times and vectorised attempt streams.
* :func:`simulate_swap_asap` — time-slotted swap-as-soon-as-possible on a linear chain
  of any number of nodes (Iñesta, Vardoyan, Scavuzzo & Wehner, npj Quantum Inf. 2023),
  heterogeneous segments and nodes.

Both stream in fixed-size chunks (bounded memory), report trajectories stopped at a slot
cap instead of dropping them, and are reproducible from a seed.
"""

from ._common import MonteCarloResult
from .nested import simulate_nested
from .swap_asap import simulate_swap_asap

__all__ = ["MonteCarloResult", "simulate_nested", "simulate_swap_asap"]
