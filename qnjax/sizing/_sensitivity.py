"""Elasticities of the optimized secret-key rate with respect to every hardware parameter.

For a parameter ``θ`` in improvement form (:mod:`._params`: probabilities of success or of
no error, memory times, preparation time, attenuation) the elasticity is
``ε = ∂ log R / ∂ log θ``: a 1 % larger ``θ`` gives about ``ε`` % more key (``R`` in bits/s).

Two derivatives are reported:

* ``elasticity`` (design re-optimized): the derivative of the *optimized* rate
  ``R*(θ) = max_x R(x, θ)``. By the envelope theorem (e.g. Mas-Colell, Whinston & Green,
  *Microeconomic Theory* (1995), Sec. M.L) it equals the partial derivative ``∂R/∂θ`` at the
  optimal design ``x*``, the design variables held at their optimum: repeater positions,
  and cut-offs **in steps of the clock** (the integer variables of the search; the optimal
  integer design is locally constant in ``θ`` unless two designs tie). It is what
  re-running ``qnjax optimize`` on the improved hardware gives for small improvements.
* ``elasticity_fixed_design``: the deployed chain kept as it is, cut-offs held **in seconds**;
  it differs from the first only where the hardware moves the clock (the preparation time:
  the clock is the longest attempt, ``prep`` plus the light's travel).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..design.problems import PhysicalScenario
from ._design import design_of, rate_grad
from ._params import check_names, file_value


@dataclass(frozen=True)
class SensitivityResult:
    """Elasticities of the optimized key rate.

    Attributes:
        skr_bits_per_s: the optimized key rate (bits/s).
        design: the optimized design (``segments``, ``positions_km``, ``protocol``, ``cutoff_s``…).
        rows: one dict per parameter, ranked by ``|elasticity|``: ``name``, ``label``, ``form``
            (``"p"``: probability of success / no error, ``"up"``: larger is better,
            ``"down"``: smaller is better), ``value`` (the parameter as in the scenario
            file, e.g. the gate's depolarizing probability, the dark-count rate in Hz), ``theta`` (its improvement form), ``elasticity`` (``∂ log R*/∂ log θ``,
            design re-optimized), ``elasticity_fixed_design`` (cut-offs fixed in seconds),
            ``gain_per_percent`` (% more key for a 1 % better parameter: ``±elasticity``,
            the sign of the better direction).
        wall_s: seconds.
    """

    skr_bits_per_s: float
    design: dict
    rows: tuple
    wall_s: float
    derivative: str = field(default="envelope: design held at its optimum (positions, cut-offs in steps)")

    def to_json(self) -> dict:
        return {"skr_bits_per_s": self.skr_bits_per_s, "design": self.design,
                "derivative": self.derivative, "parameters": [dict(r) for r in self.rows],
                "wall_s": self.wall_s}


def sensitivity(scenario: PhysicalScenario, *, result=None, parameters=None, seed=None,
                n_starts=None, n_steps=None, progress: bool = False) -> SensitivityResult:
    """Elasticities ``∂ log R / ∂ log θ`` of the optimized key rate (bits/s) with respect to
    every hardware parameter ``θ`` of the heralding and of every station (see module doc).

    Args:
        scenario: a :class:`qnjax.PhysicalScenario`.
        result: its :func:`qnjax.optimize` result (optimized here when ``None``).
        parameters: names to report (default: all of :func:`._params.parameters`).
        seed, n_starts, n_steps, progress: passed to :func:`qnjax.optimize`.
    """
    if not isinstance(scenario, PhysicalScenario):
        raise TypeError(f"scenario must be a PhysicalScenario; got {type(scenario).__name__}")
    t0 = time.perf_counter()
    params = check_names(scenario, None if parameters is None else list(parameters))
    if result is None:
        from ..design import optimize

        result = optimize(scenario, seed=seed, n_starts=n_starts, n_steps=n_steps, progress=progress)
    design = design_of(result)
    theta = np.array([p.theta for p in params])
    v, g = rate_grad(scenario, design, params, theta)
    if not math.isfinite(v):  # before compiling the fixed-design gradient
        raise ValueError("sensitivity: the optimized design yields no key (rate 0); elasticities of "
                         "a zero rate are undefined")
    _, gf = rate_grad(scenario, design, params, theta, fixed_seconds=True)
    rows = []
    for p, t, e, ef in zip(params, theta, g, gf):
        sign = -1.0 if p.form == "down" else 1.0
        rows.append(dict(name=p.name, label=p.label, form=p.form, value=file_value(scenario, p, t), theta=float(t),
                         elasticity=float(e), elasticity_fixed_design=float(ef),
                         gain_per_percent=float(sign * e)))
    rows.sort(key=lambda r: -abs(r["elasticity"]))
    return SensitivityResult(float(math.exp(v)), design.to_json(), tuple(rows), time.perf_counter() - t0)


__all__ = ["sensitivity", "SensitivityResult"]
