"""SeQUeNCe hooks of the qnjax formalism: registration under ``"qnjax_bell_diagonal"`` /
``"qnjax_dejmps_bds"``, the global selectors, and :func:`use_qnjax` (SeQUeNCe's own
``"bell_diagonal"`` names run on qnjax). Public path: :mod:`qnjax.interop.sequence`.
"""

from __future__ import annotations

from typing import Any

from sequence import constants as _sq_constants
from sequence.components import memory as _sq_memory
from sequence.components.memory import Memory
from sequence.entanglement_management.generation import EntanglementGenerationA, EntanglementGenerationB
from sequence.entanglement_management.generation import single_heralded as _sq_single_heralded
from sequence.entanglement_management.purification import PurificationProtocol
from sequence.entanglement_management.swapping import EntanglementSwappingA, EntanglementSwappingB
from sequence.kernel.quantum_manager import QuantumManager

from ._sequence_classes import QnjaxBBPSSW, QnjaxBellDiagonalManager, QnjaxDEJMPS, QnjaxSwappingA, QnjaxSwappingB

#: Name of the qnjax-backed Bell-diagonal formalism (manager, swapping, BBPSSW).
FORMALISM = "qnjax_bell_diagonal"
#: Name of the qnjax-backed DEJMPS purification protocol.
DEJMPS_NAME = "qnjax_dejmps_bds"
#: SeQUeNCe's own Bell-diagonal formalism name (``"bell_diagonal"``).
SEQUENCE_FORMALISM = _sq_constants.BELL_DIAGONAL_STATE_FORMALISM
_SEQUENCE_DEJMPS = _sq_constants.DEJMPS


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
CONSTANT_SITES = (_sq_memory, _sq_single_heralded)

ORIGINAL_DECOHERE = Memory.bds_decohere
_state: dict[str, Any] = {"registered": False, "active": None}


def dispatching_bds_decohere(self):
    qm = self.timeline.quantum_manager
    if getattr(qm, "is_qnjax", False):
        qm.decohere(self)
    else:
        ORIGINAL_DECOHERE(self)


dispatching_bds_decohere.__doc__ = ORIGINAL_DECOHERE.__doc__
dispatching_bds_decohere.__qualname__ = "Memory.bds_decohere"

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
    for mod in CONSTANT_SITES:
        mod.BELL_DIAGONAL_STATE_FORMALISM = family
    Memory.bds_decohere = dispatching_bds_decohere
    _state["registered"] = True


def unregister() -> None:
    """Undo :func:`register` (and :func:`restore` if :func:`use_qnjax` is active)."""
    restore()
    if not _state["registered"]:
        return
    for owner, name, cls in _REGISTRIES:
        if owner._registry.get(name) is cls:
            del owner._registry[name]
    for mod in CONSTANT_SITES:
        mod.BELL_DIAGONAL_STATE_FORMALISM = SEQUENCE_FORMALISM
    Memory.bds_decohere = ORIGINAL_DECOHERE
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
