"""Test-session setup: float64 is available; float32 tests pass float32 inputs explicitly.

The library itself never flips global JAX configuration; the tests enable x64 once
so both precisions can be exercised in one session.
"""

import os

import jax

jax.config.update("jax_enable_x64", True)

# The CLI turns on JAX's persistent compilation cache for its own process (qnjax.cache); tests
# run CLI commands in-process, where that would switch it on for every later test and write to
# the user's cache directory. Tests that exercise the cache set QNJAX_CACHE_DIR themselves.
os.environ["QNJAX_CACHE_DIR"] = ""
