"""Provenance of a result: the software, device, precision and inputs that produced it.

Every JSON or CSV output of the ``qnjax`` command carries this block, so a number in a paper
can be traced to the versions, device, dtype, seed, search settings and scenario behind it,
and re-run from it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import shlex
import sys
from importlib import metadata as _metadata
from typing import Any, Mapping, Sequence

__all__ = ["provenance", "scenario_hash"]


def _version(dist: str) -> str | None:
    try:
        return _metadata.version(dist)
    except _metadata.PackageNotFoundError:
        return None


def _canonical(obj: Any) -> Any:
    """A JSON-ready copy with sorted keys, tuples as lists and non-finite floats as strings."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return "nan"
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def scenario_hash(scenario: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a scenario's canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(_canonical(scenario), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _device_and_dtype() -> tuple[str | None, str | None]:
    if "jax" not in sys.modules:  # never import JAX just to describe it
        return None, None
    import jax

    devs = jax.devices()
    kinds = sorted({f"{d.platform}:{getattr(d, 'device_kind', d.platform)}" for d in devs})
    device = f"{', '.join(kinds)} ({len(devs)} device{'s' if len(devs) != 1 else ''})"
    dtype = "float64" if jax.config.read("jax_enable_x64") else "float32"
    return device, dtype


def provenance(*, seed: int | None = None, settings: Mapping[str, Any] | None = None,
               scenario: Mapping[str, Any] | None = None, argv: Sequence[str] | None = None,
               dtype: str | None = None) -> dict[str, Any]:
    """The provenance block of one result.

    Args:
      seed: the random seed used, if any.
      settings: every search/engine setting actually used (no ``None`` placeholders).
      scenario: the scenario as a plain mapping; stored in full and as ``scenario_sha256``.
      argv: the command line (defaults to ``sys.argv``).
      dtype: the floating dtype computed in; by default read from JAX's ``jax_enable_x64``
        when JAX is already imported.

    Returns:
      A JSON-ready dict with ``qnjax``, ``jax``, ``jaxlib`` and ``python`` versions, ``platform``,
      ``device``, ``dtype``, ``created_utc`` (ISO 8601), ``command``, and, where given, ``seed``,
      ``settings``, ``scenario`` and ``scenario_sha256``.
    """
    from . import __version__

    device, x64_dtype = _device_and_dtype()
    argv = list(sys.argv if argv is None else argv)
    if argv:
        argv[0] = argv[0].rsplit("/", 1)[-1]  # the program's name, not where it is installed
        if argv[0] in ("__main__.py", "qnjax.cli", ""):
            argv[0] = "qnjax"
    out: dict[str, Any] = {
        "qnjax": __version__,
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "device": device,
        "dtype": dtype or x64_dtype,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(argv),
    }
    if seed is not None:
        out["seed"] = int(seed)
    if settings is not None:
        out["settings"] = _canonical(settings)
    if scenario is not None:
        out["scenario"] = _canonical(scenario)
        out["scenario_sha256"] = scenario_hash(scenario)
    return out
