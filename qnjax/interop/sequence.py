"""qnjax as the Bell-diagonal state backend of SeQUeNCe (``pip install "qnjax[sequence]"``).

SeQUeNCe (https://github.com/sequence-toolbox/SeQUeNCe, PyPI ``sequence`` >= 1.3,
Python >= 3.12) keeps its Bell-diagonal physics in four places: the quantum
manager (state storage), :class:`EntanglementSwappingA_BDS` (swap),
:class:`BBPSSW_BDS` / :class:`DEJMPS_BDS` (purification) and
:meth:`Memory.bds_decohere` (memory idling). This module provides qnjax-backed
versions of all four, computed with the shared formulas of :mod:`qnjax._formulas`
(and :mod:`qnjax.interop._xp`) evaluated with NumPy, one state at a time — no JAX
dispatch per event.

Two ways to use it:

1. The formalism ``"qnjax_bell_diagonal"`` (registered on import)::

       from qnjax.interop import sequence as qs
       qs.configure()                    # selects it for manager, swapping, purification
       topo = RouterNetTopo(config)      # config["formalism"] = "qnjax_bell_diagonal"

   Purification protocol names: ``"qnjax_bell_diagonal"`` (BBPSSW, as SeQUeNCe's
   ``"bell_diagonal"``) and ``"qnjax_dejmps_bds"`` (DEJMPS, as ``"dejmps_bds"``).

2. An unmodified SeQUeNCe program that uses ``"bell_diagonal"``::

       with qs.use_qnjax():              # or qs.use_qnjax(); ...; qs.restore()
           run_my_sequence_program()

   While active, the names ``"bell_diagonal"`` (manager, swapping A/B, BBPSSW) and
   ``"dejmps_bds"`` resolve to the qnjax classes. Call it before the topology /
   timeline is built (SeQUeNCe creates the quantum manager in ``Timeline()``).

SeQUeNCe stores Bell-diagonal coefficients in the order ``(I, Z, X, Y)`` =
``(Φ+, Φ−, Ψ+, Ψ−)``; qnjax uses ``(I, X, Y, Z)`` = ``(Φ+, Ψ+, Ψ−, Φ−)``. States
kept by the manager expose SeQUeNCe's order in ``.state`` (so SeQUeNCe code and
user code reading it are unaffected) and qnjax's in ``.bell``; the conversion is
:func:`to_qnjax_order` / :func:`to_sequence_order`. For batched (JAX) work on all
pairs held by a manager use :meth:`QnjaxBellDiagonalManager.bell_array`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _formulas as F
from . import _xp
from ._xp import one_state as _np1

try:  # the simulator is an optional dependency
    from sequence import constants as _sq_constants
    from sequence.components import memory as _sq_memory
    from sequence.components.memory import Memory
    from sequence.entanglement_management.generation import EntanglementGenerationA, EntanglementGenerationB
    from sequence.entanglement_management.generation import single_heralded as _sq_single_heralded
    from sequence.entanglement_management.purification import BBPSSW_BDS, DEJMPS_BDS, PurificationProtocol
    from sequence.entanglement_management.swapping import (
        EntanglementSwappingA,
        EntanglementSwappingA_BDS,
        EntanglementSwappingB,
        EntanglementSwappingB_BDS,
    )
    from sequence.kernel.quantum_manager import QuantumManager, QuantumManagerBellDiagonal
    from sequence.kernel.quantum_state import BellDiagonalState
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "qnjax.interop.sequence needs SeQUeNCe (Python >= 3.12): pip install 'qnjax[sequence]'"
    ) from exc

__all__ = [
    "FORMALISM", "DEJMPS_NAME", "SEQUENCE_FORMALISM",
    "to_qnjax_order", "to_sequence_order",
    "bds_swap", "bds_bbpssw", "bds_dejmps", "bds_decohere",
    "QnjaxBellDiagonalState", "QnjaxBellDiagonalManager",
    "QnjaxSwappingA", "QnjaxSwappingB", "QnjaxBBPSSW", "QnjaxDEJMPS",
    "register", "unregister", "configure", "use_qnjax", "restore", "is_active",
]

#: Name of the qnjax-backed Bell-diagonal formalism (manager, swapping, BBPSSW).
FORMALISM = "qnjax_bell_diagonal"
#: Name of the qnjax-backed DEJMPS purification protocol.
DEJMPS_NAME = "qnjax_dejmps_bds"
#: SeQUeNCe's own Bell-diagonal formalism name (``"bell_diagonal"``).
SEQUENCE_FORMALISM = _sq_constants.BELL_DIAGONAL_STATE_FORMALISM
_SEQUENCE_DEJMPS = _sq_constants.DEJMPS

# SeQUeNCe order (I, Z, X, Y) <-> qnjax order (I, X, Y, Z).
_TO_QN = np.array([0, 2, 3, 1])
_TO_SQ = np.array([0, 3, 1, 2])
_TOL = 1e-9


def to_qnjax_order(diag) -> np.ndarray:
    """SeQUeNCe's ``(I, Z, X, Y)`` coefficients -> qnjax's ``(I, X, Y, Z)`` (last axis)."""
    return np.asarray(diag, dtype=float)[..., _TO_QN]


def to_sequence_order(lam) -> np.ndarray:
    """qnjax's ``(I, X, Y, Z)`` coefficients -> SeQUeNCe's ``(I, Z, X, Y)`` (last axis)."""
    return np.asarray(lam, dtype=float)[..., _TO_SQ]


# ----------------------------------------------------------------- scalar physics
# Each takes/returns NumPy arrays in SeQUeNCe's order and calls the shared formulas.

def bds_swap(left, right, gate_fid: float = 1.0, meas_fid: float = 1.0, twirled: bool = True) -> np.ndarray:
    """Swap of two SeQUeNCe-ordered Bell-diagonal states at a node with two-qubit gate
    fidelity ``gate_fid`` and read-out fidelity ``meas_fid`` (each BSM bit flips with
    probability ``1 − meas_fid``); with ``twirled`` the inputs and the output are
    Werner-twirled, as :class:`EntanglementSwappingA_BDS` does by default.

    Physics: :func:`qnjax._formulas.swap_bell` (gate depolarising ``1 − gate_fid``).
    """
    a = np.asarray(left, dtype=float)[_TO_QN]
    b = np.asarray(right, dtype=float)[_TO_QN]
    if twirled:
        a, b = _xp.werner_twirl(a, _np1), _xp.werner_twirl(b, _np1)
    out = F.swap_bell(a, b, 1.0 - gate_fid, 1.0 - meas_fid, _np1)
    if twirled:
        out = _xp.werner_twirl(out, _np1)
    return out[_TO_SQ]


def _recurrence(kept, meas, p1, p2, eta1, eta2, twirl: bool):
    a = np.asarray(kept, dtype=float)[_TO_QN]
    b = np.asarray(meas, dtype=float)[_TO_QN]
    if twirl:
        a, b = _xp.werner_twirl(a, _np1), _xp.werner_twirl(b, _np1)
    num = _xp.noisy_recurrence_numerators(a, b, p1 * p2, _xp.same_report_probability(eta1, eta2), _np1)
    p = num.sum()
    out = num / p
    if twirl:
        out = _xp.werner_twirl(out, _np1)
    return p, out[_TO_SQ]


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
    lam = np.asarray(state, dtype=float)[_TO_QN]
    return _xp.pauli_rate_decohere(lam, rates[0], rates[1], rates[2], t, _np1)[_TO_SQ]


# ----------------------------------------------------------------- state + manager

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
        if not (lo >= -_TOL and hi <= 1 + _TOL):
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
        return self.state[_TO_QN]


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


# ----------------------------------------------------------------- protocols

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


# ----------------------------------------------------------------- SeQUeNCe hooks

class _BellDiagonalFamily(str):
    """Stands in for the constant ``"bell_diagonal"`` where SeQUeNCe compares the active
    formalism with it (memory arrays, single-heralded generation): equal to
    ``"bell_diagonal"`` and to ``"qnjax_bell_diagonal"``."""

    __slots__ = ()
    _members = frozenset({SEQUENCE_FORMALISM, FORMALISM})

    def __eq__(self, other):
        return other in self._members

    def __ne__(self, other):
        return other not in self._members

    __hash__ = str.__hash__


# Every module-level `BELL_DIAGONAL_STATE_FORMALISM` compared with the active formalism
# outside the methods overridden above (SeQUeNCe 1.3.1). The BDS swapping and
# purification modules compare it only inside swapping_res / purification_res.
_CONSTANT_SITES = (_sq_memory, _sq_single_heralded)

_ORIGINAL_DECOHERE = Memory.bds_decohere
_state: dict[str, Any] = {"registered": False, "active": None}


def _dispatching_bds_decohere(self):
    qm = self.timeline.quantum_manager
    if getattr(qm, "is_qnjax", False):
        qm.decohere(self)
    else:
        _ORIGINAL_DECOHERE(self)


_dispatching_bds_decohere.__doc__ = _ORIGINAL_DECOHERE.__doc__
_dispatching_bds_decohere.__qualname__ = "Memory.bds_decohere"

_REGISTRIES = (
    (QuantumManager, FORMALISM, QnjaxBellDiagonalManager),
    (EntanglementSwappingA, FORMALISM, QnjaxSwappingA),
    (EntanglementSwappingB, FORMALISM, QnjaxSwappingB),
    (PurificationProtocol, FORMALISM, QnjaxBBPSSW),
    (PurificationProtocol, DEJMPS_NAME, QnjaxDEJMPS),
)
_REDIRECTS = (
    (QuantumManager, SEQUENCE_FORMALISM, QnjaxBellDiagonalManager),
    (EntanglementSwappingA, SEQUENCE_FORMALISM, QnjaxSwappingA),
    (EntanglementSwappingB, SEQUENCE_FORMALISM, QnjaxSwappingB),
    (PurificationProtocol, SEQUENCE_FORMALISM, QnjaxBBPSSW),
    (PurificationProtocol, _SEQUENCE_DEJMPS, QnjaxDEJMPS),
)


def register() -> None:
    """Register ``"qnjax_bell_diagonal"`` (manager, swapping A/B, BBPSSW) and
    ``"qnjax_dejmps_bds"`` with SeQUeNCe, and install the two hooks the formalism
    needs: ``Memory.bds_decohere`` dispatches to the manager's :meth:`decohere` when
    the manager is qnjax's (SeQUeNCe's own code otherwise), and the
    ``"bell_diagonal"`` comparisons in memory arrays and single-heralded generation
    also accept ``"qnjax_bell_diagonal"``. Idempotent; done on import."""
    if _state["registered"]:
        return
    for owner, name, cls in _REGISTRIES:
        owner._registry[name] = cls
    family = _BellDiagonalFamily(SEQUENCE_FORMALISM)
    for mod in _CONSTANT_SITES:
        mod.BELL_DIAGONAL_STATE_FORMALISM = family
    Memory.bds_decohere = _dispatching_bds_decohere
    _state["registered"] = True


def unregister() -> None:
    """Undo :func:`register` (and :func:`restore` if :func:`use_qnjax` is active)."""
    restore()
    if not _state["registered"]:
        return
    for owner, name, cls in _REGISTRIES:
        if owner._registry.get(name) is cls:
            del owner._registry[name]
    for mod in _CONSTANT_SITES:
        mod.BELL_DIAGONAL_STATE_FORMALISM = SEQUENCE_FORMALISM
    Memory.bds_decohere = _ORIGINAL_DECOHERE
    _state["registered"] = False


def configure(purification: str = "bbpssw", generation: str = "single_heralded") -> None:
    """Select the qnjax formalism everywhere SeQUeNCe has a global selector: quantum
    manager, swapping A/B, purification (``"bbpssw"`` or ``"dejmps"``) and the
    entanglement-generation type. Call before building the topology; a topology JSON
    should also say ``"formalism": "qnjax_bell_diagonal"``."""
    register()
    names = {"bbpssw": FORMALISM, "dejmps": DEJMPS_NAME}
    if purification not in names:
        raise ValueError(f"purification must be 'bbpssw' or 'dejmps'; got {purification!r}")
    QuantumManager.set_global_manager_formalism(FORMALISM)
    EntanglementSwappingA.set_formalism(FORMALISM)
    EntanglementSwappingB.set_formalism(FORMALISM)
    PurificationProtocol.set_formalism(names[purification])
    EntanglementGenerationA.set_global_type(generation)
    EntanglementGenerationB.set_global_type(generation)


class _Activation:
    """Returned by :func:`use_qnjax`; a context manager that restores on exit."""

    def __init__(self, saved):
        self._saved = saved

    def restore(self) -> None:
        restore()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        restore()


def use_qnjax() -> _Activation:
    """Make SeQUeNCe's ``"bell_diagonal"`` formalism (and ``"dejmps_bds"``) run on qnjax.

    Replaces the classes registered under those names (quantum manager, swapping A/B,
    BBPSSW, DEJMPS) by the qnjax ones; a program that selects ``"bell_diagonal"``
    then runs unchanged on qnjax. Undo with :func:`restore`, or use the return value
    as a context manager. Idempotent, not reentrant: a second call returns the same
    activation, and leaving any ``with`` block (or calling :func:`restore`) gives the
    names back. Build the topology / ``Timeline`` after calling it: a timeline built
    before keeps the manager it was given. Comparisons with the name
    ``"bell_diagonal"`` (SeQUeNCe's and the user's) keep working, since the name is
    unchanged.
    """
    register()
    if _state["active"] is None:
        saved = [(owner, name, owner._registry.get(name)) for owner, name, _ in _REDIRECTS]
        for owner, name, cls in _REDIRECTS:
            owner._registry[name] = cls
        _state["active"] = _Activation(saved)
    return _state["active"]


def restore() -> None:
    """Give ``"bell_diagonal"`` and ``"dejmps_bds"`` back to SeQUeNCe's own classes."""
    act = _state["active"]
    if act is None:
        return
    for owner, name, cls in act._saved:
        if cls is None:
            owner._registry.pop(name, None)
        else:
            owner._registry[name] = cls
    _state["active"] = None


def is_active() -> bool:
    """Whether :func:`use_qnjax` is in effect."""
    return _state["active"] is not None


register()
