"""The simulator adapters import no JAX (``import qnjax`` is lazy; the adapters run the shared
formulas with NumPy), and the SeQUeNCe-order physics works without SeQUeNCe installed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest


def _modules_loaded(imports: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in imports) + \
        "print(' '.join(m for m in ('jax', 'jaxlib', 'equinox', 'optax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_qnjax_and_adapter_physics_load_no_jax():
    assert _modules_loaded(["qnjax", "qnjax.interop", "qnjax.interop._bds"]) == set()


@pytest.mark.parametrize("adapter, simulator", [("sequence", "sequence"), ("requsim", "requsim")])
def test_adapters_load_no_jax(adapter, simulator):
    if importlib.util.find_spec(simulator) is None:
        pytest.skip(f"{simulator} is not installed (.ci/interop.sh installs it)")
    assert _modules_loaded(["qnjax", f"qnjax.interop.{adapter}"]) == set()


def test_sequence_order_physics_without_the_simulator():
    import jax.numpy as jnp

    import qnjax
    from qnjax.interop import _bds

    rng = np.random.default_rng(3)
    a, b = rng.dirichlet(np.ones(4), 2)  # qnjax order
    sq = _bds.to_sequence_order(np.stack([a, b]))
    np.testing.assert_array_equal(_bds.to_qnjax_order(sq), np.stack([a, b]))
    out = _bds.bds_swap(sq[0], sq[1], gate_fid=0.97, meas_fid=0.99, twirled=False)
    want = qnjax.swap(jnp.asarray(a), jnp.asarray(b), gate_depolarizing=0.03, measurement_error=0.01)
    np.testing.assert_allclose(_bds.to_qnjax_order(out), np.asarray(want, np.float64), rtol=1e-6, atol=1e-7)
