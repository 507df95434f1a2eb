"""SeQUeNCe classes whose Bell-diagonal physics is qnjax's: the pair state, the quantum
manager, swapping and purification protocols (public path: :mod:`qnjax.interop.sequence`).

States keep SeQUeNCe's order ``(I, Z, X, Y)`` in ``.state`` and expose qnjax's
``(I, X, Y, Z)`` in ``.bell``; the physics is :mod:`qnjax.interop._bds`.
"""

from __future__ import annotations

import numpy as np
from sequence.components.memory import Memory
from sequence.entanglement_management.purification import BBPSSW_BDS, DEJMPS_BDS
from sequence.entanglement_management.swapping import EntanglementSwappingA_BDS, EntanglementSwappingB_BDS
from sequence.kernel.quantum_manager import QuantumManagerBellDiagonal
from sequence.kernel.quantum_state import BellDiagonalState

from ._bds import TO_QN, bds_bbpssw, bds_decohere, bds_dejmps, bds_swap, to_qnjax_order, to_sequence_order

TOL = 1e-9  # rounding allowed outside [0, 1] for a stored coefficient


class QnjaxBellDiagonalState(BellDiagonalState):
    """A Bell-diagonal pair held by :class:`QnjaxBellDiagonalManager`.

    ``state``: coefficients in SeQUeNCe's order ``(I, Z, X, Y)`` (what SeQUeNCe reads);
    ``bell``: the same in qnjax's order ``(I, X, Y, Z)``; ``keys``: the two memory keys.
    Validation is SeQUeNCe's (four probabilities summing to one) with a ``1e-9``
    tolerance for rounding.
    """

    __slots__ = ()

    def __init__(self, diag_elems, keys):  # noqa: D107 - see class docstring
        arr = np.array(diag_elems, dtype=float)
        if arr.shape != (4,):
            raise ValueError("Bell diagonal state must have 4 diagonal elements.")
        lo, hi = arr.min(), arr.max()
        if not (lo >= -TOL and hi <= 1 + TOL):
            raise ValueError("Bell diagonal elements must be probabilities between 0 and 1.")
        if abs(arr.sum() - 1) > 1e-5 + 1e-8:
            raise ValueError("Bell diagonal elements must sum to 1.")
        if len(keys) != 2:
            raise ValueError("BellDiagonalState is only supported for 2-qubit entangled states.")
        self.state = arr
        self.keys = keys

    @property
    def bell(self) -> np.ndarray:
        """Coefficients in qnjax's order ``(I, X, Y, Z) = (Φ+, Ψ+, Ψ−, Φ−)``."""
        return self.state[TO_QN]


class QnjaxBellDiagonalManager(QuantumManagerBellDiagonal):
    """SeQUeNCe quantum manager for Bell-diagonal pairs whose physics is qnjax's.

    Drop-in for :class:`QuantumManagerBellDiagonal` (same interface, same order of
    ``.state``); adds :meth:`decohere` (used by ``Memory.bds_decohere``),
    :meth:`get_bell` / :meth:`set_bell` in qnjax's order, and :meth:`bell_array` for
    batched work on every pair it holds.
    """

    is_qnjax = True

    def set(self, keys: list[int], diag_elems) -> None:
        """Set the pair ``keys`` to ``diag_elems`` (SeQUeNCe order); a key list whose
        length is not 2 removes those keys (as SeQUeNCe's manager does)."""
        if len(keys) != 2:
            states = self.states
            for key in keys:
                states.pop(key, None)
            return
        new_state = QnjaxBellDiagonalState(diag_elems, keys)
        self.states[keys[0]] = new_state
        self.states[keys[1]] = new_state

    def get_bell(self, key: int) -> np.ndarray:
        """Coefficients of the pair holding ``key`` in qnjax's order ``(I, X, Y, Z)``."""
        return to_qnjax_order(self.get(key).state)

    def set_bell(self, keys: list[int], lam) -> None:
        """Set the pair ``keys`` from coefficients in qnjax's order ``(I, X, Y, Z)``."""
        self.set(keys, to_sequence_order(lam))

    def bell_array(self):
        """All pairs held, once each: ``(keys, lam)`` with ``keys`` a list of key pairs and
        ``lam`` an ``(N, 4)`` NumPy array in qnjax's order (``jnp.asarray`` it to use the
        batched qnjax API, e.g. ``qnjax.key_fraction_bb84(lam)``)."""
        seen, keys, rows = set(), [], []
        for st in self.states.values():
            if id(st) in seen:
                continue
            seen.add(id(st))
            keys.append(tuple(st.keys))
            rows.append(st.state)
        lam = to_qnjax_order(np.array(rows, dtype=float).reshape(-1, 4))
        return keys, lam

    def decohere(self, memory: Memory) -> None:
        """``Memory.bds_decohere`` for this manager: Pauli-rate idling of ``memory`` since its
        ``last_update_time`` (same bookkeeping as SeQUeNCe's), computed by qnjax."""
        errors = memory.decoherence_errors
        if errors is None:
            return
        now = memory.timeline.now()
        last = memory.last_update_time
        time = (now - last) * 1e-12  # idling time in s
        if time > 0 and last > 0:
            rate = memory.decoherence_rate
            state = self.states[memory.qstate_key]
            new = bds_decohere(state.state, (rate * errors[0], rate * errors[1], rate * errors[2]), time)
            self.set(state.keys, new)
            memory.last_update_time = now


def _nodes(protocol):
    own = protocol.owner
    return own, own.timeline


class QnjaxSwappingA(EntanglementSwappingA_BDS):
    """:class:`EntanglementSwappingA_BDS` whose :meth:`swapping_res` is :func:`bds_swap`."""

    def swapping_res(self) -> np.ndarray:
        own, tl = _nodes(self)
        qm = tl.quantum_manager
        left = qm.get(self.left_memo.qstate_key).state
        right = qm.get(self.right_memo.qstate_key).state
        return bds_swap(left, right, own.gate_fid, own.meas_fid, self.is_twirled)


class QnjaxSwappingB(EntanglementSwappingB_BDS):
    """:class:`EntanglementSwappingB_BDS` (no physics of its own; memories decohere via qnjax)."""


def _purification_inputs(protocol):
    own, tl = _nodes(protocol)
    qm = tl.quantum_manager
    kept = qm.get(protocol.kept_memo.qstate_key).state
    meas = qm.get(protocol.meas_memo.qstate_key).state
    remote = tl.get_entity_by_name(protocol.remote_node_name)
    return kept, meas, own.gate_fid, remote.gate_fid, own.meas_fid, remote.meas_fid


class QnjaxBBPSSW(BBPSSW_BDS):
    """:class:`BBPSSW_BDS` whose :meth:`purification_res` is :func:`bds_bbpssw`."""

    def purification_res(self):
        kept, meas, p1, p2, eta1, eta2 = _purification_inputs(self)
        assert p1 * p2 > 0, "The BBPSSW model requires nonzero gate fidelities."
        return bds_bbpssw(kept, meas, p1, p2, eta1, eta2)


class QnjaxDEJMPS(DEJMPS_BDS):
    """:class:`DEJMPS_BDS` whose :meth:`purification_res` is :func:`bds_dejmps`."""

    def purification_res(self):
        kept, meas, p1, p2, eta1, eta2 = _purification_inputs(self)
        return bds_dejmps(kept, meas, p1, p2, eta1, eta2)
