"""A :class:`qnjax.PhysicalScenario` written back as a scenario file (``docs/scenario.md``)
that :func:`qnjax.load_scenario` reads to the same scenario."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

from ..design.problems import PhysicalScenario


def _v(x) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str):
        return json.dumps(x)
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_v(i) for i in x) + "]"
    if isinstance(x, float):
        return "inf" if math.isinf(x) else repr(x)
    return str(x)


def _memory(m) -> list[str]:
    if m.t_coh_s is not None:
        return [f"t_coh_s = {_v(float(m.t_coh_s))}"]
    return [f"t1_s = {_v(float(m.t1_s))}", f"t2_s = {_v(float(m.t2_s))}"]


def _station(s) -> list[str]:
    return [f"swap_success = {_v(float(s.swap_success))}", f"gate_depolarizing = {_v(float(s.gate_depolarizing))}",
            f"measurement_error = {_v(float(s.measurement_error))}"]


MARK = "# written by qnjax"
"""First line of every scenario qnjax writes: :func:`write_scenario` overwrites only such files."""
_LEGACY = re.compile(r"# hardware required for .* \(qnjax requirements\)$")  # before MARK (2026-12)


def scenario_toml(scen: PhysicalScenario, header: str = "") -> str:
    """The scenario as TOML text (every field written, canonical units in the keys), after the
    line :data:`MARK` and the ``header`` lines as comments."""
    lines = [MARK] + [f"# {line}" for line in header.splitlines()]
    lines += [f"name = {_v(scen.name)}", f"distance_km = {_v(float(scen.distance_km))}",
              f"attenuation_db_per_km = {_v(float(scen.attenuation_db_per_km))}", "", "[heralding]"]
    for f in dataclasses.fields(scen.heralding):
        lines.append(f"{f.name} = {_v(getattr(scen.heralding, f.name))}")
    lines += ["", "[memory]", *_memory(scen.repeater.memory), "", "[repeater]", *_station(scen.repeater)]
    for ov in scen.stations:
        lines += ["", "[[station]]", f"index = {ov.index}", *_station(ov.station), "[station.memory]",
                  *_memory(ov.station.memory)]
    lines += ["", "[multiplexing]"]
    for f in dataclasses.fields(scen.multiplexing):
        lines.append(f"{f.name} = {_v(getattr(scen.multiplexing, f.name))}")
    lines += ["", "[search]"]
    for f in dataclasses.fields(scen.search):
        v = getattr(scen.search, f.name)
        if f.name == "max_segment_km" and math.isinf(v):
            continue
        lines.append(f"{f.name} = {_v(list(v) if isinstance(v, tuple) else v)}")
    return "\n".join(lines) + "\n"


def written_by_qnjax(path) -> bool:
    """Whether the file's first line is :data:`MARK` (or the header ``qnjax requirements``
    wrote before it)."""
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        return False
    return first == MARK or bool(_LEGACY.match(first))


def check_scenario_target(path, option: str = "path") -> Path:
    """Refuse, before any work, a ``path`` :func:`write_scenario` would refuse: a directory or
    unwritable place, a name not ending in ``.toml``, an existing file that is not a scenario
    qnjax can read, or one qnjax did not write (:func:`written_by_qnjax`: a user's own scenario
    is never overwritten) (``ValueError`` naming ``option``)."""
    from .._files import check_target
    from ..design.scenario import load_scenario

    p = Path(path)
    check_target(p, option)
    if p.suffix != ".toml":
        raise ValueError(f"{option}: {str(p)!r} must end in .toml")
    if p.exists():
        try:
            load_scenario(p)
        except (ValueError, TypeError, OSError):
            raise ValueError(f"{option}: {str(p)!r} exists and is not a scenario file; not overwritten") from None
        if not written_by_qnjax(p):
            raise ValueError(f"{option}: {str(p)!r} exists and was not written by qnjax; not overwritten, "
                             "give a new file name")
    return p


def write_scenario(scen: PhysicalScenario, path, header: str = "", option: str = "path") -> Path:
    """Write :func:`scenario_toml` to ``path`` atomically; an existing file is replaced only
    when qnjax wrote it (:func:`check_scenario_target`; ``ValueError`` naming ``option``)."""
    from .._files import replace_bytes

    p = check_scenario_target(path, option)
    replace_bytes(p, scenario_toml(scen, header).encode("utf-8"))
    return p


__all__ = ["scenario_toml", "write_scenario", "check_scenario_target"]
