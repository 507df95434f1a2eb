"""JSON-lines results files: append-only, resumable, and never destroying a file qnjax did not write.

A results file holds one JSON object per line, each with a ``key`` field (``index`` for design
sweeps, ``distance_km`` for distance sweeps) and the run's ``head`` fields (protocol, scenario
fingerprint, settings…). Before anything is written, an existing file is read and checked
whole: it must be UTF-8 JSON lines of this shape and of the same run. Otherwise it is refused
with a ``ValueError`` naming the file and the line, and left byte-identical:

* a directory, a missing folder, a binary file, a file holding other text (notes,
  ``{"foo": 1}``), rows of another run (other scenario, settings or parameters);
* a corrupt line anywhere but the end (a killed run tears at most the last, unterminated line;
  a complete line that does not parse means the file was edited or is not ours);
* with ``unphysical`` (the optimizer's distance sweeps), a row whose figures are not finite or
  not physical (:func:`first_unphysical`: a NaN key rate, a fidelity above 1…), anywhere in
  the file: such a row was edited or is corrupt, and would otherwise be reused silently.

Only a torn tail (bytes after the last newline that begin like one of our rows) is cut off,
by writing the good part to a temporary file and ``os.replace`` (atomic). ``resume=False``
replaces a qnjax results file by an empty one the same way.

Rows are strict JSON: a NaN or infinity is written as ``null`` and the field's true value is
kept under ``"nonfinite"`` (``{"mean_time": null, "nonfinite": {"mean_time": "inf"}}``);
reading restores it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from typing import Callable, Iterable, Mapping

from ._files import replace_bytes


def row_key(x):
    """A row's key field as a dict key (JSON lists become tuples, recursively)."""
    return tuple(row_key(v) for v in x) if isinstance(x, list) else x


NONFINITE = "nonfinite"  # field holding, as strings, the values written as null in a row


def _has_nonfinite(v) -> bool:
    if isinstance(v, float):
        return not math.isfinite(v)
    return isinstance(v, (list, tuple)) and any(_has_nonfinite(x) for x in v)


