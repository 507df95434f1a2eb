"""Tables of results as CSV, with the provenance block in ``#`` comment lines.

A qnjax CSV file starts with the line ``# qnjax results``, then one ``# key: <json>`` line per
provenance field, then an ordinary CSV header and one row per result. Numbers are written with
``repr`` (they round-trip exactly), lists and mappings as JSON, ``None`` as an empty cell.
Readers that skip comment lines (``pandas.read_csv(path, comment="#")``, spreadsheets after the
comment block) see a plain table; :func:`read_csv` gives back the rows and the provenance.

:func:`to_columns` turns any qnjax result (a :class:`~qnjax.DeliveryResult`, a Monte Carlo
result, an :class:`~qnjax.design.OptimizeResult`, the dict of :func:`qnjax.design.sweep`)
into a dict of plain NumPy arrays, :func:`to_rows` into table rows (plain Python values, one per
design or distance) that :func:`write_csv` writes; :func:`to_pandas` is the same table as a
``pandas.DataFrame`` when pandas is installed (it is optional).

A file is only ever replaced atomically, and only if it is absent or itself a qnjax CSV file:
anything else at the path is refused with a ``ValueError`` and left byte-identical.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from jaxtyping import Shaped

from ._files import check_target, replace_bytes

__all__ = ["write_csv", "read_csv", "check_csv_target", "to_columns", "to_rows", "to_pandas", "MARKER"]

MARKER = "# qnjax results"


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"write_csv: non-finite number {v!r} in a results row; qnjax never "
                             "writes NaN or infinity as a result")
        return repr(v)
    if isinstance(v, (list, tuple, Mapping)):
        return json.dumps(v, allow_nan=False, separators=(",", ":"))
    return str(v)


def _parse(text: str) -> Any:
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    if text[0] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_csv_target(path: str | os.PathLike) -> None:
    """Refuse (``ValueError`` naming ``--csv``) a path :func:`write_csv` would refuse: a
    directory, a missing folder, or an existing file that is not a qnjax CSV file."""
    path = Path(path)
    check_target(path, "--csv")
    if path.exists():
        try:
            with path.open("r", encoding="utf-8") as fh:
                first = fh.readline().rstrip("\r\n")
        except (UnicodeDecodeError, OSError) as exc:
            raise ValueError(f"--csv: {str(path)!r} exists and is not a qnjax CSV file "
                             f"({type(exc).__name__}); refusing to overwrite it") from None
        if first != MARKER:
            raise ValueError(f"--csv: {str(path)!r} exists and is not a qnjax CSV file; "
                             "refusing to overwrite it")


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]],
              provenance: Mapping[str, Any] | None = None) -> Path:
    """Write result rows (mappings of one result each) to ``path`` as a qnjax CSV file.

    Columns are the union of the rows' keys in first-seen order. The file is written to a
    temporary file beside ``path`` and moved into place, so a reader never sees half a file.

    Raises:
      ValueError: ``path`` is a directory, its folder is missing, it holds a file that is not
        a qnjax CSV file, or a row holds a non-finite number.
    """
    path = Path(path)
    rows = [dict(r) for r in rows]
    check_csv_target(path)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    buf.write(MARKER + "\n")
    for k, v in (provenance or {}).items():
        buf.write(f"# {k}: {json.dumps(v, allow_nan=False, ensure_ascii=False)}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    replace_bytes(path, buf.getvalue().encode("utf-8"))
    return path


def read_csv(path: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read a qnjax CSV file back: ``(rows, provenance)``.

    Raises:
      ValueError: the file does not start with the qnjax marker line or is malformed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{str(path)!r} is not a qnjax CSV file (not UTF-8 text)") from None
    lines = text.splitlines()
    if not lines or lines[0] != MARKER:
        raise ValueError(f"{str(path)!r} is not a qnjax CSV file (no {MARKER!r} first line)")
    prov: dict[str, Any] = {}
    i = 1
    while i < len(lines) and lines[i].startswith("# "):
        key, sep, value = lines[i][2:].partition(": ")
        if not sep:
            raise ValueError(f"{str(path)!r}, line {i + 1}: malformed provenance line")
        try:
            prov[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{str(path)!r}, line {i + 1}: malformed provenance value") from None
        i += 1
    reader = csv.reader(lines[i:])
    header = next(reader, None)
    if header is None:
        return [], prov
    rows = []
    for n, cells in enumerate(reader, start=i + 2):
        if len(cells) != len(header):
            raise ValueError(f"{str(path)!r}, line {n}: {len(cells)} cells, the header has {len(header)}")
        rows.append({k: _parse(c) for k, c in zip(header, cells)})
    return rows, prov


# ----------------------------------------------------------------------------- results as tables

_PER_TIME = ("pmf", "state_t", "times", "werner")  # long per-design axes, left out of table rows


def _plain(v: Any) -> Any:
    a = np.asarray(v)
    if a.ndim == 0:
        x = a.item()
        return None if isinstance(x, float) and not math.isfinite(x) else x
    return [_plain(x) for x in a]


def to_columns(result: Any) -> dict[str, Shaped[np.ndarray, "..."] | str | list | None]:
    """A result as a dict of plain NumPy arrays (strings stay strings).

    ``DeliveryResult``: every field (design batch shape in front) plus ``dtype``;
    Monte Carlo result: every estimate; ``OptimizeResult``: its JSON fields as arrays;
    a sweep dict: its per-distance lists."""
    if hasattr(result, "_asdict"):  # DeliveryResult
        cols = {k: np.asarray(v) for k, v in result._asdict().items()}
        cols["dtype"] = str(cols["mean_time"].dtype)
        return cols
    if hasattr(result, "to_json"):  # OptimizeResult
        src = result.to_json()
    elif hasattr(result, "to_dict") and hasattr(result, "mean_time_stderr"):  # Monte Carlo
        src = {k: getattr(result, k) for k in ("mean_time", "mean_time_stderr", "mean_werner",
                                              "mean_werner_stderr", "mean_fidelity", "mean_fidelity_stderr",
                                              "mean_state", "key_fraction", "secret_key_rate", "samples",
                                              "undelivered", "trajectories", "times", "werner")}
        src["dtype"] = str(np.asarray(result.mean_time).dtype)
    elif isinstance(result, Mapping):
        src = dict(result)
    else:
        raise TypeError(f"to_columns: not a qnjax result: {type(result).__name__}")
    out = {}
    for k, v in src.items():
        if isinstance(v, str) or v is None:
            out[k] = v
            continue
        try:
            a = np.asarray(v)
        except ValueError:  # ragged lists (per-distance positions, candidates)
            out[k] = v
            continue
        out[k] = v if a.dtype == object else a
    return out


def to_rows(result: Any) -> list[dict[str, Any]]:
    """A result as table rows of plain Python values (non-finite numbers as ``None``).

    One row per design of a batched ``DeliveryResult`` or Monte Carlo result (``index`` is the
    flat design index; the per-time arrays ``pmf`` / ``state_t`` / samples are left out), one
    row for an ``OptimizeResult`` (without its history), one row per distance of a sweep dict."""
    if isinstance(result, Mapping) and "distance_km" in result and isinstance(result["distance_km"], list):
        n = len(result["distance_km"])
        keys = [k for k, v in result.items()
                if k not in ("structures", "notes") and isinstance(v, list) and len(v) == n]
        return [{k: _plain(result[k][i]) if not isinstance(result[k][i], (str, list)) else result[k][i]
                 for k in keys} for i in range(n)]
    if hasattr(result, "to_json"):
        j = result.to_json()
        j.pop("history", None)
        return [j]
    cols = to_columns(result)
    dtype = cols.pop("dtype", None)
    batch = np.shape(cols["mean_time"])
    n = int(np.prod(batch)) if batch else 1
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"index": i}
        for k, v in cols.items():
            if k in _PER_TIME or isinstance(v, str) or v is None:
                continue
            a = np.asarray(v).reshape((n,) + np.shape(v)[len(batch):])
            row[k] = _plain(a[i])
        if dtype:
            row["dtype"] = dtype
        rows.append(row)
    return rows


def to_pandas(result: Any) -> Any:  # a pandas.DataFrame (pandas is optional)
    """:func:`to_rows` as a ``pandas.DataFrame`` (pandas is optional: ``ImportError`` naming
    it when missing)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_pandas needs pandas (pip install pandas); to_rows gives the same "
                          "table without it") from None
    return pd.DataFrame(to_rows(result))
