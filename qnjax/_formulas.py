"""The closed-form physics, written once against an array namespace ``xp``.

Each function takes arrays (or Python floats) and a namespace with ``stack``
(``jax.numpy`` for the batched, differentiable path; ``numpy`` for the scalar path
that event-driven simulators call one state at a time). Only element-wise
arithmetic and ``[..., i]`` indexing are used, so the two paths are the same
physics by construction. Bell-diagonal order ``(I, X, Y, Z) = (Φ+, Ψ+, Ψ−, Φ−)``.
No validation happens here; the public wrappers validate.
"""

from __future__ import annotations


def klein_conv(a, b, xp):
    """Klein-group (Z2 x Z2) convolution ``c[k] = sum_{i j = k} a[i] b[j]``.

    This is both the entanglement swap of two Bell-diagonal states (ideal BSM
    with Pauli correction) and the action of a one-qubit Pauli channel ``b`` on a
    Bell-diagonal state ``a``. Bilinear: valid for unnormalised states too.
    Dür, Briegel, Cirac & Zoller, PRA 59, 169 (1999).
    """
    a0, a1, a2, a3 = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    b0, b1, b2, b3 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return xp.stack(
        [
            a0 * b0 + a1 * b1 + a2 * b2 + a3 * b3,
            a0 * b1 + a1 * b0 + a2 * b3 + a3 * b2,
            a0 * b2 + a2 * b0 + a1 * b3 + a3 * b1,
            a0 * b3 + a3 * b0 + a1 * b2 + a2 * b1,
        ],
        axis=-1,
    )


def bsm_error_pauli(measurement_error, xp):
    """Pauli probabilities ``(I, X, Y, Z)`` on the output of a BSM whose two outcome
    bits flip independently with probability ``e``: the parity bit sets the X
    correction, the phase bit the Z correction, so one wrong bit leaves an X or a Z
    error and two wrong bits a Y error: ``((1−e)², e(1−e), e², e(1−e))``. Read-out
    noise model of Briegel, Dür, Cirac & Zoller, PRL 81, 5932 (1998); checked against
    the CNOT + Hadamard + Z-measurement circuit in :func:`qnjax.circuits.swap_dm`."""
    e = measurement_error
    return xp.stack([(1 - e) * (1 - e), e * (1 - e), e * e, e * (1 - e)], axis=-1)


def swap_bell(a, b, gate_depolarizing, measurement_error, xp):
    """Entanglement swap of Bell-diagonal ``a`` (qubits A, B1) and ``b`` (B2, C).

    Ideal part: Klein convolution (Dür, Briegel, Cirac & Zoller, PRA 59, 169
    (1999)). Noisy BSM (Briegel, Dür, Cirac & Zoller, PRL 81, 5932 (1998)): the
    two-qubit gate depolarises B1 B2 with probability ``gate_depolarizing``
    (output becomes ``1/4``), and each outcome bit flips with probability
    ``measurement_error`` (a Pauli channel on the output).
    """
    c = klein_conv(a, b, xp)
    g = xp.asarray(gate_depolarizing)
    mass = a.sum(-1) * b.sum(-1)
    c = (1 - g)[..., None] * c + (g * mass / 4)[..., None]
    return klein_conv(c, bsm_error_pauli(measurement_error, xp), xp)


def dejmps_numerators(a, b, xp):
    """DEJMPS (Deutsch et al., PRL 77, 2818 (1996)) unnormalised output.

    With ``A = Φ+, B = Ψ−, C = Ψ+, D = Φ−`` (our indices 0, 2, 1, 3):
    ``A' ∝ A1 A2 + B1 B2``, ``B' ∝ C1 D2 + D1 C2``, ``C' ∝ C1 C2 + D1 D2``,
    ``D' ∝ A1 B2 + B1 A2``; the success probability is the sum. Returned in our
    order ``(I, X, Y, Z)``. Bilinear in ``(a, b)``.
    """
    A1, C1, B1, D1 = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    A2, C2, B2, D2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return xp.stack(
        [A1 * A2 + B1 * B2, C1 * C2 + D1 * D2, C1 * D2 + D1 * C2, A1 * B2 + B1 * A2], axis=-1
    )


