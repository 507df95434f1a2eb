"""Test-session setup: float64 is available; float32 tests pass float32 inputs explicitly.

The library itself never flips global JAX configuration; the tests enable x64 once
so both precisions can be exercised in one session.
"""

import gc
import os

import jax
import pytest

jax.config.update("jax_enable_x64", True)

# The CLI turns on JAX's persistent compilation cache for its own process (qnjax.cache); tests
# run CLI commands in-process, where that would switch it on for every later test and write to
# the user's cache directory. Tests that exercise the cache set QNJAX_CACHE_DIR themselves.
os.environ["QNJAX_CACHE_DIR"] = ""


def _map_count_and_limit():
    """Memory mappings of this process and the kernel's limit (``None`` off Linux)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            count = sum(1 for _ in f)
        with open("/proc/sys/vm/max_map_count") as f:
            return count, int(f.read())
    except (OSError, ValueError):
        return None


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """Drop JAX's compiled programs when they hold a third of the allowed memory mappings.

    Each program compiled on the CPU keeps about 18 memory mappings while it is cached; the
    suite compiles thousands (the CLI fuzz module alone over a thousand), and past the kernel's
    ``vm.max_map_count`` (65530 by default) the next compilation dies with a segmentation
    fault inside XLA. Clearing JAX's caches then keeps the process far below the limit; a
    later test that needs a program recompiles it.
    """
    yield
    maps = _map_count_and_limit()
    if maps is not None and maps[0] > maps[1] // 3:
        jax.clear_caches()
        gc.collect()
