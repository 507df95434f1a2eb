"""Design optimizer: gradient search over cut-offs, purification rounds, repeater spacing and
repeater count for maximal secret-key rate, through the exact delivery engine.

* :func:`optimize` takes a :class:`StepProblem` (abstract step model, bits per step) or a
  :class:`PhysicalScenario` (physical units, bits per second) and returns an
  :class:`OptimizeResult` pytree (design, exact key rate of the integer design, history).
* :func:`sweep` optimizes a scenario at many distances in one batched run per structure
  (the CLI's ``qnjax sweep``). Not to be confused with :func:`qnjax.sweep_designs`, which
  *evaluates* a grid of given designs (no optimization) spread over devices and processes.
* :func:`load_scenario` reads a TOML scenario (fields in ``docs/scenario.md``).

This package was ``qnjax.optimize``; that path is a deprecated alias of this one (same module
objects), and ``qnjax.optimize`` itself is the function :func:`optimize`.

Method (details in :mod:`qnjax.design._common`, :mod:`.step`, :mod:`.search`): Adam on an
unconstrained reparametrization (``τ = exp(u)``; segment lengths by softmax or bounded
stick-breaking), many starts vmapped in one jitted Adam step, a smooth log-rate surrogate where the
clipped key rate is flat at zero, then rounding of the cut-offs and an exhaustive search of
the integer neighbourhood; discrete structure choices in a short outer loop.
"""

from .api import optimize, sweep
from .problems import (Heralding, Memory, Multiplexing, PhysicalScenario, Search, Station,
                       StationOverride, StepProblem)
from .result import OptimizeResult
from .sweep_result import SweepResult, SweepRow
from .search import NoFeasibleDesign
from .scenario import default_scenario, load_scenario, scenario_from_dict, scenario_to_dict

__all__ = [
    "optimize", "sweep", "OptimizeResult", "SweepResult", "SweepRow", "StepProblem", "PhysicalScenario", "Heralding",
    "Memory", "Station", "StationOverride", "Search", "load_scenario", "scenario_from_dict", "scenario_to_dict",
    "default_scenario", "Multiplexing", "NoFeasibleDesign",
]


# deprecated: ``qnjax.optimize`` was this package; attribute paths through the function that now
# has that name (``qnjax.optimize.NoFeasibleDesign``) keep working
from .._aliases import attach_legacy as _attach_legacy  # noqa: E402

_attach_legacy(optimize, __name__, __all__)
