"""Test-session setup: float64 is available; float32 tests pass float32 inputs explicitly.

The library itself never flips global JAX configuration; the tests enable x64 once
so both precisions can be exercised in one session.
"""

import jax

jax.config.update("jax_enable_x64", True)
