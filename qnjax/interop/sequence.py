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

try:  # the simulator is an optional dependency
    import sequence  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "qnjax.interop.sequence needs SeQUeNCe (Python >= 3.12): pip install 'qnjax[sequence]'"
    ) from exc

from ._bds import bds_bbpssw, bds_decohere, bds_dejmps, bds_swap, to_qnjax_order, to_sequence_order
from ._sequence_classes import (QnjaxBBPSSW, QnjaxBellDiagonalManager, QnjaxBellDiagonalState, QnjaxDEJMPS,
                                QnjaxSwappingA, QnjaxSwappingB)
from ._sequence_hooks import (DEJMPS_NAME, FORMALISM, SEQUENCE_FORMALISM, configure, is_active, register, restore,
                              unregister, use_qnjax)

__all__ = [
    "FORMALISM", "DEJMPS_NAME", "SEQUENCE_FORMALISM",
    "to_qnjax_order", "to_sequence_order",
    "bds_swap", "bds_bbpssw", "bds_dejmps", "bds_decohere",
    "QnjaxBellDiagonalState", "QnjaxBellDiagonalManager",
    "QnjaxSwappingA", "QnjaxSwappingB", "QnjaxBBPSSW", "QnjaxDEJMPS",
    "register", "unregister", "configure", "use_qnjax", "restore", "is_active",
]

register()
