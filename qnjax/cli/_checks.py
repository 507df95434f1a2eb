"""Boundary checks of the CLI: option ranges, lists, resource estimates, output paths and the
figures a command is about to print.

Every failure is one line on stderr naming the option, the bad value and what is allowed,
and exit status 2 (:func:`qnjax.cli._app.fail`); nothing is computed or written before the
checks pass. A figure the CLI would print that is not finite or not physical (a Werner
parameter above 1, a coverage below 0, …) is never printed: the command stops with a
named error instead. JSON on stdout is always strict JSON (no ``NaN`` / ``Infinity``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .._results_file import figure_bounds, first_unphysical, walk_figures
from ._app import fail

SEED_MAX = 2**32 - 1
GiB = 2**30

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": GiB, "gb": 10**9, "gib": GiB, "t": 2**40, "tb": 10**12, "tib": 2**40}

MAX_MEMORY_HELP = ("Refuse work whose estimated memory exceeds this, e.g. 8GiB or 512MiB "
                   "(default: $QNJAX_MAX_MEMORY, else half of this machine's memory).")


# ----------------------------------------------------------------------------- numbers


def int_in(value, option: str, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]``, else a named error."""
    if value is None:
        return value
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo} .. {hi}" if hi is not None else f">= {lo}"
        fail(f"{option} must be an integer in {rng}; got {value}")
    return int(value)


def float_in(value, option: str, lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False,
             hi_open: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a finite float in the interval (``inf`` only when ``allow_inf``)."""
    if value is None:
        return value
    v = float(value)
    if math.isnan(v):
        fail(f"{option} must be a number; got nan")
    if math.isinf(v) and not (allow_inf and v > 0):
        fail(f"{option} must be finite{' (or inf for none)' if allow_inf else ''}; got {value}")
    if (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
        lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
        fail(f"{option} must lie in {lb}{lo:g}, {hi:g}{rb}; got {value!r}")
    return 0.0 if v == 0 else v  # -0 -> 0


def items(text: str, option: str) -> list[str]:
    """Comma-separated items; an empty item (``1,,2``, a trailing comma) is an error."""
    parts = [p.strip() for p in str(text).split(",")]
    if any(not p for p in parts):
        fail(f"{option}: empty item in {text!r}; give comma-separated values without gaps")
    return parts


# ----------------------------------------------------------------------------- memory


def parse_bytes(text: str, option: str = "--max-memory") -> int:
    t = str(text).strip().lower().replace(" ", "")
    num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(num):]
    try:
        v = float(num)
    except ValueError:
        v = math.nan
    if unit not in _UNITS or not math.isfinite(v) or v <= 0:
        fail(f"{option}: expected a positive size such as 8GiB, 512MiB or 2e9; got {text!r}")
    return int(min(v * _UNITS[unit], 2**62))


def memory_limit(max_memory: str | None) -> tuple[int, str]:
    """The byte limit and where it comes from."""
    if max_memory is not None:
        return parse_bytes(max_memory), "--max-memory"
    env = os.environ.get("QNJAX_MAX_MEMORY")
    if env:
        return parse_bytes(env, "QNJAX_MAX_MEMORY"), "QNJAX_MAX_MEMORY"
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        total = 16 * GiB
    return max(total // 2, GiB), "half of this machine's memory"


def _size(n: float) -> str:
    return f"{n / GiB:.3g} GiB" if n >= 0.1 * GiB else f"{n / 2**20:.3g} MiB"


def need_memory(nbytes: float, max_memory: str | None, what: str, lower: str) -> None:
    """Refuse before allocating when the estimate ``nbytes`` exceeds the limit."""
    limit, source = memory_limit(max_memory)
    if not nbytes <= limit:
        fail(f"{what} needs about {_size(nbytes)}; the limit is {_size(limit)} ({source}); "
             f"{lower} or raise --max-memory")


def delivery_bytes(depth: int, t_trunc: int, werner: bool = True, tree_nodes: int | None = None) -> int:
    """Working memory of one exact-engine design (the engine's own chunking estimate)."""
    from .._truncation import fast_len

    n = 2 * (int(t_trunc) + depth + 1)
    fft = fast_len(n) if n < 2**40 else n  # a bound, without searching huge sizes
    factor = 6 if tree_nodes is None else 2 * (tree_nodes + 2)
    return 16 * (2 if werner else 4) * fft * factor


# ----------------------------------------------------------------------------- paths


def output_path(path, option: str = "--plot") -> Path | None:
    """A plot path checked before any work (:func:`qnjax._style.check_path`: a known image
    extension, not a directory, its folder exists, an existing file is an image of that kind)."""
    if path is None:
        return None
    from .._style import check_path

    p = Path(path)
    try:
        check_path(p, option)
    except ValueError as exc:
        fail(str(exc))
    parent = p.parent if str(p.parent) else Path(".")
    if (p.exists() and not os.access(p, os.W_OK)) or not os.access(parent, os.W_OK):
        fail(f"{option}: {str(p)!r} is not writable")
    return p


def distinct_outputs(paths: dict) -> None:
    """Refuse, before any work, one file given to two output options (``{option: path}``;
    ``None`` for an option not given)."""
    seen: dict = {}
    for option, path in paths.items():
        if path is None:
            continue
        p = Path(path)
        key = os.path.normcase(os.path.realpath(p))
        if key in seen:
            fail(f"{option}: {str(p)!r} is also the {seen[key]} file; give each output its own file")
        seen[key] = option


def save_figure(fig, path, option: str = "--plot", dpi: int | None = None) -> None:
    """Save atomically (:func:`qnjax._style.save`); a failure is a named error and leaves an
    existing file as it was."""
    from .._style import save

    if dpi:
        fig.set_dpi(dpi)
    try:
        save(fig, path, option)
    except (OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(msg if msg.startswith(option) else f"{option}: cannot save {str(path)!r}: {msg}")


# ----------------------------------------------------------------------------- results


# the figure checks live in the library (a resumed results file is checked with them too)
_bounds, _walk = figure_bounds, walk_figures


def check_result(out: dict, hint: str, reason: str | None = None) -> None:
    """Stop with a named error when a figure about to be printed is non-finite or unphysical.

    ``hint`` says what to do (e.g. raise ``--t-trunc``); ``reason`` is the engine's own
    explanation when it gives one."""
    bad = first_unphysical(out)
    if bad:
        why = f" ({reason})" if reason else ""
        fail(f"the result is not trustworthy: {bad}{why}; {hint}")


def finite_or_null(out: dict, prefixes: tuple) -> dict:
    """Top-level fields named ``prefix…`` whose value is not finite (a gain over a baseline of
    rate 0) become ``None`` (JSON ``null``; tables print n/a)."""
    def fix(v):
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    return {k: fix(v) if k.startswith(prefixes) else v for k, v in out.items()}


def echo_json(out: dict) -> None:
    """Print ``out`` as strict JSON (no NaN / Infinity literals)."""
    import typer

    try:
        text = json.dumps(out, allow_nan=False)
    except ValueError:
        bad = next((p for p, v, _ in _walk(out, "", "") if not math.isfinite(v)), "a field")
        fail(f"the result holds a non-finite number ({bad}); not printed as JSON")
    typer.echo(text)
