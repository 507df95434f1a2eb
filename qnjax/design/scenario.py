"""Scenario files (TOML) → :class:`PhysicalScenario`, validated field by field.

Every physical quantity carries its unit, either in the key (``distance_km = 300``) or in a
string value (``distance = "300 km"``, ``t_coh = "50 ms"``). A bare number under a unit-less
key (``distance = 300``) is rejected ("missing unit"), as are unknown keys and impossible
constraints. All checks run before anything is compiled; messages name the field.
Field reference: ``docs/scenario.md``.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

from .problems import (
    Heralding, Memory, Multiplexing, PhysicalScenario, Search, Station, StationOverride,
)

_SEED_MAX = 2**32 - 1
_LENGTH = {"km": 1.0, "m": 1e-3}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_ATT = {"db/km": 1.0}
_FREQ = {"hz": 1.0, "khz": 1e3, "mhz": 1e6}
_ANGLE = {"rad": 1.0, "mrad": 1e-3, "deg": math.pi / 180}
# base name -> (canonical key, canonical unit, allowed units)
_QUANTITIES = {
    "distance": ("distance_km", "km", _LENGTH),
    "attenuation": ("attenuation_db_per_km", "dB/km", _ATT),
    "prep_time": ("prep_time_s", "s", _TIME),
    "t_coh": ("t_coh_s", "s", _TIME),
    "t1": ("t1_s", "s", _TIME),
    "t2": ("t2_s", "s", _TIME),
    "min_segment": ("min_segment_km", "km", _LENGTH),
    "max_segment": ("max_segment_km", "km", _LENGTH),
    "dark_count_rate": ("dark_count_rate_hz", "Hz", _FREQ),
    "detection_window": ("detection_window_s", "s", _TIME),
    "phase_noise": ("phase_noise_rad", "rad", _ANGLE),
    "mode_time": ("mode_time_s", "s", _TIME),
}
_BY_CANON = {v[0]: k for k, v in _QUANTITIES.items()}

_TOP = {"name", "distance_km", "attenuation_db_per_km", "heralding", "repeater", "memory",
        "station", "search", "multiplexing"}
_HERALDING = {"scheme", "efficiency", "visibility", "source_fidelity", "alpha", "prep_time_s",
              "detector_efficiency", "dark_count_rate_hz", "detection_window_s", "phase_noise_rad"}
_MULTIPLEXING = {"modes", "mode_time_s", "memories"}
_STATION = {"swap_success", "gate_depolarizing", "measurement_error", "memory"}
_MEMORY = {"t_coh_s", "t1_s", "t2_s"}
_SEARCH = {"segments", "min_segment_km", "max_segment_km", "max_rounds_per_level",
           "max_rounds_total", "starts", "steps", "learning_rate", "top_structures", "seed",
           "t_trunc", "tune_alpha", "max_modes"}


def _parse_quantity(text: str, path: str, units: dict, canon_unit: str) -> float:
    m = re.fullmatch(r"\s*([-+0-9.eE]+|inf)\s*([^\s]+)\s*", text)
    if not m:
        raise ValueError(f"{path}: cannot read {text!r}; write a number and a unit, e.g. \"1 {canon_unit}\"")
    unit = m.group(2)
    key = unit.lower() if unit.lower() in units else unit
    if key not in units:
        raise ValueError(f"{path}: unknown unit {unit!r}; allowed: {', '.join(units)}")
    return float(m.group(1)) * units[key]


def _normalise(table: dict, allowed: set, path: str) -> dict[str, Any]:
    """Resolve unit-bearing keys to canonical ``*_km`` / ``*_s`` names; reject unknown keys."""
    if not isinstance(table, dict):
        raise TypeError(f"{path or 'scenario'} must be a table; got {table!r}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{path}.{key}" if path else key
        if key in _QUANTITIES and _QUANTITIES[key][0] in allowed:
            canon, unit, units = _QUANTITIES[key]
            if not isinstance(value, str):
                raise ValueError(f"{full}: missing unit; write {canon} = {value!r} "
                                 f"or {key} = \"{value!r} {unit}\"")
            value = _parse_quantity(value, full, units, unit)
            key = canon
        elif key not in allowed:
            hint = ""
            base = key.rsplit("_", 1)[0]
            if base in _QUANTITIES and _QUANTITIES[base][0] in allowed:
                hint = f" (wrong unit? use {_QUANTITIES[base][0]} or a string with a unit)"
            raise ValueError(f"{full}: unknown key{hint}; allowed: {', '.join(sorted(allowed))}")
        elif isinstance(value, str) and key in _BY_CANON:
            raise ValueError(f"{full}: give a number in {_QUANTITIES[_BY_CANON[key]][1]}, "
                             f"or use the key {_BY_CANON[key]} = \"<number> <unit>\"")
        if key in out:
            raise ValueError(f"{full}: given twice (with and without a unit)")
        out[key] = value
    return out


def _build(cls, kwargs: dict, path: str, default_prefix: str):
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if msg.startswith(default_prefix):
            msg = path + msg[len(default_prefix):]
        raise type(exc)(msg) from None


def _memory(table, path: str) -> Memory:
    return _build(Memory, _normalise(table, _MEMORY, path), path, "memory")


def _station(table, path: str, base: Station | None = None, memory_path: str | None = None) -> Station:
    t = _normalise(table, _STATION, path)
    kw: dict[str, Any] = {}
    if base is not None:
        kw = dict(memory=base.memory, swap_success=base.swap_success,
                  gate_depolarizing=base.gate_depolarizing,
                  measurement_error=base.measurement_error)
    if "memory" in t:
        kw["memory"] = _memory(t.pop("memory"), memory_path or f"{path}.memory")
    kw.update(t)
    return _build(Station, kw, path, "repeater")


def scenario_from_dict(data: dict) -> PhysicalScenario:
    """Build and validate a :class:`PhysicalScenario` from a parsed TOML document."""
    top = _normalise(data, _TOP, "")
    if "distance_km" not in top:
        raise ValueError("distance_km: missing (the end-to-end distance, e.g. distance_km = 300)")
    name = top.get("name", "scenario")
    if not isinstance(name, str):
        raise TypeError(f"name must be a string; got {name!r}")
    her = _build(Heralding, _normalise(top.get("heralding", {}), _HERALDING, "heralding"),
                 "heralding", "heralding")
    rep_table = dict(top.get("repeater", {}))
    if "memory" in top:
        if "memory" in rep_table:
            raise ValueError("memory: given both as [memory] and [repeater.memory]; keep one")
        rep_table["memory"] = top["memory"]
    if "memory" not in rep_table:
        raise ValueError("memory: missing; add a [memory] table with t_coh_s (or t1_s and t2_s)")
    repeater = _station(rep_table, "repeater", memory_path="memory" if "memory" in top else None)
    overrides = []
    raw_st = top.get("station", [])
    if not isinstance(raw_st, list):
        raise TypeError("station must be an array of tables ([[station]]) with an index")
    for i, st in enumerate(raw_st):
        path = f"station[{i}]"
        if not isinstance(st, dict) or "index" not in st:
            raise ValueError(f"{path}.index: missing (which station: 0 = left end, -1 = right end)")
        st = dict(st)
        idx = st.pop("index")
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise TypeError(f"{path}.index must be an integer; got {idx!r}")
        overrides.append(StationOverride(idx, _station(st, path, base=repeater)))
    srch = _normalise(top.get("search", {}), _SEARCH, "search")
    seed = srch.get("seed", 0)
    if isinstance(seed, (int, float)) and not isinstance(seed, bool) and not 0 <= seed <= _SEED_MAX:
        shown = seed if abs(seed) < 1e15 else f"{float(seed):.3g}"  # 1e308: not a 309-digit integer
        raise ValueError(f"search.seed must be an integer in [0, {_SEED_MAX}]; got {shown}")
    search = _build(Search, srch, "search", "search")
    mux = _build(Multiplexing, _normalise(top.get("multiplexing", {}), _MULTIPLEXING, "multiplexing"),
                 "multiplexing", "multiplexing")
    kw = dict(distance_km=top["distance_km"], heralding=her, repeater=repeater,
              stations=tuple(overrides), search=search, name=name, multiplexing=mux)
    if "attenuation_db_per_km" in top:
        kw["attenuation_db_per_km"] = top["attenuation_db_per_km"]
    try:
        scen = PhysicalScenario(**kw)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if msg.startswith("station.index"):
            msg = "station[].index" + msg[len("station.index"):]
        raise type(exc)(msg) from None
    check_fiber(scen.distance_km, scen.attenuation_db_per_km)
    return scen


def _plain(obj, allowed: set) -> dict[str, Any]:
    """One scenario table as TOML-ready values: ``None`` fields dropped, an infinite quantity
    written with its unit (``max_segment = "inf km"``) so the table stays finite JSON."""
    import dataclasses

    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.name not in allowed or v is None or f.name == "memory":
            continue
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, float) and math.isinf(v) and f.name in _BY_CANON:
            base = _BY_CANON[f.name]
            out[base] = f"{'inf' if v > 0 else '-inf'} {_QUANTITIES[base][1]}"
            continue
        out[f.name] = v
    return out


def _station_dict(st: Station) -> dict[str, Any]:
    return {**_plain(st, _STATION), "memory": _plain(st.memory, _MEMORY)}


def scenario_to_dict(scenario: PhysicalScenario) -> dict[str, Any]:
    """The scenario as the plain tables of a scenario file: ``scenario_from_dict`` of it gives
    back an equal scenario, and every value is finite JSON (a provenance block stores it)."""
    out: dict[str, Any] = {
        "name": scenario.name, "distance_km": scenario.distance_km,
        "attenuation_db_per_km": scenario.attenuation_db_per_km,
        "heralding": _plain(scenario.heralding, _HERALDING),
        "repeater": _station_dict(scenario.repeater),
        "search": _plain(scenario.search, _SEARCH),
        "multiplexing": _plain(scenario.multiplexing, _MULTIPLEXING),
    }
    if scenario.stations:
        out["station"] = [{"index": ov.index, **_station_dict(ov.station)} for ov in scenario.stations]
    return out


MIN_DISTANCE_KM = 1e-3
MAX_LOSS_DB = 3000.0


def check_fiber(distance_km: float, attenuation_db_per_km: float, name: str = "distance_km") -> None:
    """Refuse distances whose figures cannot be represented: below 1 m (the PLOB bound diverges as
    the transmissivity reaches 1) or above 3000 dB of fibre loss (a transmissivity below 1e-300
    underflows)."""
    if not distance_km >= MIN_DISTANCE_KM:
        raise ValueError(f"{name} = {distance_km:g} km is below {MIN_DISTANCE_KM:g} km (1 m)")
    loss = distance_km * attenuation_db_per_km
    if not loss <= MAX_LOSS_DB:
        raise ValueError(f"{name} = {distance_km:g} km at {attenuation_db_per_km:g} dB/km is {loss:.4g} dB of "
                         f"fibre loss; at most {MAX_LOSS_DB:g} dB (transmissivity 1e-300)")


def lossless_at(scenario: PhysicalScenario, distance_km) -> bool:
    """The fibre's transmissivity ``10^(−α L / 10)`` is 1 at ``distance_km`` (attenuation 0 or
    distance 0): the repeaterless bounds PLOB and TGW are +inf there (Pirandola et al.,
    Nat. Commun. 8, 15043 (2017)). ``False`` for a value that is not a number."""
    try:
        return 10 ** (-float(scenario.attenuation_db_per_km) * float(distance_km) / 10) >= 1.0
    except (TypeError, ValueError, OverflowError):
        return False


def load_scenario(path) -> PhysicalScenario:
    """Read a scenario TOML file (see ``docs/scenario.md``); raises ``ValueError`` (or
    ``TypeError`` for a value of the wrong type) with one line naming the file and the field."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"scenario file {str(p)!r} is a directory; give a .toml file")
    if not p.exists():
        raise ValueError(f"scenario file {str(p)!r} does not exist")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"scenario file {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(f"{p}: not UTF-8 text (byte {raw[exc.start]:#04x} at line {line}); "
                         "a scenario is a UTF-8 TOML file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: not valid TOML: {exc}") from None
    try:
        return scenario_from_dict(data)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{p}: {exc}") from None


def default_scenario() -> PhysicalScenario:
    """The built-in scenario of ``qnjax optimize`` without a file: 300 km, double-click
    heralding with 10 Hz dark counts over a 1 ns window (superconducting nanowire detectors at
    1550 nm: 1–100 Hz, e.g. Marsili et al., Nat. Photon. 7, 210 (2013)), 1 s memories,
    deterministic noisy swaps; the number of segments is searched."""
    return scenario_from_dict({
        "name": "default: 300 km, double-click, 1 s memories",
        "distance_km": 300.0,
        "attenuation_db_per_km": 0.2,
        "heralding": {"scheme": "double_click", "efficiency": 0.9, "visibility": 0.98,
                      "prep_time_s": 1e-6, "dark_count_rate_hz": 10.0, "detection_window_s": 1e-9},
        "memory": {"t_coh_s": 1.0},
        "repeater": {"swap_success": 1.0, "gate_depolarizing": 0.005, "measurement_error": 0.002},
        "search": {"starts": 4, "steps": 60, "learning_rate": 0.1},
    })


__all__ = ["load_scenario", "scenario_from_dict", "scenario_to_dict", "default_scenario", "check_fiber",
           "lossless_at"]
