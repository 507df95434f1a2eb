"""Secret-key fractions of Bell-diagonal states and repeaterless bounds.

All logarithms are base 2 (bits). QBERs of a Bell-diagonal state measured in the
Z and X bases: ``e_Z = λX + λY``, ``e_X = λY + λZ``.

NaN propagates: every figure of a NaN state (or of a NaN QBER) is NaN, never a key.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._validate import check_bell, check_probability
from ._conventions import as_float


def binary_entropy(p: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
    """Binary entropy ``h(p) = −p log2 p − (1 − p) log2 (1 − p)`` in bits (Shannon 1948;
    Nielsen & Chuang §11.2.1); ``h(0) = h(1) = 0`` with a finite (zero) gradient there."""
    check_probability(p, "p")
    return _binary_entropy(as_float(p))


def _binary_entropy(p):
    return _xlog2x(p) * -1 + _xlog2x(1 - p) * -1


def _xlog2x(x):
    """``x log2 x`` with ``0 log 0 = 0`` and a NaN-free gradient at ``x = 0``; NaN stays NaN."""
    pos = x > 0
    safe = jnp.where(pos, x, 1)
    return jnp.where(pos, safe * jnp.log2(safe), jnp.where(jnp.isnan(x), x, 0))


def shannon_entropy(lam: Float[ArrayLike, "*batch k"]) -> Float[Array, "*batch"]:
    """Shannon entropy ``H(λ) = −Σ λ_k log2 λ_k`` (bits) of the distribution in the last
    axis (Shannon 1948; Nielsen & Chuang §11.1); ``0 log 0 = 0`` with finite gradient."""
    return -jnp.sum(_xlog2x(as_float(lam)), axis=-1)


def qber(lam: Float[ArrayLike, "*batch 4"]) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
    """Quantum bit error rates ``(e_x, e_z) = (λY + λZ, λX + λY)`` of Bell-diagonal ``lam``.

    Measuring both qubits of ``Φ+`` in Z (X) gives equal bits; a Pauli error that
    anticommutes with ``Z ⊗ Z`` (``X ⊗ X``) flips the parity: X and Y for the Z basis,
    Y and Z for the X basis (e.g. Scarani et al., Rev. Mod. Phys. 81, 1301 (2009)).
    """
    check_bell(lam, "lam", allow_nan=True)
    lam = as_float(lam)
    nan = 0 * lam.sum(-1)  # NaN where any coefficient is NaN (the I coefficient included)
    return lam[..., 2] + lam[..., 3] + nan, lam[..., 1] + lam[..., 2] + nan


def key_fraction_bb84_smooth(lam: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch"]:
    """Unclipped asymptotic BB84 fraction ``1 − h(e_X) − h(e_Z)`` (may be negative).

    Smooth, for optimisation; Shor & Preskill, PRL 85, 441 (2000), asymmetric
    form of Lo, Chau & Ardehali, J. Cryptol. 18, 133 (2005).
    """
    ex, ez = qber(lam)
    return 1 - _binary_entropy(ex) - _binary_entropy(ez)


def key_fraction_bb84(lam: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch"]:
    """Asymptotic BB84 secret fraction ``max(0, 1 − h(e_X) − h(e_Z))`` (bits per pair),
    clipped for reporting; sources as :func:`key_fraction_bb84_smooth`."""
    return jnp.maximum(key_fraction_bb84_smooth(lam), 0)


def key_fraction_six_state_smooth(lam: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch"]:
    """Unclipped six-state fraction ``1 − H(λ)`` (Bell-diagonal states; one-way
    post-processing, Renner, Gisin & Kraus, PRA 72, 012332 (2005))."""
    check_bell(lam, "lam", allow_nan=True)
    return 1 - shannon_entropy(lam)


def key_fraction_six_state(lam: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch"]:
    """Six-state secret fraction ``max(0, 1 − H(λ))`` (bits per pair), clipped for
    reporting; source as :func:`key_fraction_six_state_smooth`."""
    return jnp.maximum(key_fraction_six_state_smooth(lam), 0)


def plob_bound(eta: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
    """PLOB repeaterless bound ``−log2(1 − η)`` in bits per channel use
    (Pirandola, Laurenza, Ottaviani & Banchi, Nat. Commun. 8, 15043 (2017)).
    ``+inf`` at ``η = 1``."""
    check_probability(eta, "eta")
    eta = as_float(eta)
    return -jnp.log2(1 - eta)


def tgw_bound(eta: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
    """TGW bound ``log2((1 + η)/(1 − η))`` in bits per channel use
    (Takeoka, Guha & Wilde, Nat. Commun. 5, 5235 (2014))."""
    check_probability(eta, "eta")
    eta = as_float(eta)
    return jnp.log2((1 + eta) / (1 - eta))
