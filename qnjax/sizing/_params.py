"""Hardware parameters of a physical scenario as one named, differentiable vector.

Each parameter is one number of the scenario file (``heralding.efficiency``,
``repeater.gate_depolarizing``, ``station[0].memory.t2_s``, …) written in its *improvement
form* ``θ``, the form in which larger is better or the direction is explicit:

* ``"p"``: a probability of success or of no error, in (0, 1]: efficiencies, visibility,
  source fidelity, swap success, ``1 − gate_depolarizing``, ``1 − measurement_error`` and
  ``1 − p_dark`` (the dark-count probability per window). Improved by a factor ``k >= 1`` as
  ``θ → θ^(1/k)`` (da Silva et al., Quantum Sci. Technol. 6, 035007 (2021), Sec. 3: the
  "probability of no imperfection" of a parameter is raised to ``1/k``).
* ``"up"``: a time that is better when larger (memory ``t_coh_s``, ``t1_s``, ``t2_s``):
  ``θ → k θ`` (the same paper).
* ``"down"``: better when smaller (``heralding.prep_time_s``, ``attenuation_db_per_km``):
  ``θ → θ / k``.

:func:`hardware_from_theta` builds the optimizer's hardware dict (:func:`qnjax.design.chain.hardware`)
from ``θ``, with JAX operations only, so the exact key rate is differentiable in every
hardware parameter.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..design.chain import Structure, hardware
from ..design.problems import PhysicalScenario, Station
from ..protocol import Swap, internal_nodes

FORMS = ("p", "up", "down")


@dataclass(frozen=True)
class Param:
    """One hardware parameter: ``name`` (its key in the scenario file), ``form`` (``"p"``,
    ``"up"``, ``"down"``), ``theta`` (the baseline value in improvement form: for ``"p"`` the
    probability of success / no error), ``label`` (words for tables)."""

    name: str
    form: str
    theta: float
    label: str


def _station_tables(scen: PhysicalScenario):
    """``(prefix, Station)`` of the shared repeater hardware and of every override."""
    out = [("repeater", scen.repeater)]
    out += [(f"station[{i}]", ov.station) for i, ov in enumerate(scen.stations)]
    return out


def _station_params(prefix: str, s: Station, mem_prefix: str) -> list[Param]:
    out = []
    m = s.memory
    if m.t_coh_s is not None:
        if math.isfinite(m.t_coh_s):
            out.append(Param(f"{mem_prefix}.t_coh_s", "up", m.t_coh_s, f"{prefix} memory coherence time"))
    else:
        if math.isfinite(m.t1_s):
            out.append(Param(f"{mem_prefix}.t1_s", "up", m.t1_s, f"{prefix} memory T1"))
        if math.isfinite(m.t2_s):
            out.append(Param(f"{mem_prefix}.t2_s", "up", m.t2_s, f"{prefix} memory T2"))
    out.append(Param(f"{prefix}.swap_success", "p", s.swap_success, f"{prefix} swap success"))
    out.append(Param(f"{prefix}.gate_depolarizing", "p", 1 - s.gate_depolarizing,
                     f"{prefix} gate (1 - depolarizing)"))
    out.append(Param(f"{prefix}.measurement_error", "p", 1 - s.measurement_error,
                     f"{prefix} measurement (1 - error)"))
    return out


def parameters(scen: PhysicalScenario) -> list[Param]:
    """Every hardware parameter of the scenario that can be improved (infinite memory times
    and parameters the scheme does not use are left out)."""
    h = scen.heralding
    out = [Param("attenuation_db_per_km", "down", scen.attenuation_db_per_km, "fibre attenuation")] \
        if scen.attenuation_db_per_km > 0 else []
    out.append(Param("heralding.efficiency", "p", h.efficiency, "link efficiency"))
    if h.detector_efficiency < 1:
        out.append(Param("heralding.detector_efficiency", "p", h.detector_efficiency, "detector efficiency"))
    if h.scheme == "direct":
        out.append(Param("heralding.source_fidelity", "p", h.source_fidelity, "source fidelity"))
    else:
        out.append(Param("heralding.visibility", "p", h.visibility, "visibility"))
    if h.prep_time_s > 0:
        out.append(Param("heralding.prep_time_s", "down", h.prep_time_s, "preparation time"))
    if h.dark_count_probability > 0:
        out.append(Param("heralding.dark_count_rate_hz", "p", 1 - h.dark_count_probability,
                         "detectors (1 - dark-count probability)"))
    for prefix, st in _station_tables(scen):
        mem = "memory" if prefix == "repeater" else f"{prefix}.memory"
        out += _station_params(prefix, st, mem)
    return [p for p in out if p.theta > 0]


def improve(theta, k, form: str):
    """``θ`` improved by the factor ``k >= 1`` (da Silva et al. 2021): ``θ^(1/k)`` for
    probabilities, ``k θ`` for ``"up"``, ``θ / k`` for ``"down"`` (JAX or NumPy)."""
    if form == "p":
        return theta ** (1.0 / k)
    return theta * k if form == "up" else theta / k


def improvement_of(theta0, theta, form: str):
    """The factor ``k`` with ``improve(theta0, k) = theta`` (inverse of :func:`improve`)."""
    if form == "p":
        return math.log(theta0) / math.log(theta) if theta < 1 else math.inf
    return theta / theta0 if form == "up" else theta0 / theta


def file_value(scen: PhysicalScenario, p: Param, theta: float) -> float:
    """The parameter as written in the scenario file from its improvement form ``θ``:
    ``1 − θ`` for the gate's depolarizing and the measurement's error probability, the
    dark-count rate ``−log(θ) / window`` (Hz), ``θ`` otherwise."""
    theta = float(theta)
    if p.name.endswith(("gate_depolarizing", "measurement_error")):
        return float(f"{1 - theta:.15g}")  # 1 − (1 − x) without the rounding noise
    if p.name == "heralding.dark_count_rate_hz":
        return float(f"{-math.log(theta) / scen.heralding.detection_window_s:.12g}") if theta < 1 else 0.0
    return theta


def _station_of(scen: PhysicalScenario, i: int, n: int) -> str:
    """Prefix of the parameters that station ``i`` of ``n`` segments uses."""
    for j, ov in enumerate(scen.stations):
        if ov.index % (n + 1) == i:
            return f"station[{j}]"
    return "repeater"


def hardware_from_theta(scen: PhysicalScenario, st: Structure, params: list[Param], theta, dtype=None) -> dict:
    """The hardware dict of :func:`qnjax.design.chain.hardware` with every parameter in
    ``params`` taken from ``theta`` (an array, one entry per parameter, improvement form); the
    others from the scenario. Built with JAX operations: differentiable in ``theta``.

    Memory Walsh rates ``(0, 1/T, 1/T, 1/T)`` (``t_coh``) or ``(0, 1/T1, 1/T2, 1/T2)``; a
    swap's Walsh multiplier ``(1, (1−g)e, (1−g)e², (1−g)e)`` with ``e = 1 − 2·m`` (as
    :meth:`qnjax.design.Station.bsm_walsh`); dark-count probability ``1 − θ``."""
    hw = dict(hardware(scen, st, dtype))
    dt = hw["eff"].dtype
    theta = jnp.asarray(theta, dt)
    val = {p.name: theta[i] for i, p in enumerate(params)}
    for key, name in (("att", "attenuation_db_per_km"), ("eff", "heralding.efficiency"),
                      ("det", "heralding.detector_efficiency"), ("vis", "heralding.visibility"),
                      ("fid", "heralding.source_fidelity"), ("prep", "heralding.prep_time_s")):
        if name in val:
            hw[key] = val[name]
    if "heralding.dark_count_rate_hz" in val:
        hw["dark"] = 1 - val["heralding.dark_count_rate_hz"]
    n = st.n
    prefixes = [_station_of(scen, i, n) for i in range(n + 1)]
    stations = [scen.station(i, n) for i in range(n + 1)]

    def get(prefix, field, base):
        mem = "memory" if prefix == "repeater" else f"{prefix}.memory"
        key = f"{mem}.{field}" if field.startswith("t") else f"{prefix}.{field}"
        return val.get(key, jnp.asarray(base, dt))

    rates = []
    for pre, s in zip(prefixes, stations):
        m = s.memory
        if m.t_coh_s is not None:
            r = 1.0 / get(pre, "t_coh_s", m.t_coh_s)
            rates.append(jnp.stack([jnp.zeros_like(r), r, r, r]))
        else:
            r1, r2 = 1.0 / get(pre, "t1_s", m.t1_s), 1.0 / get(pre, "t2_s", m.t2_s)
            rates.append(jnp.stack([jnp.zeros_like(r1), r1, r2, r2]))
    hw["rates"] = jnp.stack(rates)
    nodes = internal_nodes(st.tree)
    if nodes:
        ps, bsm = [], []
        one = jnp.ones((), dt)
        for v in nodes:
            if isinstance(v, Swap):
                i = v.left.span[1]
                pre, s = prefixes[i], stations[i]
                ps.append(get(pre, "swap_success", s.swap_success))
                g1 = get(pre, "gate_depolarizing", 1 - s.gate_depolarizing)
                e = 2 * get(pre, "measurement_error", 1 - s.measurement_error) - 1
                bsm.append(jnp.stack([one, g1 * e, g1 * e * e, g1 * e]))
            else:
                ps.append(one)
                bsm.append(jnp.ones(4, dt))
        hw["p_swap"] = jnp.stack(ps)
        hw["bsm"] = jnp.stack(bsm)
    return hw


def scenario_with(scen: PhysicalScenario, params: list[Param], theta) -> PhysicalScenario:
    """A copy of the scenario with the parameters set to ``theta`` (improvement form)."""
    theta = [float(t) for t in np.asarray(theta, float)]
    her = scen.heralding
    top: dict = {}
    hk: dict = {}
    st_kw: dict = {}  # prefix -> {field: value}
    mem_kw: dict = {}
    for p, t in zip(params, theta):
        if p.name == "attenuation_db_per_km":
            top["attenuation_db_per_km"] = t
        elif p.name == "heralding.dark_count_rate_hz":
            hk["dark_count_rate_hz"] = -math.log(t) / her.detection_window_s if t < 1 else 0.0
        elif p.name.startswith("heralding."):
            hk[p.name.split(".", 1)[1]] = t
        else:
            head, field = p.name.rsplit(".", 1)
            if head.endswith("memory"):
                pre = "repeater" if head == "memory" else head[: -len(".memory")]
                mem_kw.setdefault(pre, {})[field] = t
            else:
                v = 1 - t if field in ("gate_depolarizing", "measurement_error") else t
                st_kw.setdefault(head, {})[field] = v

    def station(pre, s):
        kw = dict(st_kw.get(pre, {}))
        if pre in mem_kw:
            kw["memory"] = dataclasses.replace(s.memory, **mem_kw[pre])
        return dataclasses.replace(s, **kw) if kw else s

    overrides = tuple(dataclasses.replace(ov, station=station(f"station[{j}]", ov.station))
                      for j, ov in enumerate(scen.stations))
    return dataclasses.replace(scen, heralding=dataclasses.replace(her, **hk),
                               repeater=station("repeater", scen.repeater), stations=overrides, **top)


INFRASTRUCTURE = ("attenuation_db_per_km",)
"""Parameters of the installed fibre, not of the hardware: :func:`qnjax.requirements` keeps
them at the baseline unless they are named."""


def requirement_names(scen: PhysicalScenario) -> list[str]:
    """The parameters :func:`qnjax.requirements` may improve by default: every hardware
    parameter of the scenario except the fibre's (:data:`INFRASTRUCTURE`)."""
    return [p.name for p in parameters(scen) if p.name not in INFRASTRUCTURE]


def check_names(scen: PhysicalScenario, names) -> list[Param]:
    """The parameters called ``names`` (all when ``None``); an unknown name is a ``ValueError``
    listing the scenario's parameters."""
    allp = parameters(scen)
    if names is None:
        return allp
    by = {p.name: p for p in allp}
    bad = [n for n in names if n not in by]
    if bad:
        raise ValueError(f"parameters: unknown {', '.join(map(repr, bad))}; this scenario's hardware "
                         f"parameters are {', '.join(by)}")
    return [by[n] for n in names]


__all__ = ["Param", "INFRASTRUCTURE", "requirement_names", "parameters", "file_value", "improve", "improvement_of", "hardware_from_theta", "scenario_with",
           "check_names"]