def _as_text(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return [_as_text(x) for x in v] if isinstance(v, (list, tuple)) else v


def _as_null(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return [_as_null(x) for x in v] if isinstance(v, (list, tuple)) else v


def _from_text(v):
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    return [_from_text(x) for x in v] if isinstance(v, list) else v


def encode_row(row: Mapping) -> str:
    """One strict-JSON line: a non-finite number becomes ``null`` and the field's value is kept,
    with ``"nan"`` / ``"inf"`` / ``"-inf"`` strings, under ``"nonfinite"`` (lossless)."""
    bad = {k: _as_text(v) for k, v in row.items() if _has_nonfinite(v)}
    if bad:
        row = {**{k: _as_null(v) if k in bad else v for k, v in row.items()}, NONFINITE: bad}
    return json.dumps(row, allow_nan=False)


def decode_row(row: dict) -> dict:
    """Inverse of :func:`encode_row` (older rows with ``NaN`` / ``Infinity`` literals read as well)."""
    bad = row.pop(NONFINITE, None) if isinstance(row, dict) else None
    if isinstance(bad, dict):
        row.update({k: _from_text(v) for k, v in bad.items()})
    return row


# ----------------------------------------------------------------------------- figures

_TOL = 1e-6


def figure_bounds(key: str):
    """Physical range of a figure, by its name (``None``: only finiteness)."""
    k = key.lower()
    if "stderr" in k:
        return 0.0, math.inf
    if "fidelity" in k:
        return 0.0, 1.0
    if "werner" in k:
        return -1 / 3, 1.0
    if k in ("coverage", "success_probability", "p_gen", "p_swap") or k.endswith("_probability"):
        return 0.0, 1.0
    if k.startswith("key_fraction"):
        return -math.inf, 1.0
    if "rate" in k and "learning" not in k or k.startswith("skr") or k in ("plob", "tgw") \
            or k.startswith("direct") or k.endswith("_per_channel_use"):
        return 0.0, math.inf
    if k.startswith("mean_time") or k == "wall_s":
        return 0.0, math.inf
    if k == "mean_state":
        return 0.0, 1.0
    return None


def walk_figures(obj, key: str = "", path: str = ""):
    """Yield ``(path, value, bounds)`` of every number in a JSON-like object (a figure written
    as ``null`` or ``"inf"``, the JSON-safe encodings of NaN and infinities, counts as one)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk_figures(v, str(k), f"{path}.{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from walk_figures(v, key, f"{path}[{i}]")
    elif obj is None or isinstance(obj, str):
        b = figure_bounds(key)
        if b is not None and (obj is None or obj.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity")):
            yield path, math.nan if obj is None else float(obj), b
    elif isinstance(obj, bool):
        return
    else:
        try:
            v = float(obj)
        except OverflowError:  # an integer beyond the float range
            v = math.inf if obj > 0 else -math.inf
        except (TypeError, ValueError):
            return
        yield path, v, figure_bounds(key)


def first_unphysical(out) -> str | None:
    """The first figure of ``out`` that is non-finite or outside its physical range, in words
    (``None`` when every figure is fine)."""
    for path, v, b in walk_figures(out):
        if not math.isfinite(v):
            return f"{path} is {v}"
        if b is not None and not (b[0] - _TOL * max(1, abs(b[0])) <= v <= b[1] + _TOL * max(1.0, abs(b[1]))):
            return f"{path} = {v:.6g} lies outside its physical range [{b[0]:.4g}, {b[1]:.4g}]"
    return None


def _not_ours(path, why: str) -> ValueError:
    return ValueError(f"out: {str(path)!r} is not a qnjax results file ({why}); it was left unchanged; "
                      "give a new file name")


def scan_results(path, data: bytes, *, key: str, head: Mapping | None = None,
                 check: Callable[[dict, int], None] | None = None,
                 unphysical: Callable[[dict], str | None] | None = None) -> tuple[dict, int]:
    """Parse ``data`` (the bytes of ``path``) as a results file; return ``(rows by key, good bytes)``.

    ``unphysical(row)`` may name, in words, a figure of a row that no run writes (see
    :func:`first_unphysical`); it is asked of every row first, so a corrupt row is named
    even in a file of another run. Then ``head`` fields must equal in every row, and
    ``check(row, line_number)`` may raise ``ValueError`` for other mismatches. Raises
    ``ValueError`` (the file is left alone) for anything but well-formed rows followed by at
    most one torn, unterminated row."""
    head = dict(head or {})
    rows: dict = {}
    if not data:
        return rows, 0
    if b"\0" in data:
        raise _not_ours(path, "binary data")
    *lines, tail = data.split(b"\n")
    good = 0
    parsed = []
    for n, line in enumerate(lines, 1):
        good += len(line) + 1
        if not line.strip():
            continue
        try:
            row = decode_row(json.loads(line.decode("utf-8")))
        except UnicodeDecodeError:
            raise _not_ours(path, f"line {n} is not UTF-8 text") from None
        except ValueError:
            if not parsed:
                raise _not_ours(path, f"line {n} is not a JSON row") from None
            raise ValueError(f"out: {str(path)!r} line {n} is corrupt (not JSON) although rows follow it; "
                             "qnjax only ever tears the last line; repair or move the file (it was left "
                             "unchanged)") from None
        if not isinstance(row, dict) or key not in row:
            raise _not_ours(path, f"line {n} has no {key!r} field")
        parsed.append((n, row))
    if unphysical is not None:
        for n, row in parsed:
            bad = unphysical(row)
            if bad:
                raise ValueError(f"out: {str(path)!r} line {n} ({key}={row_key(row[key])!r}): {bad}; the results "
                                 "file was edited or is corrupt; repair or remove that line, or use a new file")
    for n, row in parsed:
        for f, want in head.items():
            if row.get(f) != want:
                raise ValueError(f"out: {str(path)!r} line {n} ({key}={row[key]!r}) has {f}={row.get(f)!r}, "
                                 f"this run has {want!r}; use a new file or resume=False")
        if check is not None:
            check(row, n)
        rows[row_key(row[key])] = row
    if tail.strip():
        starts = [f'{{"{k}": '.encode() for k in (key, *head)]
        torn = any(s.startswith(tail) or tail.startswith(s) for s in starts)
        if not torn:
            raise _not_ours(path, f"line {len(lines) + 1} is not a row")
    return rows, good


class ResultsWriter:
    """Append-only JSON-lines results file with resume.

    ``ResultsWriter(path, resume=True)`` reads and checks the rows already there (see the module
    docstring; a torn last line from a killed run is cut off), :attr:`rows` maps each row's
    ``key`` field to the row, and :meth:`write` appends rows and flushes them to disk.
    ``resume=False`` starts the file afresh (only a qnjax results file, or no file, is
    replaced). ``head``: fields every existing row must carry with these values;
    ``check(row, line)``: further checks, raising ``ValueError``; ``unphysical(row)``: the
    first figure of a row that no run writes, in words, or ``None`` (e.g. a NaN or negative
    key rate: the file was edited or is corrupt; asked of every row, see :func:`scan_results`).
    All checks run before the file is touched. The file's folder must exist (it is not
    created).
    """

    def __init__(self, path, *, resume: bool = True, key: str = "index", head: Mapping | None = None,
                 check: Callable[[dict, int], None] | None = None,
                 unphysical: Callable[[dict], str | None] | None = None):
        self.path, self.key = Path(path), key
        self.rows: dict = {}
        self._fh = None
        p = self.path
        if p.is_dir():
            raise ValueError(f"out: {str(p)!r} is a directory; give a file name")
        if p.exists() and not p.is_file():
            raise ValueError(f"out: {str(p)!r} is not a regular file")
        if p.exists():
            try:
                data = p.read_bytes()
            except OSError as exc:
                raise ValueError(f"out: cannot read {str(p)!r}: {exc.strerror or exc}") from None
            if resume:
                self.rows, good = scan_results(p, data, key=key, head=head, check=check, unphysical=unphysical)
            else:
                scan_results(p, data, key=key)  # any qnjax results file may be started afresh
                good = 0
            if good < len(data):
                replace_bytes(p, data[:good])
        elif not p.parent.exists():  # like every CLI output: a typo in a folder name is not created
            raise ValueError(f"out: folder {str(p.parent)!r} does not exist; create it first")
        try:
            self._fh = open(p, "a", encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"out: cannot write {str(p)!r}: {exc.strerror or exc}") from None

    def write(self, rows: Iterable[dict]) -> None:
        text = "".join(encode_row(r) + "\n" for r in rows)
        self._fh.write(text)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["ResultsWriter", "scan_results", "encode_row", "decode_row", "row_key", "first_unphysical"]
