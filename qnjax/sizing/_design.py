"""The optimized design of a scenario as a differentiable function of the hardware.

:func:`design_of` reads the integer design of :func:`qnjax.optimize` (structure, segment
lengths, cut-offs in steps, truncation, link knobs); :func:`log_rate` is the exact
``log`` key rate (bits/s) of that design from :func:`qnjax.design.chain.chain_eval`, the
same evaluation ``qnjax optimize`` reports, with the hardware built from ``θ``
(:func:`._params.hardware_from_theta`).
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..design.chain import chain_eval
from ..design.problems import PhysicalScenario
from ..design.records import Design, design_of  # noqa: F401  (re-exported for the sizing modules)
from ._params import Param, hardware_from_theta


def _hw(scen, design: Design, params, theta):
    hw = hardware_from_theta(scen, design.structure, params, theta)
    dt = hw["eff"].dtype
    if design.alpha is not None:
        hw["alpha"] = jnp.asarray(design.alpha, dt)
    if design.modes is not None:
        hw["modes"] = jnp.asarray(design.modes, dt)
    return hw


def figures(scen: PhysicalScenario, design: Design, params: list[Param], theta, tau=None,
            fixed_seconds: bool = False, shift: float = 0.0):
    """Exact figures of ``design`` on the hardware ``θ``. ``tau``: cut-offs in steps (default
    the design's); ``fixed_seconds``: cut-offs held at the design's seconds (steps = seconds /
    clock, the clock following the hardware)."""
    hw = _hw(scen, design, params, theta)
    dt = hw["eff"].dtype
    lengths = jnp.asarray(design.lengths_km, dt)
    if fixed_seconds and design.structure.n_nodes:
        from ..design.chain import link_model

        clock = jnp.max(link_model(scen.heralding.scheme, hw, lengths).duration_s)
        tau = jnp.asarray(design.cutoff_s, dt) / clock + shift
    elif tau is None:
        tau = jnp.asarray(design.cutoff, dt)
    return chain_eval(design.structure, scen.heralding.scheme, hw, lengths, tau, design.t_trunc)


def log_rate(scen, design, params, theta, tau=None, fixed_seconds=False, shift=0.0):
    """``log`` of the exact clipped key rate (bits/s); ``-inf`` where the key fraction is 0."""
    return jnp.log(figures(scen, design, params, theta, tau, fixed_seconds, shift).skr_bits_per_s)


SHIFT = 1e-6
"""Steps either side of an integer cut-off at which the fixed-design derivative is taken."""


def rate_grad(scen, design, params, theta, fixed_seconds=False):
    """``(log R, ∂ log R / ∂ log θ)`` at ``θ``.

    With ``fixed_seconds`` the cut-offs in steps, ``cutoff_s / clock``, move with the clock;
    the engine keeps a pair of age ``d`` with probability ``clip(τ − d + 1, 0, 1)``, so the
    rate has a kink at the design's integer ``τ``: the derivative reported is the mean of the
    two one-sided derivatives (at ``τ ± 1e-6`` steps), which is what a centred finite
    difference measures."""
    lt = jnp.log(jnp.asarray(theta, jnp.result_type(float)))
    if not fixed_seconds:
        v, g = _grad_fn(scen, design, tuple(params), False)(lt, 0.0)
        return float(v), np.asarray(g)
    out = [_grad_fn(scen, design, tuple(params), True)(lt, s) for s in (SHIFT, -SHIFT)]
    return float(0.5 * (out[0][0] + out[1][0])), 0.5 * (np.asarray(out[0][1]) + np.asarray(out[1][1]))


@lru_cache(maxsize=32)
def _grad_fn(scen, design, params: tuple, fixed_seconds: bool):
    """Jitted ``(x, shift) ↦`` value and gradient of ``log R`` in ``x = log θ`` (one compilation
    per design)."""
    return jax.jit(jax.value_and_grad(lambda x, shift: log_rate(scen, design, list(params), jnp.exp(x),
                                                                fixed_seconds=fixed_seconds, shift=shift)))


__all__ = ["Design", "design_of", "figures", "log_rate", "rate_grad"]
