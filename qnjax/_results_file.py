"""JSON-lines results files: append-only, resumable, and never destroying a file qnjax did not write.

A results file holds one JSON object per line, each with a ``key`` field (``index`` for design
sweeps, ``distance_km`` for distance sweeps) and the run's ``head`` fields (protocol, scenario
fingerprint, settings…). Before anything is written, an existing file is read and checked
whole: it must be UTF-8 JSON lines of this shape and of the same run. Otherwise it is refused
with a ``ValueError`` naming the file and the line, and left byte-identical:

* a directory, a binary file, a file holding other text (notes, ``{"foo": 1}``), rows of
  another run (other scenario, settings or parameters);
* a corrupt line anywhere but the end (a killed run tears at most the last, unterminated line;
  a complete line that does not parse means the file was edited or is not ours).

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


def _not_ours(path, why: str) -> ValueError:
    return ValueError(f"out: {str(path)!r} is not a qnjax results file ({why}); it was left unchanged; "
                      "give a new file name")


def scan_results(path, data: bytes, *, key: str, head: Mapping | None = None,
                 check: Callable[[dict, int], None] | None = None) -> tuple[dict, int]:
    """Parse ``data`` (the bytes of ``path``) as a results file; return ``(rows by key, good bytes)``.

    ``head`` fields must equal in every row; ``check(row, line_number)`` may raise
    ``ValueError`` for other mismatches. Raises ``ValueError`` (the file is left alone) for
    anything but well-formed rows followed by at most one torn, unterminated row."""
    head = dict(head or {})
    rows: dict = {}
    if not data:
        return rows, 0
    if b"\0" in data:
        raise _not_ours(path, "binary data")
    *lines, tail = data.split(b"\n")
    good = 0
    for n, line in enumerate(lines, 1):
        good += len(line) + 1
        if not line.strip():
            continue
        try:
            row = decode_row(json.loads(line.decode("utf-8")))
        except UnicodeDecodeError:
            raise _not_ours(path, f"line {n} is not UTF-8 text") from None
        except ValueError:
            if not rows:
                raise _not_ours(path, f"line {n} is not a JSON row") from None
            raise ValueError(f"out: {str(path)!r} line {n} is corrupt (not JSON) although rows follow it; "
                             "qnjax only ever tears the last line; repair or move the file (it was left "
                             "unchanged)") from None
        if not isinstance(row, dict) or key not in row:
            raise _not_ours(path, f"line {n} has no {key!r} field")
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
    ``check(row, line)``: further checks, raising ``ValueError``. All checks run before the
    file is touched.
    """

    def __init__(self, path, *, resume: bool = True, key: str = "index", head: Mapping | None = None,
                 check: Callable[[dict, int], None] | None = None):
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
                self.rows, good = scan_results(p, data, key=key, head=head, check=check)
            else:
                scan_results(p, data, key=key)  # any qnjax results file may be started afresh
                good = 0
            if good < len(data):
                replace_bytes(p, data[:good])
        elif p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
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


__all__ = ["ResultsWriter", "scan_results", "encode_row", "decode_row", "row_key"]
