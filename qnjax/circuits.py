"""Circuit-level operations on multi-pair density-matrix tensors.

Representation
--------------
An ``n``-qubit density matrix is a tensor of shape ``(..., 2, ..., 2, 2, ..., 2)``
with ``n`` *row* (out) axes followed by ``n`` *column* (in) axes, one axis of size 2
per qubit, qubit 0 most significant. It is exactly
``rho.reshape(batch + (2,) * (2 * n))`` of the ``(..., 2**n, 2**n)`` matrix, so
:func:`dm_to_tensor` and :func:`tensor_to_dm` are reshapes. Leading batch
dimensions broadcast like ``jax.numpy``. Gates, channels, projections and
partial traces are single :func:`jax.numpy.einsum` contractions (or integer
indexing), so everything is ``jit``/``vmap``/``grad``-able; tensors are complex
(``complex64`` from float32 input, ``complex128`` from float64 input).

Pairs are laid out pair after pair: :func:`tensor_product_pairs` of pairs
``(A0, B0), (A1, B1), ...`` gives qubits ``A0=0, B0=1, A1=2, B1=3, ...``.

Operations
----------
* :func:`swap_dm` — entanglement swap with a circuit Bell-state measurement
  (CNOT, Hadamard, Z measurements), noisy gate and noisy read-out, and the Pauli
  correction; equals :func:`qnjax.swap` on Bell-diagonal inputs.
* :func:`distill_bbpssw_dm`, :func:`distill_dejmps_dm` — recurrence distillation
  with noisy bilocal CNOTs and measurement errors; the noiseless limit equals
  :func:`qnjax.distill_bbpssw` / :func:`qnjax.distill_dejmps`.

Noise models (Briegel, Dür, Cirac & Zoller, PRL 81, 5932 (1998); Dür, Briegel,
Cirac & Zoller, PRA 59, 169 (1999)): a noisy two-qubit gate is the ideal gate
followed by two-qubit depolarising ``ρ -> (1 − p) ρ + p tr_{ij}(ρ) ⊗ 1/4`` on its
qubits ``i, j``; a noisy Z measurement reports the flipped bit with probability
``e`` (equivalently, an ``X`` flip with probability ``e`` before an ideal
measurement).

Validation happens on concrete inputs only (see :mod:`qnjax._validate`); under
``jit`` bad input is not detected.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, Inexact

from ._conventions import as_float, complex_of, real_of
from ._validate import check_broadcastable, check_dm, check_probability

Tensor = Inexact[ArrayLike, "..."]
"""An ``n``-qubit density-matrix tensor ``(..., 2, ..., 2)``: batch axes, then ``n`` row and ``n``
column axes of size 2 (module docstring)."""
Pair = Inexact[ArrayLike, "*#batch 4 4"]  # two-qubit density matrices, batch axes broadcasting
Prob = Float[ArrayLike, "*#batch"]  # a probability in [0, 1], batch axes broadcasting

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

_I2 = np.eye(2)
_X = np.array([[0, 1], [1, 0]], dtype=np.complex128)
_Z = np.array([[1, 0], [0, -1]], dtype=np.complex128)
_HAD = np.array([[1, 1], [1, -1]], dtype=np.complex128) / np.sqrt(2)
# CNOT with the first (more significant) qubit as control.
_CNOT = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=np.complex128)
_PHI_PLUS = np.array([1, 0, 0, 1], dtype=np.complex128) / np.sqrt(2)
# Bell-measurement basis change on (B1, B2): CNOT B1 -> B2, then H on B1.
_BSM_U = np.kron(_HAD, _I2) @ _CNOT
# Bilocal CNOT on (a.A, a.B, b.A, b.B): |a0 a1 b0 b1> -> |a0 a1 (b0 ^ a0) (b1 ^ a1)>.
_BILOCAL_CNOT = np.zeros((16, 16), dtype=np.complex128)
for _i in range(16):
    _a0, _a1, _b0, _b1 = (_i >> 3) & 1, (_i >> 2) & 1, (_i >> 1) & 1, _i & 1
    _BILOCAL_CNOT[(_a0 << 3) | (_a1 << 2) | ((_b0 ^ _a0) << 1) | (_b1 ^ _a1), _i] = 1
# DEJMPS local rotations on (a.A, a.B, b.A, b.B): Alice Rx(π/2), Bob Rx(−π/2),
# Rx(θ) = exp(−i θ X / 2) = cos(θ/2) 1 − i sin(θ/2) X.
_RX_P = (_I2 - 1j * _X) / np.sqrt(2)
_RX_M = (_I2 + 1j * _X) / np.sqrt(2)
_DEJMPS_ROT = np.kron(np.kron(_RX_P, _RX_M), np.kron(_RX_P, _RX_M))
# Pauli corrections Z^m1 X^m2 on C for BSM outcomes (m1, m2) = 00, 01, 10, 11.
_CORRECTIONS = np.stack([np.linalg.matrix_power(_Z, m1) @ np.linalg.matrix_power(_X, m2)
                         for m1 in (0, 1) for m2 in (0, 1)])


def rx(theta: Float[ArrayLike, "*batch"]) -> Complex[Array, "*batch 2 2"]:
    """Single-qubit rotation ``Rx(θ) = exp(−i θ X / 2)``, shape ``(..., 2, 2)`` complex."""
    theta = as_float(theta)
    c = jnp.cos(theta / 2).astype(complex_of(theta.dtype))
    s = jnp.sin(theta / 2).astype(complex_of(theta.dtype))
    return jnp.stack([jnp.stack([c, -1j * s], -1), jnp.stack([-1j * s, c], -1)], -2)


# ------------------------------------------------------------------ dtype helpers


def _as_complex(rho):
    rho = jnp.asarray(rho)
    if not jnp.issubdtype(rho.dtype, jnp.inexact):
        rho = rho.astype(jnp.result_type(float))
    return rho.astype(complex_of(rho.dtype))


def _n_qubits(t, n_qubits: int) -> int:
    if t.ndim < 2 * n_qubits or t.shape[t.ndim - 2 * n_qubits:] != (2,) * (2 * n_qubits):
        raise ValueError(
            f"tensor must have trailing shape {(2,) * (2 * n_qubits)} for {n_qubits} qubits; "
            f"got shape {t.shape}"
        )
    return n_qubits


def _bcast(x, t, n_qubits):
    """Reshape a batch array ``x`` (real) so it broadcasts against the tensor ``t``."""
    x = jnp.asarray(x, real_of(t.dtype))
    return x.reshape(x.shape + (1,) * (2 * n_qubits))


# --------------------------------------------------------------- build / reshape

def dm_to_tensor(rho: Inexact[ArrayLike, "*batch d d"], n_qubits: int) -> Complex[Array, "..."]:
    """``(..., 2**n, 2**n)`` density matrix -> ``(..., 2,)*2n`` tensor (rows, then columns)."""
    rho = _as_complex(rho)
    d = 2**n_qubits
    if rho.shape[-2:] != (d, d):
        raise ValueError(f"rho must have trailing shape ({d}, {d}) for {n_qubits} qubits; "
                         f"got shape {rho.shape}")
    return rho.reshape(rho.shape[:-2] + (2,) * (2 * n_qubits))


def tensor_to_dm(t: Tensor, n_qubits: int) -> Inexact[Array, "*batch d d"]:
    """``(..., 2,)*2n`` tensor -> ``(..., 2**n, 2**n)`` density matrix."""
    _n_qubits(t, n_qubits)
    d = 2**n_qubits
    return t.reshape(t.shape[: t.ndim - 2 * n_qubits] + (d, d))


def tensor_product_pairs(*rhos: Pair) -> Complex[Array, "..."]:
    """Tensor product of two-qubit density matrices ``(..., 4, 4)`` (batch dims broadcast).

    Returns the ``2k``-qubit tensor of shape ``(..., 2,)*4k`` with qubit order
    ``pair0.q0, pair0.q1, pair1.q0, pair1.q1, ...``.
    """
    if not rhos:
        raise ValueError("tensor_product_pairs needs at least one density matrix")
    ts = [dm_to_tensor(r, 2) for r in rhos]
    dt = jnp.result_type(*ts)
    k = len(ts)
    n = 2 * k
    rows, cols = _LETTERS[:n], _LETTERS[n:2 * n]
    subs = [f"...{rows[2 * i:2 * i + 2]}{cols[2 * i:2 * i + 2]}" for i in range(k)]
    return jnp.einsum(",".join(subs) + f"->...{rows}{cols}", *[t.astype(dt) for t in ts])


# ------------------------------------------------------------------- contractions

def apply_gate(t: Tensor, gate: Inexact[ArrayLike, "*#batch g g"], qubits: Sequence[int],
               n_qubits: int) -> Complex[Array, "..."]:
    """``U ρ U†`` for a ``k``-qubit gate ``(..., 2**k, 2**k)`` on ``qubits`` of tensor ``t``.

    ``qubits[0]`` is the gate's most significant qubit (e.g. the control of a CNOT).
    """
    _n_qubits(t, n_qubits)
    qubits = tuple(int(q) for q in qubits)
    k = len(qubits)
    if len(set(qubits)) != k or any(not 0 <= q < n_qubits for q in qubits):
        raise ValueError(f"qubits must be distinct indices in [0, {n_qubits}); got {qubits}")
    gate = jnp.asarray(gate).astype(t.dtype)
    g = gate.reshape(gate.shape[:-2] + (2,) * (2 * k))
    n = n_qubits
    rows, cols = list(_LETTERS[:n]), list(_LETTERS[n:2 * n])
    out_r, out_c = _LETTERS[2 * n:2 * n + k], _LETTERS[2 * n + k:2 * n + 2 * k]
    g_sub = out_r + "".join(rows[q] for q in qubits)
    gc_sub = out_c + "".join(cols[q] for q in qubits)
    new_r, new_c = rows.copy(), cols.copy()
    for j, q in enumerate(qubits):
        new_r[q], new_c[q] = out_r[j], out_c[j]
    spec = (f"...{g_sub},...{''.join(rows)}{''.join(cols)},...{gc_sub}"
            f"->...{''.join(new_r)}{''.join(new_c)}")
    return jnp.einsum(spec, g, t, jnp.conj(g))


def apply_two_qubit_gate(t: Tensor, gate: Pair, q0: int, q1: int,
                         n_qubits: int) -> Complex[Array, "..."]:
    """Two-qubit gate ``(..., 4, 4)`` on qubits ``(q0, q1)`` (``q0`` most significant)."""
    return apply_gate(t, gate, (q0, q1), n_qubits)


def apply_single_qubit_gate(t: Tensor, gate: Inexact[ArrayLike, "*#batch 2 2"], q: int,
                            n_qubits: int) -> Complex[Array, "..."]:
    """Single-qubit gate ``(..., 2, 2)`` on qubit ``q``."""
    return apply_gate(t, gate, (q,), n_qubits)


def partial_trace(t: Tensor, keep: Sequence[int], n_qubits: int) -> Complex[Array, "..."]:
    """Trace out every qubit not in ``keep``; returns the ``len(keep)``-qubit tensor
    with the kept qubits in the order given."""
    _n_qubits(t, n_qubits)
    keep = tuple(int(q) for q in keep)
    n = n_qubits
    rows, cols = list(_LETTERS[:n]), list(_LETTERS[n:2 * n])
    in_c = [c if q in keep else rows[q] for q, c in enumerate(cols)]
    out = "".join(rows[q] for q in keep) + "".join(cols[q] for q in keep)
    return jnp.einsum(f"...{''.join(rows)}{''.join(in_c)}->...{out}", t)


def trace(t: Tensor, n_qubits: int) -> Float[Array, "*batch"]:
    """Trace of the tensor, shape ``(...)`` (real part; the trace of a Hermitian tensor)."""
    return jnp.real(tensor_to_dm(partial_trace(t, (), n_qubits), 0)[..., 0, 0])


def depolarize_qubits(t: Tensor, p: Prob, qubits: Sequence[int], n_qubits: int) -> Complex[Array, "..."]:
    """With probability ``p`` (shape ``(...)``) replace ``qubits`` by the maximally mixed state:
    ``ρ -> (1 − p) ρ + p tr_qubits(ρ) ⊗ 1/2**k`` (``k``-qubit depolarising channel,
    Nielsen & Chuang §8.3.4)."""
    _n_qubits(t, n_qubits)
    qubits = tuple(int(q) for q in qubits)
    n, k = n_qubits, len(qubits)
    rows, cols = list(_LETTERS[:n]), list(_LETTERS[n:2 * n])
    # Tracing and re-inserting the identity: contract row = col on `qubits`, then
    # put δ(row, col) back with a factor 1/2 each.
    in_c = [rows[q] if q in qubits else c for q, c in enumerate(cols)]
    spare_r, spare_c = _LETTERS[2 * n:2 * n + k], _LETTERS[2 * n + k:2 * n + 2 * k]
    out_r, out_c = rows.copy(), cols.copy()
    for j, q in enumerate(qubits):
        out_r[q], out_c[q] = spare_r[j], spare_c[j]
    eyes = ",".join(spare_r[j] + spare_c[j] for j in range(k))
    spec = f"...{''.join(rows)}{''.join(in_c)},{eyes}->...{''.join(out_r)}{''.join(out_c)}"
    eye = jnp.eye(2, dtype=t.dtype) / 2
    mixed = jnp.einsum(spec, t, *([eye] * k))
    p = _bcast(p, t, n_qubits)
    return (1 - p) * t + p * mixed


def bit_flip(t: Tensor, p: Prob, q: int, n_qubits: int) -> Complex[Array, "..."]:
    """``X`` flip with probability ``p`` on qubit ``q``: ``(1 − p) ρ + p X ρ X``.

    Bit-flip channel (Nielsen & Chuang §8.3.3). Before an ideal Z measurement this is a
    read-out error flipping the reported bit with probability ``p`` (the measurement
    model of Briegel, Dür, Cirac & Zoller, PRL 81, 5932 (1998))."""
    p = _bcast(p, t, n_qubits)
    return (1 - p) * t + p * apply_single_qubit_gate(t, _X, q, n_qubits)


def project_z(t: Tensor, qubits: Sequence[int], outcomes: Sequence[int],
              n_qubits: int) -> Complex[Array, "..."]:
    """Unnormalised post-measurement state of the unmeasured qubits after measuring
    ``qubits`` in Z with ``outcomes`` (0/1): ``<m|ρ|m>``, a tensor on the other
    ``n − k`` qubits (in their original order). Its trace is the outcome probability."""
    _n_qubits(t, n_qubits)
    qubits = tuple(int(q) for q in qubits)
    sel = dict(zip(qubits, (int(o) for o in outcomes)))
    idx = tuple(sel.get(q, slice(None)) for q in range(n_qubits))
    return t[(Ellipsis,) + idx + idx]


# ---------------------------------------------------------------------- twirls

def werner_twirl_dm(rho: Inexact[ArrayLike, "*batch 4 4"]) -> Complex[Array, "*batch 4 4"]:
    """Isotropic (``U ⊗ U*``) twirl of a two-qubit ``rho`` ``(..., 4, 4)``: the Werner state
    ``F |Φ+><Φ+| + (1 − F)(1 − |Φ+><Φ+|)/3`` with ``F = <Φ+|ρ|Φ+>`` (Bennett, DiVincenzo,
    Smolin & Wootters, PRA 54, 3824 (1996); Horodecki, PRA 59, 4206 (1999))."""
    rho = _as_complex(rho)
    phi = jnp.asarray(_PHI_PLUS, rho.dtype)
    f = jnp.real(jnp.einsum("i,...ij,j->...", phi.conj(), rho, phi))
    proj = jnp.outer(phi, phi.conj())
    tr = jnp.real(jnp.trace(rho, axis1=-2, axis2=-1))
    f, tr = f[..., None, None].astype(rho.dtype), tr[..., None, None].astype(rho.dtype)
    return f * proj + (tr - f) * (jnp.eye(4, dtype=rho.dtype) - proj) / 3


# ---------------------------------------------------------------------- swap

def _probs(x, name):
    check_probability(x, name)
    return x


def swap_dm(rho_a: Pair, rho_b: Pair, gate_depolarizing: Prob = 0.0,
            measurement_error: Prob = 0.0) -> Complex[Array, "*batch 4 4"]:
    """Entanglement swap of two-qubit states ``rho_a`` = (A, B1) and ``rho_b`` = (B2, C).

    Circuit: the four-qubit tensor ``(A, B1, B2, C)``; Bell-state measurement on
    B1 B2 as CNOT (B1 → B2), Hadamard on B1 and Z measurements of both; the phase
    bit ``m1`` (B1) and parity bit ``m2`` (B2) are each reported flipped with
    probability ``measurement_error``; with probability ``gate_depolarizing`` the
    measured qubits are replaced by the maximally mixed state before measurement;
    C is corrected by ``Z^m1 X^m2``; the output is the (A, C) state averaged over
    the four outcomes (trace preserving). Noise model of Briegel, Dür, Cirac &
    Zoller, PRL 81, 5932 (1998); on Bell-diagonal inputs it equals the closed form
    :func:`qnjax.swap` (Dür et al., PRA 59, 169 (1999)).

    Args:
        rho_a, rho_b: density matrices ``(..., 4, 4)`` (batch dims broadcast).
        gate_depolarizing: probability in [0, 1], shape broadcastable to the batch.
        measurement_error: per-bit read-out flip probability in [0, 1].

    Returns:
        ``(..., 4, 4)`` complex density matrix of (A, C).
    """
    check_dm(rho_a, "rho_a")
    check_dm(rho_b, "rho_b")
    check_broadcastable(("rho_a", rho_a), ("rho_b", rho_b), core_ndim=2)
    _probs(gate_depolarizing, "gate_depolarizing")
    _probs(measurement_error, "measurement_error")
    return _swap_dm_core(rho_a, rho_b, gate_depolarizing, measurement_error)


@jax.jit
def _swap_dm_core(rho_a, rho_b, gate_depolarizing, measurement_error):
    # Compiled as one unit: an eager (un-jitted) call then costs one compilation per
    # shape instead of one per einsum; inside an outer jit/vmap/grad it is inlined.
    t = tensor_product_pairs(rho_a, rho_b)
    t = apply_two_qubit_gate(t, _BSM_U, 1, 2, 4)  # CNOT B1 -> B2, then H on B1
    t = depolarize_qubits(t, gate_depolarizing, (1, 2), 4)
    t = bit_flip(t, measurement_error, 1, 4)
    t = bit_flip(t, measurement_error, 2, 4)
    # (A, C) tensors for the outcomes (m1, m2) = 00, 01, 10, 11, stacked on a batch axis
    # just before the qubit axes, then corrected by Z^m1 X^m2 on C and summed.
    r = jnp.stack([project_z(t, (1, 2), (m1, m2), 4) for m1 in (0, 1) for m2 in (0, 1)],
                  axis=-5)
    out = apply_single_qubit_gate(r, _CORRECTIONS, 1, 2).sum(axis=-5)
    return tensor_to_dm(out, 2)


# ---------------------------------------------------------------- distillation

@partial(jax.jit, static_argnums=(4, 5))
def _bilocal_cnot_measure(rho_a, rho_b, cnot_depolarizing, measurement_error, pre_rotate,
                          twirl=False):
    if twirl:
        rho_a, rho_b = werner_twirl_dm(rho_a), werner_twirl_dm(rho_b)
    t = tensor_product_pairs(rho_a, rho_b)  # qubits: a.Alice=0, a.Bob=1, b.Alice=2, b.Bob=3
    if pre_rotate:
        t = apply_gate(t, _DEJMPS_ROT, (0, 1, 2, 3), 4)
    # Both CNOTs (0 -> 2 and 1 -> 3) at once; each one's depolarising acts on its own
    # qubits, which the other CNOT does not touch, so the order is immaterial.
    t = apply_gate(t, _BILOCAL_CNOT, (0, 1, 2, 3), 4)
    t = depolarize_qubits(t, cnot_depolarizing, (0, 2), 4)
    t = depolarize_qubits(t, cnot_depolarizing, (1, 3), 4)
    t = bit_flip(t, measurement_error, 2, 4)
    t = bit_flip(t, measurement_error, 3, 4)
    kept = project_z(t, (2, 3), (0, 0), 4) + project_z(t, (2, 3), (1, 1), 4)
    p = trace(kept, 2)
    rho = tensor_to_dm(kept, 2) / p[..., None, None].astype(kept.dtype)
    return p, werner_twirl_dm(rho) if twirl else rho


def distill_dejmps_dm(rho_a: Pair, rho_b: Pair, cnot_depolarizing: Prob = 0.0,
                      measurement_error: Prob = 0.0) -> tuple[Float[Array, "*batch"], Complex[Array, "*batch 4 4"]]:
    """DEJMPS recurrence distillation at circuit level (Deutsch, Ekert, Jozsa,
    Macchiavello, Popescu & Sanpera, PRL 77, 2818 (1996)).

    Alice applies ``Rx(π/2)`` and Bob ``Rx(−π/2)`` to their qubit of both pairs
    (this exchanges the Ψ− and Φ− coefficients and keeps Φ+, Ψ+); bilocal CNOTs with
    pair ``a`` as control and pair ``b`` as target, each followed by two-qubit
    depolarising with probability ``cnot_depolarizing`` (Briegel et al., PRL 81,
    5932 (1998)); pair ``b`` is measured in Z by both sides, each reported bit flips
    with probability ``measurement_error``; success when the reported bits agree.
    In the noiseless limit equals :func:`qnjax.distill_dejmps`.

    Args:
        rho_a, rho_b: two-qubit density matrices ``(..., 4, 4)``, qubit 0 Alice's.
        cnot_depolarizing, measurement_error: probabilities in [0, 1].

    Returns:
        ``(p_success, rho_out)``: ``(...)`` real and ``(..., 4, 4)`` complex (not twirled).
    """
    check_dm(rho_a, "rho_a")
    check_dm(rho_b, "rho_b")
    check_broadcastable(("rho_a", rho_a), ("rho_b", rho_b), core_ndim=2)
    _probs(cnot_depolarizing, "cnot_depolarizing")
    _probs(measurement_error, "measurement_error")
    return _bilocal_cnot_measure(rho_a, rho_b, cnot_depolarizing, measurement_error, True)


def distill_bbpssw_dm(rho_a: Pair, rho_b: Pair, cnot_depolarizing: Prob = 0.0,
                      measurement_error: Prob = 0.0) -> tuple[Float[Array, "*batch"], Complex[Array, "*batch 4 4"]]:
    """BBPSSW recurrence distillation at circuit level (Bennett, Brassard, Popescu,
    Schumacher, Smolin & Wootters, PRL 76, 722 (1996)), with Φ+ as the target state.

    Both inputs are twirled to Werner states (:func:`werner_twirl_dm`), then bilocal
    CNOTs (pair ``a`` control, pair ``b`` target) each followed by two-qubit
    depolarising with probability ``cnot_depolarizing``; pair ``b`` is measured in Z
    by both sides with read-out flip probability ``measurement_error``; success when
    the reported bits agree; the output is twirled to a Werner state. In the
    noiseless limit equals :func:`qnjax.distill_bbpssw`.

    Returns:
        ``(p_success, rho_out)``: ``(...)`` real and ``(..., 4, 4)`` complex Werner state.
    """
    check_dm(rho_a, "rho_a")
    check_dm(rho_b, "rho_b")
    check_broadcastable(("rho_a", rho_a), ("rho_b", rho_b), core_ndim=2)
    _probs(cnot_depolarizing, "cnot_depolarizing")
    _probs(measurement_error, "measurement_error")
    return _bilocal_cnot_measure(rho_a, rho_b, cnot_depolarizing, measurement_error, False, True)
