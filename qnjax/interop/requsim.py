"""qnjax-backed noise channels, purification protocols and Bell-state measurements for
requsim (``pip install "qnjax[requsim]"``; https://github.com/jwallnoefer/requsim).

requsim keeps every pair as a ``4 x 4`` density matrix and lets the user plug in

* noise channels — :class:`requsim.noise.NoiseChannel` ``(n_qubits, f)``; a
  station's ``memory_noise`` is a one-qubit channel ``f(rho, t)`` that requsim
  applies to ``2 x 2`` blocks (not necessarily density matrices, so the maps here
  are written linearly, element-wise);
* purification protocols for :class:`requsim.events.EntanglementPurificationEvent`
  — ``rho -> (p_success, rho_out)`` with ``rho`` the ``16 x 16`` product of the two
  pairs' states (qubits ``pair0.A, pair0.B, pair1.A, pair1.B``);
* Bell-state measurements — a station's :class:`requsim.noise.NoiseModel`, whose
  ``map_replace`` receives the ``16 x 16`` state ordered ``(A, B1, B2, C)``.

Memory channels run the shared NumPy-capable formulas of :mod:`qnjax.interop._xp`
(no JAX dispatch per call). Purification and the BSM are qnjax's circuit-level
operations (:func:`qnjax.circuits.distill_dejmps_dm`, :func:`~qnjax.circuits.distill_bbpssw_dm`,
:func:`~qnjax.circuits.swap_dm`), compiled once with ``jax.jit``; enable
``jax_enable_x64`` for float64 results (requsim itself works in complex128).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from . import _xp
from .. import _formulas


def _ns(rho):
    """NumPy namespace for ``rho``: the one-state fast path for a single 2 x 2 block."""
    return _xp.one_state if rho.ndim == 2 else np

try:  # the simulator is an optional dependency
    from requsim.noise import NoiseChannel, NoiseModel
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("qnjax.interop.requsim needs requsim: pip install 'qnjax[requsim]'") from exc

__all__ = [
    "t1t2_channel", "dephasing_channel", "depolarizing_channel", "pauli_channel",
    "dejmps", "bbpssw", "bsm_noise_model", "split_pairs",
]


def _check_prob(x, name):
    if not (0.0 <= float(x) <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1]; got {x!r}")
    return float(x)


def _check_time(x, name):
    if not float(x) > 0:
        raise ValueError(f"{name} must be a positive time (or math.inf); got {x!r}")
    return float(x)


# ----------------------------------------------------------------- memory channels

def t1t2_channel(t1: float, t2: float) -> NoiseChannel:
    """Memory noise ``f(rho, t)``: amplitude damping with ``T1`` and dephasing to
    coherence ``exp(−t/T2)`` for a qubit idling ``t`` (same time unit as requsim's
    clock, usually seconds). ``T2 <= 2 T1``; ``t1 = math.inf`` gives pure dephasing.
    Physics: :func:`qnjax._formulas.t1t2_block` (= :func:`qnjax.memory_decohere_dm`)."""
    t1, t2 = _check_time(t1, "t1"), _check_time(t2, "t2")
    if t2 > 2 * t1:
        raise ValueError(f"t2 must be <= 2 t1 for a valid channel; got t1={t1!r}, t2={t2!r}")

    def channel(rho, t):
        rho = np.asarray(rho)
        return _formulas.t1t2_block(rho, float(t), t1, t2, _ns(rho))

    return NoiseChannel(n_qubits=1, channel_function=channel)


def dephasing_channel(dephasing_time: float) -> NoiseChannel:
    """Memory noise ``f(rho, t)``: a ``Z`` flip with probability ``(1 − exp(−t/T_dp))/2``
    (the dephasing memory of requsim's examples, Luong et al., Appl. Phys. B 122, 96 (2016))."""
    tdp = _check_time(dephasing_time, "dephasing_time")

    def channel(rho, t):
        p = (1 - math.exp(-float(t) / tdp)) / 2
        rho = np.asarray(rho)
        return _xp.pauli_block(rho, np.array([1 - p, 0.0, 0.0, p]), _ns(rho))

    return NoiseChannel(n_qubits=1, channel_function=channel)


def depolarizing_channel(depolarizing_time: float) -> NoiseChannel:
    """Memory noise ``f(rho, t)``: ``α ρ + (1 − α) tr(ρ) 1/2`` with ``α = exp(−t/T_dep)``
    (requsim's ``w_noise_channel`` with a time-dependent ``α``)."""
    tdep = _check_time(depolarizing_time, "depolarizing_time")

    def channel(rho, t):
        q = (1 - math.exp(-float(t) / tdep)) / 4
        rho = np.asarray(rho)
        return _xp.pauli_block(rho, np.array([1 - 3 * q, q, q, q]), _ns(rho))

    return NoiseChannel(n_qubits=1, channel_function=channel)


def pauli_channel(p) -> NoiseChannel:
    """Static one-qubit Pauli channel ``f(rho) = Σ_k p_k σ_k ρ σ_k``, ``p = (p_I, p_X, p_Y, p_Z)``
    (e.g. a station's ``creation_noise_channel``)."""
    p = np.asarray(p, dtype=float)
    if p.shape != (4,) or np.any(p < 0) or abs(p.sum() - 1) > 1e-9:
        raise ValueError(f"p must be 4 probabilities (p_I, p_X, p_Y, p_Z) summing to 1; got {p!r}")

    def channel(rho):
        rho = np.asarray(rho)
        return _xp.pauli_block(rho, p, _ns(rho))

    return NoiseChannel(n_qubits=1, channel_function=channel)


# ----------------------------------------------------------------- pairs out of requsim's states

def split_pairs(rho, atol: float = 1e-10):
    """Split a ``16 x 16`` two-pair state into its two ``4 x 4`` pair states.

    requsim hands purification protocols and BSMs the tensor product of the pairs'
    states; this returns the two partial traces and raises ``ValueError`` if ``rho``
    is not (to ``atol``) their product, since the circuit operations act on pairs."""
    rho = np.asarray(rho)
    if rho.shape != (16, 16):
        raise ValueError(f"rho must be a 16 x 16 two-pair density matrix; got shape {rho.shape}")
    r = rho.reshape(4, 4, 4, 4)
    ra = np.einsum("ibjb->ij", r)
    rb = np.einsum("aiaj->ij", r)
    tr = np.trace(ra).real
    if not tr > 0:
        raise ValueError("rho has zero trace")
    rb = rb / tr
    if np.max(np.abs(np.kron(ra, rb) - rho)) > atol:
        raise ValueError("rho is not a product of two pair states; the qnjax circuits act on pairs")
    return ra, rb


@lru_cache(maxsize=None)
def _jitted(name):
    import jax

    from .. import circuits

    return jax.jit(getattr(circuits, name))


def _distill(name, rho, cnot_depolarizing, measurement_error):
    ra, rb = split_pairs(rho)
    p, out = _jitted(name)(ra, rb, cnot_depolarizing, measurement_error)
    return float(p), np.asarray(out, dtype=np.complex128)


def dejmps(cnot_depolarizing: float = 0.0, measurement_error: float = 0.0):
    """A requsim purification protocol ``rho -> (p_success, rho_out)``: DEJMPS at circuit
    level (:func:`qnjax.circuits.distill_dejmps_dm`) with each bilocal CNOT followed by
    two-qubit depolarising ``cnot_depolarizing`` and read-out flips ``measurement_error``.
    With the defaults it equals requsim's own ``"dejmps"`` protocol.
    Use as ``EntanglementPurificationEvent(..., protocol=dejmps(...))``."""
    return _purification("dejmps", cnot_depolarizing, measurement_error)


def bbpssw(cnot_depolarizing: float = 0.0, measurement_error: float = 0.0):
    """Like :func:`dejmps` for BBPSSW (:func:`qnjax.circuits.distill_bbpssw_dm`): inputs and
    output are Werner-twirled."""
    return _purification("bbpssw", cnot_depolarizing, measurement_error)


def _purification(name: str, cnot_depolarizing: float, measurement_error: float):
    """The callable ``rho -> (p_success, rho_out)`` for circuit ``distill_<name>_dm``."""
    g = _check_prob(cnot_depolarizing, "cnot_depolarizing")
    e = _check_prob(measurement_error, "measurement_error")

    def protocol(rho):
        return _distill(f"distill_{name}_dm", rho, g, e)

    protocol.__qualname__ = protocol.__name__ = f"qnjax_{name}"
    return protocol


# ----------------------------------------------------------------- Bell-state measurement

def bsm_noise_model(gate_depolarizing: float = 0.0, measurement_error: float = 0.0) -> NoiseModel:
    """A station's ``BSM_noise_model`` whose ``map_replace`` is qnjax's circuit swap
    (:func:`qnjax.circuits.swap_dm`): with probability ``gate_depolarizing`` the two
    measured qubits are depolarised, each outcome bit flips with probability
    ``measurement_error``, the outcome is corrected by a Pauli on the far qubit and the
    output is averaged over outcomes (Briegel, Dür, Cirac & Zoller, PRL 81, 5932
    (1998)). On Bell-diagonal inputs this equals requsim's ideal BSM (post-selecting Φ+)
    preceded by two-qubit depolarising ``1 − λ_BSM = gate_depolarizing``, and
    :func:`qnjax.swap`. On other inputs (e.g. after amplitude damping) the two differ:
    requsim's default keeps the state conditioned on the Φ+ outcome, this map the
    corrected state averaged over the four outcomes (what an unconditioned swap delivers)."""
    g = _check_prob(gate_depolarizing, "gate_depolarizing")
    e = _check_prob(measurement_error, "measurement_error")

    def bsm(four_qubit_state):
        ra, rb = split_pairs(four_qubit_state)
        out = _jitted("swap_dm")(ra, rb, g, e)
        return np.asarray(out, dtype=np.complex128)

    return NoiseModel(map_replace=bsm)
