"""Noise channels on Bell-diagonal states, Werner parameters and density matrices.

A one-qubit Pauli channel with probabilities ``p = (p_I, p_X, p_Y, p_Z)`` acting
on either qubit of a Bell-diagonal pair is the Klein-group convolution
``lam ⊛ p`` (Dür et al., PRA 59, 169 (1999)); in Walsh coordinates it multiplies
each coordinate by ``walsh(p)``. Memory decoherence over an idle time is therefore
an exponential per Walsh coordinate (:func:`memory_walsh_rates`).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float, Inexact

from . import _formulas as F
from ._validate import (
    check_bell, check_broadcastable, check_dm, check_nonnegative, check_positive, check_probability,
    check_t1t2,
)
from ._conventions import as_float, complex_of
from .states import PAULIS


def pauli_channel(lam: Float[ArrayLike, "*batch 4"],
                  p: Float[ArrayLike, "*batch 4"]) -> Float[Array, "*batch 4"]:
    """Apply a one-qubit Pauli channel ``p = (p_I, p_X, p_Y, p_Z)`` to either qubit of ``lam``.

    The Klein-group convolution ``lam ⊛ p`` (Dür, Briegel, Cirac & Zoller, PRA 59, 169
    (1999)); the same on either qubit because ``(σ ⊗ 1)|Φ+> = ±(1 ⊗ σ*)|Φ+>``.

    Args:
        lam: Bell-diagonal coefficients ``(..., 4)``.
        p: Pauli probabilities ``(..., 4)``, each in [0, 1], summing to 1.

    Returns:
        Bell-diagonal ``(..., 4)`` (batch axes of ``lam`` and ``p`` broadcast).
    """
    check_bell(lam, "lam")
    check_bell(p, "p")
    check_broadcastable(("lam", lam), ("p", p))
    lam, p = jnp.broadcast_arrays(as_float(lam), as_float(p))
    return F.klein_conv(lam, p, jnp)


def depolarize(lam: Float[ArrayLike, "*batch 4"], p: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch 4"]:
    """Two-qubit (pair) depolarising: ``lam -> (1 − p) lam + p/4``, ``p`` in [0, 1]
    (``ρ -> (1 − p) ρ + p 1/4``; Nielsen & Chuang §8.3.4, the gate-noise model of
    Briegel, Dür, Cirac & Zoller, PRL 81, 5932 (1998)). ``lam`` is Bell-diagonal
    ``(..., 4)``, ``p`` has shape ``(...)``; returns ``(..., 4)``."""
    check_bell(lam, "lam")
    check_probability(p, "p")
    lam = as_float(lam)
    p = jnp.asarray(p, lam.dtype)[..., None]
    return (1 - p) * lam + p / 4


def depolarize_qubit(lam: Float[ArrayLike, "*batch 4"],
                     p: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch 4"]:
    """One-qubit depolarising ``ρ -> (1 − p) ρ + p 1/2`` on either qubit of ``lam``: Pauli
    probabilities ``(1 − 3p/4, p/4, p/4, p/4)`` (Nielsen & Chuang §8.3.4). ``lam``
    ``(..., 4)``, ``p`` in [0, 1] with shape ``(...)``; returns ``(..., 4)``."""
    check_probability(p, "p")
    p = as_float(p)
    probs = jnp.stack([1 - 3 * p / 4, p / 4, p / 4, p / 4], axis=-1)
    return pauli_channel(lam, probs)


def dephase(lam: Float[ArrayLike, "*batch 4"], p: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch 4"]:
    """One-qubit dephasing: a ``Z`` flip with probability ``p`` on either qubit (phase-flip
    channel, Nielsen & Chuang §8.3.3). ``lam`` ``(..., 4)``, ``p`` in [0, 1] with shape
    ``(...)``; returns ``(..., 4)``."""
    check_probability(p, "p")
    p = as_float(p)
    z = jnp.zeros_like(p)
    return pauli_channel(lam, jnp.stack([1 - p, z, z, p], axis=-1))


def t1t2_pauli_probs(t: Float[ArrayLike, "*batch"], t1: Float[ArrayLike, "*batch"],
                     t2: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch 4"]:
    """Pauli-twirled ``T1``/``T2`` idling of one qubit for time ``t`` (same unit as ``T1, T2``).

    Returns ``(..., 4)`` probabilities ``(p_I, p_X, p_Y, p_Z)``; see
    :func:`qnjax._formulas.t1t2_pauli`. ``T2 <= 2 T1`` is required for a valid channel.
    """
    check_nonnegative(t, "t")
    check_positive(t1, "t1")
    check_positive(t2, "t2")
    check_t1t2(t1, t2)
    t, t1, t2 = jnp.broadcast_arrays(as_float(t), as_float(t1), as_float(t2))
    return F.t1t2_pauli(t, t1, t2, jnp)


def memory_walsh_rates(t1: Float[ArrayLike, "*batch"],
                       t2: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch 4"]:
    """Decay rates ``(..., 4)`` of the Walsh coordinates for one qubit with ``T1, T2``.

    Idling for ``t`` multiplies ``walsh(lam)`` by ``exp(−t · rates)`` with
    ``rates = (0, 1/T1, 1/T2, 1/T2)``: the Pauli-transfer diagonal
    ``(1, exp(−t/T2), exp(−t/T2), exp(−t/T1))`` of the twirled channel
    (:func:`t1t2_pauli_probs`) in the Klein character order of :func:`qnjax.walsh`
    (Nielsen & Chuang §8.3; twirl as in Ghosh, Fowler & Geller, PRA 86, 062318 (2012)).
    Rates of several qubits add.
    """
    check_positive(t1, "t1")
    check_positive(t2, "t2")
    check_t1t2(t1, t2)
    t1, t2 = jnp.broadcast_arrays(as_float(t1), as_float(t2))
    return jnp.stack([jnp.zeros_like(t1), 1 / t1, 1 / t2, 1 / t2], axis=-1)


def memory_decohere(lam: Float[ArrayLike, "*batch 4"], t: Float[ArrayLike, "*batch"],
                    t1: Float[ArrayLike, "*batch"], t2: Float[ArrayLike, "*batch"],
                    qubits: int = 2) -> Float[Array, "*batch 4"]:
    """Bell-diagonal pair whose ``qubits`` (1 or 2) memories idle for ``t`` with ``T1, T2``.

    Pauli-twirled amplitude and phase damping (:func:`t1t2_pauli_probs`), applied
    to each of the ``qubits`` memories holding the pair (Dür et al., PRA 59, 169
    (1999) for Pauli channels on Bell-diagonal pairs). For one memory this equals the
    Bell-diagonal twirl of the untwirled Kraus channel (:func:`memory_decohere_dm`).
    For two memories each is twirled separately: the correlated relaxation of both
    memories towards ``|00>`` (untwirled fixed point Bell-diagonal ``(1/2, 0, 0, 1/2)``)
    is replaced by relaxation towards ``1/4``.

    Args:
        lam: Bell-diagonal coefficients ``(..., 4)``.
        t: idle time, ``>= 0``, in the unit of ``t1`` and ``t2``.
        t1: relaxation (amplitude-damping) time, ``> 0``.
        t2: dephasing time, ``> 0`` and ``<= 2 t1``.
        qubits: how many of the pair's memories idle (1 or 2).

    Returns:
        Bell-diagonal ``(..., 4)``.
    """
    if qubits not in (1, 2):
        raise ValueError(f"qubits must be 1 or 2; got {qubits!r}")
    check_bell(lam, "lam")
    p = t1t2_pauli_probs(t, t1, t2)
    lam = as_float(lam)
    out = F.klein_conv(*jnp.broadcast_arrays(lam, p.astype(lam.dtype)), jnp)
    if qubits == 2:
        out = F.klein_conv(*jnp.broadcast_arrays(out, p.astype(lam.dtype)), jnp)
    return out


def werner_decay(w: Float[ArrayLike, "*batch"], t: Float[ArrayLike, "*batch"],
                 t_coh: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
    """Single-parameter memory decay of the literature: ``w · exp(−t / t_coh)``.

    ``t_coh`` is the coherence time of the *pair* (both memories together), in the
    unit of ``t``; ``t_coh = inf`` means no decay. Equivalent to pair depolarising with
    probability ``1 − exp(−t/t_coh)``. As in Brand, Coopmans & Elkouss, IEEE JSAC 38,
    619 (2020) and Li, Coopmans & Elkouss, IEEE TQE 2, 4100315 (2021).
    """
    check_nonnegative(t, "t")
    check_positive(t_coh, "t_coh")
    w = as_float(w)
    return w * jnp.exp(-as_float(t) / as_float(t_coh))


# ---------------------------------------------------------------- density matrices

def apply_kraus(rho: Inexact[ArrayLike, "*batch 4 4"], kraus: Inexact[ArrayLike, "*#batch k 2 2"],
                qubit: int) -> Inexact[Array, "*batch 4 4"]:
    """Apply single-qubit Kraus operators ``kraus`` ``(K, 2, 2)`` (or ``(..., K, 2, 2)``)
    to qubit ``qubit`` (0 or 1) of two-qubit ``rho`` ``(..., 4, 4)``: ``Σ_k K_k ρ K_k†``
    (operator-sum form, Nielsen & Chuang §8.2.3). ``rho`` is not value-checked (any
    operator, e.g. unnormalised, is mapped linearly)."""
    if qubit not in (0, 1):
        raise ValueError(f"qubit must be 0 or 1; got {qubit!r}")
    if jnp.shape(rho)[-2:] != (4, 4):
        raise ValueError(f"rho must have trailing shape (4, 4); got shape {jnp.shape(rho)}")
    if jnp.shape(kraus)[-2:] != (2, 2):
        raise ValueError(f"kraus must have trailing shape (2, 2); got shape {jnp.shape(kraus)}")
    rho = jnp.asarray(rho)
    kraus = jnp.asarray(kraus).astype(rho.dtype)
    r = rho.reshape(rho.shape[:-2] + (2, 2, 2, 2))
    if qubit == 0:
        r = jnp.einsum("...kai,...ibjc,...kdj->...abdc", kraus, r, kraus.conj())
    else:
        r = jnp.einsum("...kbi,...aicj,...kdj->...abcd", kraus, r, kraus.conj())
    return r.reshape(rho.shape)


def pauli_channel_dm(rho: Inexact[ArrayLike, "*batch 4 4"], p: Float[ArrayLike, "*#batch 4"],
                     qubit: int) -> Complex[Array, "*batch 4 4"]:
    """One-qubit Pauli channel ``ρ -> Σ_k p_k σ_k ρ σ_k`` (``p = (p_I, p_X, p_Y, p_Z)``)
    on qubit ``qubit`` of ``rho`` (Nielsen & Chuang §8.3).

    Written linearly in ``p`` (not through Kraus operators ``√p_k σ_k``) so that the
    gradient stays finite where some ``p_k = 0``.
    """
    if qubit not in (0, 1):
        raise ValueError(f"qubit must be 0 or 1; got {qubit!r}")
    check_dm(rho, "rho")
    check_bell(p, "p")
    p = as_float(p)
    rho = jnp.asarray(rho)
    cd = complex_of(p.dtype) if not jnp.iscomplexobj(rho) else rho.dtype
    rho = rho.astype(cd)
    paulis = jnp.asarray(PAULIS, cd)
    r = rho.reshape(rho.shape[:-2] + (2, 2, 2, 2))
    pc = p.astype(cd)
    if qubit == 0:
        r = jnp.einsum("...k,kai,...ibjc,kdj->...abdc", pc, paulis, r, paulis.conj())
    else:
        r = jnp.einsum("...k,kbi,...aicj,kdj->...abcd", pc, paulis, r, paulis.conj())
    return r.reshape(r.shape[:-4] + (4, 4))


def t1t2_kraus(t: Float[ArrayLike, "*batch"], t1: Float[ArrayLike, "*batch"],
               t2: Float[ArrayLike, "*batch"]) -> Complex[Array, "*batch 4 2 2"]:
    """Kraus operators ``(..., 4, 2, 2)`` of one qubit idling for ``t`` with ``T1, T2``.

    Amplitude damping ``γ = 1 − exp(−t/T1)`` (Nielsen & Chuang eq. 8.108) followed
    by pure dephasing that brings the coherence to ``exp(−t/T2)``: a ``Z`` flip
    with probability ``(1 − exp(−t/T2 + t/(2 T1)))/2``. Requires ``T2 <= 2 T1``.
    """
    check_nonnegative(t, "t")
    check_positive(t1, "t1")
    check_positive(t2, "t2")
    check_t1t2(t1, t2)
    t, t1, t2 = jnp.broadcast_arrays(as_float(t), as_float(t1), as_float(t2))
    gamma = 1 - jnp.exp(-t / t1)
    pz = (1 - jnp.exp(-t / t2 + t / (2 * t1))) / 2
    z = jnp.zeros_like(gamma)
    o = jnp.ones_like(gamma)
    k0 = jnp.stack([jnp.stack([o, z], -1), jnp.stack([z, jnp.sqrt(1 - gamma)], -1)], -2)
    k1 = jnp.stack([jnp.stack([z, jnp.sqrt(gamma)], -1), jnp.stack([z, z], -1)], -2)
    zm = jnp.stack([jnp.stack([o, z], -1), jnp.stack([z, -o], -1)], -2)
    a, b = jnp.sqrt(1 - pz)[..., None, None], jnp.sqrt(pz)[..., None, None]
    ks = jnp.stack([a * k0, a * k1, b * (zm @ k0), b * (zm @ k1)], axis=-3)
    return ks.astype(complex_of(t.dtype))


def memory_decohere_dm(rho: Inexact[ArrayLike, "*batch 4 4"], t: Float[ArrayLike, "*#batch"],
                       t1: Float[ArrayLike, "*#batch"], t2: Float[ArrayLike, "*#batch"],
                       qubits: tuple[int, ...] = (0, 1)) -> Complex[Array, "*batch 4 4"]:
    """Amplitude + phase damping (not twirled) of the listed qubits of ``rho`` idling for ``t``.

    The channel of :func:`t1t2_kraus` (Nielsen & Chuang §8.3.5–8.3.6), applied in its
    element-wise form :func:`qnjax._formulas.t1t2_block` (the same code the requsim adapter
    runs with NumPy), which is smooth in ``t`` (the Kraus form has ``√γ``, whose gradient
    is infinite at ``t = 0``).
    """
    check_dm(rho, "rho")
    check_nonnegative(t, "t")
    check_positive(t1, "t1")
    check_positive(t2, "t2")
    check_t1t2(t1, t2)
    for q in qubits:
        if q not in (0, 1):
            raise ValueError(f"qubits must be 0 or 1; got {q!r}")
    rho = jnp.asarray(rho)
    t, t1, t2 = jnp.broadcast_arrays(as_float(t), as_float(t1), as_float(t2))
    cd = rho.dtype if jnp.iscomplexobj(rho) else complex_of(t.dtype)
    rho = rho.astype(cd)
    real = jnp.real(jnp.zeros((), cd)).dtype
    t, t1, t2 = (x.astype(real)[..., None, None] for x in (t, t1, t2))  # broadcast over the other qubit
    for q in qubits:
        r = rho.reshape(rho.shape[:-2] + (2, 2, 2, 2))  # (row q0, row q1, col q0, col q1)
        ax = (-4, -2) if q == 0 else (-3, -1)
        r = jnp.moveaxis(F.t1t2_block(jnp.moveaxis(r, ax, (-2, -1)), t, t1, t2, jnp), (-2, -1), ax)
        rho = r.reshape(r.shape[:-4] + (4, 4))
    return rho


def depolarize_dm(rho: Inexact[ArrayLike, "*batch 4 4"], p: Float[ArrayLike, "*#batch"],
                  qubit: int) -> Complex[Array, "*batch 4 4"]:
    """One-qubit depolarising ``(1 − p) ρ + p 1/2`` on qubit ``qubit`` of ``rho``
    (Nielsen & Chuang §8.3.4)."""
    check_probability(p, "p")
    p = as_float(p)
    return pauli_channel_dm(rho, jnp.stack([1 - 3 * p / 4, p / 4, p / 4, p / 4], -1), qubit)
