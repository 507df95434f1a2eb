"""Design optimizer: gradient search over cut-offs, purification rounds, repeater spacing and
repeater count for maximal secret-key rate, through the exact delivery engine.

* :func:`optimize` takes a :class:`StepProblem` (abstract step model, bits per step) or a
  :class:`PhysicalScenario` (physical units, bits per second) and returns an
  :class:`OptimizeResult` pytree (design, exact key rate of the integer design, history).
* :func:`sweep` optimizes a scenario at many distances in one batched run per structure.
* :func:`load_scenario` reads a TOML scenario (fields in ``docs/scenario.md``).

Method (details in :mod:`qnjax.optimize._common`, :mod:`.step`, :mod:`.search`): Adam on an
unconstrained reparametrization (``τ = exp(u)``; segment lengths by softmax or bounded
stick-breaking), many starts vmapped in one jitted Adam step, a smooth log-rate surrogate where the
clipped key rate is flat at zero, then rounding of the cut-offs and an exhaustive search of
the integer neighbourhood; discrete structure choices in a short outer loop.
"""

import sys as _sys
import types as _types

from .api import optimize, sweep
from .problems import (Heralding, Memory, Multiplexing, PhysicalScenario, Search, Station,
                       StationOverride, StepProblem)
from .result import OptimizeResult
from .search import NoFeasibleDesign
from .scenario import default_scenario, load_scenario, scenario_from_dict, scenario_to_dict

__all__ = [
    "optimize", "sweep", "OptimizeResult", "StepProblem", "PhysicalScenario", "Heralding",
    "Memory", "Station", "StationOverride", "Search", "load_scenario", "scenario_from_dict", "scenario_to_dict",
    "default_scenario", "Multiplexing", "NoFeasibleDesign",
]


# ``qnjax.optimize`` names both this package and the function: importing the package
# (``from qnjax.optimize import ...``) binds the module as the attribute ``qnjax.optimize``,
# so the module itself is made callable and forwards to :func:`optimize`.
class _CallableModule(_types.ModuleType):
    def __call__(self, *args, **kwargs):
        return optimize(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