def bbpssw_fidelity(f1, f2):
    """BBPSSW (Bennett et al., PRL 76, 722 (1996)) on Werner inputs of fidelities ``f1, f2``.

    Returns ``(p_success, f_out)``:
    ``p = f1 f2 + f1 (1−f2)/3 + (1−f1) f2/3 + 5 (1−f1)(1−f2)/9``,
    ``f_out = [f1 f2 + (1−f1)(1−f2)/9] / p``.
    """
    p = f1 * f2 + f1 * (1 - f2) / 3 + (1 - f1) * f2 / 3 + 5 * (1 - f1) * (1 - f2) / 9
    num = f1 * f2 + (1 - f1) * (1 - f2) / 9
    return p, num / p


def bbpssw_werner_unnormalized(m1, w1, m2, w2):
    """BBPSSW in Werner form, bilinear in ``(m, m w)`` pairs.

    For Werner inputs ``p = (1 + w1 w2)/2`` and ``p w_out = (w1 + w2 + 4 w1 w2)/6``
    (algebra from :func:`bbpssw_fidelity` with ``F = (1 + 3w)/4``). Here ``m`` is a
    probability weight and ``w`` the weighted Werner parameter ``m w``, so the
    result ``(m_out, w_out)`` is again weighted: ``m_out = (m1 m2 + w1 w2)/2``,
    ``w_out = (w1 m2 + m1 w2 + 4 w1 w2)/6``.
    """
    return (m1 * m2 + w1 * w2) / 2, (w1 * m2 + m1 * w2 + 4 * w1 * w2) / 6


def t1t2_pauli(t, t1, t2, xp):
    """Pauli twirl ``(p_I, p_X, p_Y, p_Z)`` of one qubit idling for ``t`` with ``T1, T2``.

    Pauli-transfer diagonal ``(1, e2, e2, e1)`` with ``e1 = exp(−t/T1)``,
    ``e2 = exp(−t/T2)`` (Nielsen & Chuang §8.3; twirling as in Ghosh, Fowler &
    Geller, PRA 86, 062318 (2012)): ``p_X = p_Y = (1 − e1)/4``,
    ``p_Z = (1 + e1 − 2 e2)/4``. Requires ``T2 <= 2 T1``.
    """
    e1 = xp.exp(-t / t1)
    e2 = xp.exp(-t / t2)
    px = (1 - e1) / 4
    return xp.stack([(1 + e1 + 2 * e2) / 4, px, px, (1 + e1 - 2 * e2) / 4], axis=-1)


def t1t2_block(rho, t, t1, t2, xp):
    """Amplitude + phase damping of one qubit idling for ``t`` with ``T1``, ``T2``, acting
    on a ``(..., 2, 2)`` block (linear, so it also maps the off-diagonal operator blocks
    a simulator hands a one-qubit map).

    ``ρ00 += γ ρ11``, ``ρ11 *= 1 − γ``, ``ρ01, ρ10 *= exp(−t/T2)``, ``γ = 1 − exp(−t/T1)``:
    amplitude damping followed by dephasing (Nielsen & Chuang §8.3.5–8.3.6), written
    element-wise so it is smooth in ``t`` (the Kraus form has ``√γ``). ``T2 <= 2 T1`` for a valid channel.
    """
    e1 = xp.exp(-t / t1)
    e2 = xp.exp(-t / t2)
    r00, r01, r10, r11 = rho[..., 0, 0], rho[..., 0, 1], rho[..., 1, 0], rho[..., 1, 1]
    return xp.stack(
        [xp.stack([r00 + (1 - e1) * r11, e2 * r01], axis=-1),
         xp.stack([e2 * r10, e1 * r11], axis=-1)],
        axis=-2,
    )
