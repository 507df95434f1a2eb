"""Scale-out: exact-engine design sweeps sharded over every device, on one host or many.

The public path of the scale-out functions, implemented by idea in private modules:

* start-up and devices (``qnjax._runtime``): :func:`initialize` (``qnjax.init_distributed``)
  joins a multi-process run (``jax.distributed``; arguments, ``QNJAX_*`` variables, or
  SLURM / Open MPI); :func:`make_mesh` lays every process's devices on one 1-D mesh;
* sharded sweeps (``qnjax._design_sweep``): :func:`sweep_designs` evaluates a list of designs
  (:func:`design_grid` builds Cartesian grids) with :func:`qnjax.delivery`, the design axis
  sharded over the mesh in bounded steps, equal to the unsharded call; process 0 writes and
  returns the results;
* grouped work (``qnjax._group_runs``): :func:`run_in_groups` for rows that are not design
  arrays (the optimizer's distance sweeps);
* results files (``qnjax._results_file``): :class:`ResultsWriter`, the append-only,
  resumable JSON-lines file behind ``out=``.

Launching: ``docs/scale-out.md``.
"""

from __future__ import annotations

# PARAMS, OUTPUTS and AXIS: module attributes kept from before the split
from ._design_sweep import DEFAULT_OUTPUTS, OUTPUTS, PARAMS, design_grid, sweep_designs  # noqa: F401
from ._group_runs import run_in_groups
from ._results_file import ResultsWriter
from ._runtime import AXIS, initialize, make_mesh  # noqa: F401

init_distributed = initialize  # the top-level name (qnjax.init_distributed)

__all__ = ["initialize", "design_grid", "sweep_designs", "ResultsWriter", "make_mesh",
           "run_in_groups", "DEFAULT_OUTPUTS", "init_distributed"]
