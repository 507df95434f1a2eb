"""Array-namespace-generic helpers used by the simulator adapters.

Like :mod:`qnjax._formulas`, every function takes the array namespace ``xp``
(``numpy`` for the one-state-at-a-time path an event-driven simulator calls,
``jax.numpy`` for batched, differentiable evaluation), uses only element-wise
arithmetic, ``[..., i]`` indexing and ``xp.stack``/``xp.exp``, and builds on the
formulas in :mod:`qnjax._formulas` instead of restating them. Bell-diagonal order
is qnjax's ``(I, X, Y, Z) = (Φ+, Ψ+, Ψ−, Φ−)``.

Nothing here validates its input; the adapters do.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _formulas as F


class _OneState:
    """NumPy restricted to ONE state (a coefficient vector ``(4,)`` or one ``(2, 2)`` block):
    the array namespace of the scalar path. ``stack`` of scalars is ``np.array`` (several times
    cheaper than ``np.stack`` on 0-d values) and ``exp`` is :func:`math.exp`; the
    arithmetic is NumPy's. Batched input must use ``numpy`` or ``jax.numpy`` instead."""

    __slots__ = ()

    @staticmethod
    def stack(xs, axis=-1):
        return np.array(xs)

    exp = staticmethod(math.exp)
    asarray = staticmethod(np.asarray)


#: Array namespace for the one-state-at-a-time path (see :class:`_OneState`).
one_state = _OneState()


def werner_twirl(lam, xp):
    """Isotropic twirl of Bell-diagonal ``lam``: keep ``F = lam[..., 0]``, spread ``1 − F``
    evenly over the other three coefficients (unnormalised input keeps its mass)."""
    f = lam[..., 0]
    off = (lam.sum(-1) - f) / 3
    return xp.stack([f, off, off, off], axis=-1)


def pauli_x_flip(lam, xp):
    """``lam`` after an ``X`` on one qubit: the Klein convolution with ``(0, 1, 0, 0)``,
    i.e. the permutation ``(I, X, Y, Z) -> (X, I, Z, Y)``."""
    return xp.stack([lam[..., 1], lam[..., 0], lam[..., 3], lam[..., 2]], axis=-1)


def pauli_rate_probs(rate_x, rate_y, rate_z, t, xp):
    """Pauli probabilities ``(p_I, p_X, p_Y, p_Z)`` of one qubit after time ``t`` under
    continuous, independent ``X``, ``Y``, ``Z`` error rates (Lindblad Pauli channel).

    A Pauli ``P`` anticommutes with the two other Paulis, so its Pauli-transfer
    eigenvalue decays as ``exp(−2 (r_Q + r_R) t)`` (``Q, R ≠ P``); the probabilities
    are the inverse Walsh transform of ``(1, λ_X, λ_Y, λ_Z)``. This is the memory
    model of Dür, Hein, Cirac & Briegel, PRA 72, 052326 (2005) and of SeQUeNCe's
    Bell-diagonal memories (``decoherence_errors`` times ``1/coherence_time``).
    ``rate * t`` must be in consistent units.
    """
    lx = xp.exp(-2 * (rate_y + rate_z) * t)
    ly = xp.exp(-2 * (rate_x + rate_z) * t)
    lz = xp.exp(-2 * (rate_x + rate_y) * t)
    return xp.stack(
        [(1 + lx + ly + lz) / 4, (1 + lx - ly - lz) / 4, (1 - lx + ly - lz) / 4, (1 - lx - ly + lz) / 4],
        axis=-1,
    )


def pauli_rate_decohere(lam, rate_x, rate_y, rate_z, t, xp):
    """Bell-diagonal ``lam`` whose one memory qubit idled for ``t`` under Pauli rates:
    the Klein convolution of ``lam`` with :func:`pauli_rate_probs`."""
    return F.klein_conv(lam, pauli_rate_probs(rate_x, rate_y, rate_z, t, xp), xp)


def noisy_recurrence_numerators(a, b, joint_gate_fidelity, same_report, xp):
    """Unnormalised DEJMPS output with imperfect local CNOTs and read-out.

    Model of Zang, Chen, Chong, Suchara, Zhang, Zhou & Kolar, "Entanglement
    distribution in quantum repeater with purification and optimized buffer time",
    arXiv:2305.14573 (Eqs. 8–9), as used by SeQUeNCe: with probability
    ``J = p1 p2`` (``joint_gate_fidelity``) both bilocal CNOTs are ideal; otherwise
    the pairs are fully depolarised (success 1/2, output ``1/4``). The two
    measurement reports agree with the true parities with probability
    ``same_report = η1 η2 + (1 − η1)(1 − η2)``; one flipped report is an ``X`` on
    the measured pair. Returns, in order ``(I, X, Y, Z)``,

    ``J [s N(a, b) + (1 − s) N(a, X b)] + (1 − J) |a| |b| / 8``,

    with ``N`` = :func:`qnjax._formulas.dejmps_numerators`; the success probability
    is the sum of the four entries. Bilinear in ``(a, b)``. For ``J = s = 1`` it is
    DEJMPS (Deutsch et al., PRL 77, 2818 (1996)); on Werner inputs followed by a
    Werner twirl it is BBPSSW (Bennett et al., PRL 76, 722 (1996)).
    """
    j = joint_gate_fidelity
    s = same_report
    good = s * F.dejmps_numerators(a, b, xp) + (1 - s) * F.dejmps_numerators(a, pauli_x_flip(b, xp), xp)
    mass = a.sum(-1) * b.sum(-1)
    return j * good + ((1 - j) * mass / 8)[..., None]


def same_report_probability(eta1, eta2):
    """Probability that two read-outs with fidelities ``η1, η2`` are both right or both wrong."""
    return eta1 * eta2 + (1 - eta1) * (1 - eta2)


# ------------------------------------------------------------------ density matrices

def pauli_block(rho, p, xp):
    """One-qubit Pauli channel ``Σ_k p_k σ_k ρ σ_k`` (``p = (p_I, p_X, p_Y, p_Z)``) on a
    ``(..., 2, 2)`` block, written element-wise (linear in ``ρ`` and ``p``)."""
    pi, px, py, pz = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    r00, r01, r10, r11 = rho[..., 0, 0], rho[..., 0, 1], rho[..., 1, 0], rho[..., 1, 1]
    keep_diag, flip_diag = pi + pz, px + py
    keep_off = pi - pz
    return xp.stack(
        [xp.stack([keep_diag * r00 + flip_diag * r11, keep_off * r01 + (px - py) * r10], axis=-1),
         xp.stack([keep_off * r10 + (px - py) * r01, keep_diag * r11 + flip_diag * r00], axis=-1)],
        axis=-2,
    )
