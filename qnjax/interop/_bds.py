"""Bell-diagonal physics in SeQUeNCe's coefficient order, with NumPy (no SeQUeNCe, no JAX).

The scalar swap, purification and memory-idling rules behind :mod:`qnjax.interop.sequence`,
one state at a time: each converts SeQUeNCe's ``(I, Z, X, Y)`` = ``(Φ+, Φ−, Ψ+, Ψ−)`` to
qnjax's ``(I, X, Y, Z)`` = ``(Φ+, Ψ+, Ψ−, Φ−)``, runs the shared formulas of
:mod:`qnjax._formulas` / :mod:`qnjax.interop._xp` with NumPy, and converts back.
"""

from __future__ import annotations

import numpy as np

from .. import _formulas as F
from . import _xp
from ._xp import one_state as _np1

# SeQUeNCe order (I, Z, X, Y) <-> qnjax order (I, X, Y, Z).
TO_QN = np.array([0, 2, 3, 1])
TO_SQ = np.array([0, 3, 1, 2])


def to_qnjax_order(diag) -> np.ndarray:
    """SeQUeNCe's ``(I, Z, X, Y)`` coefficients -> qnjax's ``(I, X, Y, Z)`` (last axis)."""
    return np.asarray(diag, dtype=float)[..., TO_QN]


def to_sequence_order(lam) -> np.ndarray:
    """qnjax's ``(I, X, Y, Z)`` coefficients -> SeQUeNCe's ``(I, Z, X, Y)`` (last axis)."""
    return np.asarray(lam, dtype=float)[..., TO_SQ]


# ----------------------------------------------------------------- scalar physics
# Each takes/returns NumPy arrays in SeQUeNCe's order and calls the shared formulas.

def bds_swap(left, right, gate_fid: float = 1.0, meas_fid: float = 1.0, twirled: bool = True) -> np.ndarray:
    """Swap of two SeQUeNCe-ordered Bell-diagonal states at a node with two-qubit gate
    fidelity ``gate_fid`` and read-out fidelity ``meas_fid`` (each BSM bit flips with
    probability ``1 − meas_fid``); with ``twirled`` the inputs and the output are
    Werner-twirled, as :class:`EntanglementSwappingA_BDS` does by default.

    Physics: :func:`qnjax._formulas.swap_bell` (gate depolarising ``1 − gate_fid``).
    """
    a = np.asarray(left, dtype=float)[TO_QN]
    b = np.asarray(right, dtype=float)[TO_QN]
    if twirled:
        a, b = _xp.werner_twirl(a, _np1), _xp.werner_twirl(b, _np1)
    out = F.swap_bell(a, b, 1.0 - gate_fid, 1.0 - meas_fid, _np1)
    if twirled:
        out = _xp.werner_twirl(out, _np1)
    return out[TO_SQ]


def _recurrence(kept, meas, p1, p2, eta1, eta2, twirl: bool):
    a = np.asarray(kept, dtype=float)[TO_QN]
    b = np.asarray(meas, dtype=float)[TO_QN]
    if twirl:
        a, b = _xp.werner_twirl(a, _np1), _xp.werner_twirl(b, _np1)
    num = _xp.noisy_recurrence_numerators(a, b, p1 * p2, _xp.same_report_probability(eta1, eta2), _np1)
    p = num.sum()
    out = num / p
    if twirl:
        out = _xp.werner_twirl(out, _np1)
    return p, out[TO_SQ]


def bds_bbpssw(kept, meas, p1=1.0, p2=1.0, eta1=1.0, eta2=1.0):
    """BBPSSW on SeQUeNCe-ordered states (gate fidelities ``p1, p2``, read-out
    fidelities ``eta1, eta2`` of the two nodes). Returns ``(p_success, state)``; the
    output is a Werner state. Same model as :meth:`BBPSSW_BDS.purification_res`
    (arXiv:2305.14573, Eqs. 8–9); physics in :func:`qnjax.interop._xp.noisy_recurrence_numerators`.
    """
    return _recurrence(kept, meas, p1, p2, eta1, eta2, twirl=True)


def bds_dejmps(kept, meas, p1=1.0, p2=1.0, eta1=1.0, eta2=1.0):
    """DEJMPS on SeQUeNCe-ordered states; returns ``(p_success, state)`` (not twirled).
    Same model as :meth:`DEJMPS_BDS.purification_res`."""
    return _recurrence(kept, meas, p1, p2, eta1, eta2, twirl=False)


def bds_decohere(state, rates, t: float) -> np.ndarray:
    """SeQUeNCe-ordered state after one memory idled ``t`` seconds with Pauli error
    rates ``rates = (r_X, r_Y, r_Z)`` (1/s). Physics: :func:`qnjax.interop._xp.pauli_rate_decohere`."""
    lam = np.asarray(state, dtype=float)[TO_QN]
    return _xp.pauli_rate_decohere(lam, rates[0], rates[1], rates[2], t, _np1)[TO_SQ]
