"""Hardware requirements and sensitivities: which hardware parameter to improve, and by how
much, to reach a target secret-key rate.

:func:`sensitivity` (elasticities of the optimized key rate), :func:`requirements` (the
least-cost hardware reaching a target, cost model of da Silva et al., Quantum Sci. Technol. 6,
035007 (2021)), :func:`hardware_parameters` (the parameters of a scenario), and
:func:`write_scenario` (a scenario as a TOML file ``qnjax optimize`` reads).
"""

from ._params import Param
from ._params import parameters as hardware_parameters
from ._toml import scenario_toml, write_scenario
from ._sensitivity import SensitivityResult, sensitivity
from ._solve import RequirementsResult, TargetUnreachable, requirements, requirements_curve

__all__ = ["sensitivity", "SensitivityResult", "requirements", "requirements_curve", "RequirementsResult", "TargetUnreachable",
           "hardware_parameters", "Param", "scenario_toml", "write_scenario"]


# ``qnjax.requirements`` names both this package and the function (as ``qnjax.optimize`` does):
# importing the package binds the module as the attribute ``qnjax.requirements``, so the
# module itself is made callable and forwards to :func:`requirements`.
import sys as _sys  # noqa: E402
import types as _types  # noqa: E402


class _CallableModule(_types.ModuleType):
    def __call__(self, *args, **kwargs):
        return requirements(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
