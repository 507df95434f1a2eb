"""Physical layer: fibre, elementary-link generation schemes and memories.

Maps hardware (lengths in km, times in s, efficiencies in [0, 1]) to the engines'
step model: a success probability per attempt ``p_gen``, the attempt duration in
seconds, and the Bell-diagonal state ``lam0`` of a fresh link. Every quantity is
a smooth function of the lengths, so gradients flow to repeater positions.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from ._validate import check_nonnegative, check_positive, check_probability, check_t1t2
from .states import _float

SPEED_OF_LIGHT_FIBER_KM_S = 2.0e5
"""Speed of light in standard fibre, km/s (refractive index ≈ 1.5)."""


class LinkModel(NamedTuple):
    """An elementary link in the step model (a pytree).

    Attributes:
        p_gen: success probability per attempt, in (0, 1].
        duration_s: duration of one attempt in seconds (photon travel, heralding
            signal back, and local preparation).
        lam0: Bell-diagonal state ``(..., 4)`` of a freshly heralded link.
    """

    p_gen: jnp.ndarray
    duration_s: jnp.ndarray
    lam0: jnp.ndarray


def fiber_transmissivity(length_km, attenuation_db_per_km=0.2):
    """Transmissivity ``η = 10^(−α L / 10)`` of ``length_km`` km of fibre with loss ``α`` dB/km
    (α = 0.2 dB/km for telecom fibre at 1550 nm; Sangouard, Simon, de Riedmatten &
    Gisin, Rev. Mod. Phys. 83, 33 (2011))."""
    check_nonnegative(length_km, "length_km")
    check_nonnegative(attenuation_db_per_km, "attenuation_db_per_km")
    length_km = _float(length_km)
    return 10 ** (-_float(attenuation_db_per_km) * length_km / 10)


def _state_from_visibility(v, dtype):
    """Φ+ with dephasing from imperfect two-photon interference: ``((1+V)/2, 0, 0, (1−V)/2)``."""
    v = jnp.asarray(v, dtype)
    z = jnp.zeros_like(v)
    return jnp.stack([(1 + v) / 2, z, z, (1 - v) / 2], axis=-1)


def direct_transmission(length_km, attenuation_db_per_km=0.2, efficiency=1.0,
                        source_fidelity=1.0, prep_time_s=0.0):
    """One node emits a photon entangled with its memory; the other node absorbs it
    and heralds success back (e.g. Rozpędek et al., PRA 99, 052330 (2019)).

    ``p_gen = efficiency · η(L)`` (``efficiency`` lumps emission, coupling, memory
    absorption / detection); attempt time ``prep_time_s + 2 L / c`` (photon out,
    herald back). The fresh link is Werner with fidelity ``source_fidelity``.
    """
    check_nonnegative(length_km, "length_km")
    check_probability(efficiency, "efficiency")
    check_probability(source_fidelity, "source_fidelity")
    check_nonnegative(prep_time_s, "prep_time_s")
    L = _float(length_km)
    eta = fiber_transmissivity(L, attenuation_db_per_km)
    p = jnp.asarray(efficiency, L.dtype) * eta
    f = jnp.broadcast_to(jnp.asarray(source_fidelity, L.dtype), p.shape)
    off = (1 - f) / 3
    lam0 = jnp.stack([f, off, off, off], -1)
    return LinkModel(p, prep_time_s + 2 * L / SPEED_OF_LIGHT_FIBER_KM_S, lam0)


def double_click(length_km, attenuation_db_per_km=0.2, efficiency=1.0, visibility=1.0,
                 prep_time_s=0.0):
    """Midpoint station, two-photon (double-click, Barrett–Kok) heralding.

    Both nodes emit towards a station at ``L/2``; success needs both photons:
    ``p_gen = η_h² / 2`` with ``η_h = efficiency · η(L/2)`` (Barrett & Kok, PRA 71,
    060310 (2005); Rozpędek et al., PRA 99, 052330 (2019)). Imperfect
    photon indistinguishability ``visibility`` V dephases the state:
    ``lam0 = ((1 + V)/2, 0, 0, (1 − V)/2)``. Attempt time ``prep + L / c``
    (photons to the midpoint, herald back). Dark counts are neglected.
    """
    check_nonnegative(length_km, "length_km")
    check_probability(efficiency, "efficiency")
    check_probability(visibility, "visibility")
    check_nonnegative(prep_time_s, "prep_time_s")
    L = _float(length_km)
    eh = jnp.asarray(efficiency, L.dtype) * fiber_transmissivity(L / 2, attenuation_db_per_km)
    p = eh**2 / 2
    lam0 = jnp.broadcast_to(_state_from_visibility(visibility, L.dtype), p.shape + (4,))
    return LinkModel(p, prep_time_s + L / SPEED_OF_LIGHT_FIBER_KM_S, lam0)


def single_click(length_km, alpha, attenuation_db_per_km=0.2, efficiency=1.0, visibility=1.0,
                 prep_time_s=0.0):
    """Midpoint station, single-photon (single-click) heralding with bright-state population ``alpha``.

    Each node prepares ``√(1−α)|0>|0> + √α|1>|1>`` (spin, photon) and sends the photon
    to a beam splitter at the midpoint with non-number-resolving detectors (dark
    counts neglected). With ``η_h = efficiency · η(L/2)`` the station sees one click
    with probability ``p_gen = 2 α (1 − α) η_h + α² η_h (2 − η_h) = 2 α η_h (1 − α η_h / 2)``.
    Given a click, the spins are ``|Ψ±>`` (coherence ``V``) with weight
    ``2 α (1 − α) η_h``, or ``|11>`` with weight ``α² η_h (2 − η_h)`` (both emitted,
    at least one detected; two photons bunch on one detector), so the ``|11>``
    fraction is ``a = α (2 − η_h) / (2 − α η_h)``. After the local Pauli correction to
    ``Φ+`` and a Bell-diagonal twirl:
    ``lam0 = ((1−a)(1+V)/2, a/2, a/2, (1−a)(1−V)/2)``. For ``η_h ≪ 1`` this is the
    familiar ``p_gen ≈ 2 α η_h``, ``F ≈ (1 − α)(1 + V)/2`` of Cabrillo, Cirac,
    García-Fernández & Zoller, PRA 59, 1025 (1999); Humphreys et al., Nature 558,
    268 (2018); Rozpędek et al., PRA 99, 052330 (2019) (single-click scheme).
    Smaller ``α`` means higher fidelity and a lower rate. Attempt time ``prep + L/c``.
    ``a`` is written without dividing by ``p_gen``, so ``lam0`` stays finite and
    differentiable at ``α = 0`` and ``η_h = 0``.
    """
    check_nonnegative(length_km, "length_km")
    check_probability(alpha, "alpha")
    check_probability(efficiency, "efficiency")
    check_probability(visibility, "visibility")
    check_nonnegative(prep_time_s, "prep_time_s")
    L = _float(length_km)
    a_ = jnp.asarray(alpha, L.dtype)
    eh = jnp.asarray(efficiency, L.dtype) * fiber_transmissivity(L / 2, attenuation_db_per_km)
    good = 2 * a_ * (1 - a_) * eh
    bad = a_**2 * eh * (2 - eh)
    p = good + bad
    # a = bad / p, simplified so that it stays finite (and differentiable) at
    # alpha = 0 (a = 0) and eta_h = 0 (a = alpha), where p = 0.
    a = a_ * (2 - eh) / (2 - a_ * eh)
    v = jnp.asarray(visibility, L.dtype)
    lam0 = jnp.stack([(1 - a) * (1 + v) / 2, a / 2, a / 2, (1 - a) * (1 - v) / 2], -1)
    return LinkModel(p, prep_time_s + L / SPEED_OF_LIGHT_FIBER_KM_S, lam0)


def decay_per_step(t_coh_s, step_s):
    """Werner decay factor per step, ``exp(−step_s / t_coh_s)`` (``t_coh_s = inf``: 1); the
    per-step form of :func:`qnjax.werner_decay` (Brand, Coopmans & Elkouss, IEEE JSAC 38,
    619 (2020))."""
    check_positive(t_coh_s, "t_coh_s")
    check_nonnegative(step_s, "step_s")
    return jnp.exp(-_float(step_s) / _float(t_coh_s))


def t_coh_steps(t_coh_s, step_s):
    """Pair coherence time in steps, ``t_coh_s / step_s``, for the step-model engines
    (time counted in attempts, as in Brand, Coopmans & Elkouss, IEEE JSAC 38, 619 (2020))."""
    check_positive(t_coh_s, "t_coh_s")
    check_positive(step_s, "step_s")
    return _float(t_coh_s) / _float(step_s)


def memory_rates_per_step(t1_s, t2_s, step_s):
    """Walsh-coordinate decay rates ``(..., 4)`` per step of one memory with ``T1, T2``
    (seconds), for a clock step of ``step_s`` seconds: ``step · (0, 1/T1, 1/T2, 1/T2)``.
    A pair held in two memories decays with the sum of their rates. Physics in
    :func:`qnjax.memory_walsh_rates` (Nielsen & Chuang §8.3; Pauli twirl as in Ghosh,
    Fowler & Geller, PRA 86, 062318 (2012))."""
    check_positive(t1_s, "t1_s")
    check_positive(t2_s, "t2_s")
    check_t1t2(t1_s, t2_s, ("t1_s", "t2_s"))
    check_nonnegative(step_s, "step_s")
    t1, t2, s = jnp.broadcast_arrays(_float(t1_s), _float(t2_s), _float(step_s))
    return jnp.stack([jnp.zeros_like(t1), s / t1, s / t2, s / t2], -1)
