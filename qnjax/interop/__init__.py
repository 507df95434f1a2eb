"""Adapters that let other quantum-network simulators use qnjax as their state engine.

* :mod:`qnjax.interop.sequence` (extra ``qnjax[sequence]``, Python >= 3.12):
  a SeQUeNCe formalism ``"qnjax_bell_diagonal"`` and :func:`~qnjax.interop.sequence.use_qnjax`,
  which runs an unmodified ``"bell_diagonal"`` SeQUeNCe program on qnjax.
* :mod:`qnjax.interop.requsim` (extra ``qnjax[requsim]``): qnjax-backed noise
  channels, purification protocols and Bell-state measurements for requsim.

This package imports nothing heavy; import the submodule you need (it imports the
simulator). The one-state-at-a-time paths call the formulas of
:mod:`qnjax._formulas` with NumPy, so no JAX dispatch happens per simulator event.
"""

__all__ = ["sequence", "requsim"]
