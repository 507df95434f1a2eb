"""Hardware sizing: sensitivities and requirements, i.e. which hardware parameter to improve,
and by how much, to reach a target secret-key rate.

The functions are also top-level names (``qnjax.sensitivity``, ``qnjax.requirements``).

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

