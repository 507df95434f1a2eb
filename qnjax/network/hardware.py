"""Hardware of a planned network: one fiber loss, one heralding scheme, one repeater model,
with per-node overrides from node attributes.

The file format is that of scenario files (``docs/scenario.md``): a ``[hardware]`` table
holding ``attenuation_db_per_km``, ``[hardware.heralding]``, ``[hardware.memory]`` and
``[hardware.repeater]``, or a whole scenario file whose ``[heralding]``, ``[memory]`` and
``[repeater]`` tables are used (its ``distance`` and ``[search]`` are ignored).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..design.problems import Heralding, Memory, Multiplexing, Station
from .load import NetworkError

NODE_KEYS = ("t_coh_s", "t1_s", "t2_s", "swap_success", "gate_depolarizing", "measurement_error")


@dataclass(frozen=True)
class NetworkHardware:
    """Fiber, heralding and repeater hardware shared by every chain of a network.

    Attributes:
        attenuation_db_per_km: fiber loss α (dB/km).
        heralding: elementary-link generation (scheme, efficiency, visibility, ...).
        repeater: memories and swap hardware of every node unless a node overrides them.
        multiplexing: modes per attempt and memories per station (:class:`qnjax.Multiplexing`).
    """

    attenuation_db_per_km: float = 0.2
    heralding: Heralding = field(default_factory=Heralding)
    repeater: Station = field(default_factory=Station)
    multiplexing: Multiplexing = field(default_factory=Multiplexing)

    def station(self, attrs: dict, node: str = "") -> Station:
        """The hardware of a node with attributes ``attrs`` (overrides of :data:`NODE_KEYS`)."""
        over = {k: attrs[k] for k in NODE_KEYS if k in attrs}
        if not over:
            return self.repeater
        try:
            mem = self.repeater.memory
            mk = {k: float(over.pop(k)) for k in ("t_coh_s", "t1_s", "t2_s") if k in over}
            if mk:
                mem = Memory(**mk)
            return replace(self.repeater, memory=mem, **{k: float(v) for k, v in over.items()})
        except (TypeError, ValueError) as exc:
            raise NetworkError(f"node {node!r}: bad hardware override ({exc})") from None


def default_hardware() -> NetworkHardware:
    """The built-in hardware, that of ``qnjax optimize`` without a file: 0.2 dB/km fiber,
    double-click heralding (efficiency 0.9, visibility 0.98, 1 µs preparation), 1 s
    depolarizing memories, deterministic swaps with 0.5 % gate depolarizing and 0.2 %
    measurement error."""
    return NetworkHardware(
        attenuation_db_per_km=0.2,
        heralding=Heralding(scheme="double_click", efficiency=0.9, visibility=0.98, prep_time_s=1e-6),
        repeater=Station(memory=Memory(t_coh_s=1.0), swap_success=1.0, gate_depolarizing=0.005,
                         measurement_error=0.002),
    )


def hardware_from_dict(data: dict, where: str = "hardware") -> NetworkHardware:
    """Hardware from a parsed TOML document (see the module docstring)."""
    from ..design.scenario import scenario_from_dict

    table = data.get("hardware", data)
    if not isinstance(table, dict):
        raise NetworkError(f"{where}: [hardware] must be a table")
    keep = {k: v for k, v in table.items() if k not in ("distance_km", "distance", "search", "station", "name")}
    if "memory" not in keep and "memory" not in keep.get("repeater", {}):
        keep["memory"] = {"t_coh_s": default_hardware().repeater.memory.t_coh_s}
    try:
        sc = scenario_from_dict({**keep, "distance_km": 1.0})
    except (ValueError, TypeError) as exc:
        raise NetworkError(f"{where}: {exc}") from None
    return NetworkHardware(sc.attenuation_db_per_km, sc.heralding, sc.repeater,
                           getattr(sc, "multiplexing", Multiplexing()))


def load_hardware(path) -> NetworkHardware:
    """Read a hardware TOML file; raises :class:`NetworkError` naming the field."""
    p = Path(path)
    if not p.is_file():
        raise NetworkError(f"hardware file {str(p)!r} does not exist")
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NetworkError(f"{p}: not valid TOML ({exc})") from None
    return hardware_from_dict(data, str(p))


__all__ = ["NetworkHardware", "default_hardware", "load_hardware", "hardware_from_dict"]
