"""State representations and conversions.

Conventions (shared by the whole package):

* Bell-diagonal coefficients ``lam`` live in the last axis, ordered by the Pauli
  applied to one qubit of ``|Φ+>``: ``(I, X, Y, Z) = (Φ+, Ψ+, Ψ−, Φ−)``.
  The fidelity to ``|Φ+>`` is ``lam[..., 0]``.
* Werner parameter ``w``: ``ρ = w |Φ+><Φ+| + (1 − w) 1/4``, so
  ``F = (1 + 3w) / 4`` and ``w = (4F − 1) / 3``.
* Two-qubit density matrices are ``(..., 4, 4)`` in the computational basis
  ``|00>, |01>, |10>, |11>`` (first qubit most significant).
* Walsh–Hadamard ("characteristic") coordinates ``walsh(lam) = lam @ H`` with the
  Klein-group character table ``H`` below. Pauli channels and entanglement
  swapping, both Klein-group convolutions, are element-wise products there
  (see :mod:`qnjax.channels`, :mod:`qnjax.ops`). For a Werner state
  ``walsh = (1, w, w, w)``.

All functions accept arbitrary leading batch dimensions and work under ``jit``,
``vmap`` and ``grad`` in float32 and float64.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Complex, Float

from ._conventions import as_float, complex_of, walsh_matrix
from ._validate import check_bell, check_dm, check_range

_s = 1 / np.sqrt(2)
# Columns: |Φ+>, |Ψ+>, |Ψ−>, |Φ−> in the computational basis.
_BELL_NP = np.array(
    [[_s, 0, 0, _s],
     [0, _s, _s, 0],
     [0, _s, -_s, 0],
     [_s, 0, 0, -_s]],
    dtype=np.float64,
).T
# Single-qubit Paulis in the same order (I, X, Y, Z).
PAULIS: Complex[np.ndarray, "4 2 2"] = np.array(
    [[[1, 0], [0, 1]],
     [[0, 1], [1, 0]],
     [[0, -1j], [1j, 0]],
     [[1, 0], [0, -1]]],
    dtype=np.complex128,
)


def walsh(lam: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch 4"]:
    """Walsh–Hadamard (Klein-group Fourier) coordinates of Bell-diagonal ``lam``.

    ``walsh(lam)[..., 0] = sum(lam)``; the other three are the characters
    ``(X, Y, Z)``. Linear, so it also maps unnormalised (probability-weighted)
    states. The convolution theorem on the group Z2 × Z2 makes Klein convolutions
    (swaps, Pauli channels; Dür, Briegel, Cirac & Zoller, PRA 59, 169 (1999))
    element-wise products here: ``walsh(a ⊛ b) = walsh(a) · walsh(b)``. For a
    Bell-diagonal state the coordinates are the correlations ``(1, <ZZ>, −<YY>, <XX>)``.
    """
    lam = as_float(lam)
    return lam @ walsh_matrix(lam.dtype)


def unwalsh(c: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch 4"]:
    """Inverse of :func:`walsh`: ``lam = c @ H / 4``."""
    c = as_float(c)
    return c @ walsh_matrix(c.dtype) / 4


def werner_to_bell(w: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch 4"]:
    """Bell-diagonal coefficients ``(..., 4)`` of the Werner state with parameter ``w``
    (Werner, PRA 40, 4277 (1989); parametrisation of Briegel, Dür, Cirac & Zoller,
    PRL 81, 5932 (1998)).

    ``w`` in ``[-1/3, 1]``; ``lam = ((1 + 3w)/4, (1 − w)/4, (1 − w)/4, (1 − w)/4)``.
    """
    check_range(w, "w", -1 / 3, 1.0)
    w = as_float(w)
    off = (1 - w) / 4
    return jnp.stack([(1 + 3 * w) / 4, off, off, off], axis=-1)


def bell_to_werner(lam: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch"]:
    """Werner parameter ``w = (4 F − 1)/3`` of the Werner twirl of ``lam`` (Werner, PRA 40,
    4277 (1989))."""
    check_bell(lam, "lam", allow_nan=True)
    lam = as_float(lam)
    return (4 * lam[..., 0] - 1) / 3


def fidelity(lam: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch"]:
    """Fidelity to ``|Φ+>``: the ``I`` coefficient ``lam[..., 0]``."""
    check_bell(lam, "lam", allow_nan=True)
    return as_float(lam)[..., 0]


def werner_fidelity(w: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
    """Fidelity ``(1 + 3w)/4`` of a Werner state."""
    check_range(w, "w", -1 / 3, 1.0)
    return (1 + 3 * as_float(w)) / 4


def fidelity_to_werner(f: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
    """Werner parameter ``(4F − 1)/3`` of fidelity ``F`` in ``[0, 1]``."""
    check_range(f, "f", 0.0, 1.0)
    return (4 * as_float(f) - 1) / 3


def twirl_to_werner(lam: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch 4"]:
    """Depolarising (isotropic, ``U ⊗ U*``) twirl: keep the fidelity, spread the rest evenly
    (Bennett, DiVincenzo, Smolin & Wootters, PRA 54, 3824 (1996); Horodecki, PRA 59,
    4206 (1999))."""
    check_bell(lam, "lam", allow_nan=True)
    lam = as_float(lam)
    f = lam[..., 0]
    off = (1 - f) / 3
    return jnp.stack([f, off, off, off], axis=-1)


def bell_basis(dtype=jnp.complex64) -> Complex[Array, "4 4"]:
    """Matrix ``(4, 4)`` whose columns are ``|Φ+>, |Ψ+>, |Ψ−>, |Φ−>``."""
    return jnp.asarray(_BELL_NP, dtype=dtype)


def bell_to_dm(lam: Float[ArrayLike, "*batch 4"]) -> Complex[Array, "*batch 4 4"]:
    """Density matrix ``(..., 4, 4)`` (complex) of the Bell-diagonal state ``lam``."""
    check_bell(lam, "lam")
    lam = as_float(lam)
    b = bell_basis(complex_of(lam.dtype))
    return jnp.einsum("ik,...k,jk->...ij", b, lam.astype(b.dtype), b.conj())


def werner_to_dm(w: Float[ArrayLike, "*batch"]) -> Complex[Array, "*batch 4 4"]:
    """Density matrix ``(..., 4, 4)`` of the Werner state with parameter ``w``."""
    return bell_to_dm(werner_to_bell(w))


def dm_to_bell(rho: Complex[ArrayLike, "*batch 4 4"]) -> Float[Array, "*batch 4"]:
    """Bell-diagonal twirl of ``rho``: its diagonal in the Bell basis, ``(..., 4)`` real.

    The twirl (random correlated Pauli pair ``P ⊗ P*``) removes every off-diagonal
    Bell-basis element and keeps the diagonal (Bennett, DiVincenzo, Smolin & Wootters,
    PRA 54, 3824 (1996)).
    """
    check_dm(rho, "rho")
    rho = jnp.asarray(rho)
    b = bell_basis(complex_of(rho.dtype))
    return jnp.real(jnp.einsum("ik,...ij,jk->...k", b.conj(), rho.astype(b.dtype), b))


def dm_fidelity(rho: Complex[ArrayLike, "*batch 4 4"]) -> Float[Array, "*batch"]:
    """Fidelity ``<Φ+|ρ|Φ+>`` of a two-qubit density matrix."""
    return dm_to_bell(rho)[..., 0]


def is_valid_bell(lam: Float[ArrayLike, "*batch 4"], atol: float = 1e-6) -> Bool[Array, "*batch"]:
    """Boolean array: ``lam`` is a valid Bell-diagonal vector (non-negative, sums to 1)."""
    lam = as_float(lam)
    return jnp.all(lam >= -atol, axis=-1) & (jnp.abs(lam.sum(-1) - 1) <= atol)


def is_valid_dm(rho: Complex[ArrayLike, "*batch 4 4"], atol: float = 1e-6) -> Bool[Array, "*batch"]:
    """Boolean array: ``rho`` is Hermitian, unit-trace and positive semidefinite."""
    rho = jnp.asarray(rho)
    herm = jnp.max(jnp.abs(rho - jnp.conj(jnp.swapaxes(rho, -1, -2))), axis=(-2, -1)) <= atol
    tr = jnp.abs(jnp.trace(rho, axis1=-2, axis2=-1) - 1) <= atol
    rh = (rho + jnp.conj(jnp.swapaxes(rho, -1, -2))) / 2
    psd = jnp.linalg.eigvalsh(rh)[..., 0] >= -atol
    return herm & tr & psd
