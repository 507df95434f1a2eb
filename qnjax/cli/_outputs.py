"""What every command writes besides its table: the provenance block, the ``--csv`` export and
the tables' layout.

* :func:`provenance_block` is the ``provenance`` key of every ``--json`` object and the
  ``#`` comment block of every CSV file (:mod:`qnjax._provenance`).
* :func:`check_csv` refuses a bad ``--csv`` path before any work; :func:`write_rows` writes
  the result rows and the provenance (:func:`qnjax.export.write_csv`).
* :func:`print_table` prints a rich table that never cuts a number at any console width
  (columns split into parts when they do not fit); :func:`cell` writes numbers in engineering
  notation with units and an empty cell as the words for why it is empty.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from ._app import fail

CSV_HELP = ("Also write the result as a CSV table to this file (provenance in '#' comment lines; "
            "qnjax.export.read_csv reads it back).")


def provenance_block(*, seed: int | None = None, settings: Mapping[str, Any] | None = None,
                     scenario: Mapping[str, Any] | None = None, dtype: str | None = None) -> dict:
    """The provenance of this command's result (versions, device, dtype, seed, settings,
    scenario in full and as SHA-256, the command line)."""
    from .._provenance import provenance

    return provenance(seed=seed, settings=settings, scenario=scenario, dtype=dtype)


def check_csv(path) -> Path | None:
    """Refuse a ``--csv`` path :func:`qnjax.export.write_csv` would refuse, before any work."""
    if path is None:
        return None
    from ..export import check_csv_target as _check_target

    p = Path(path)
    try:
        _check_target(p)
    except ValueError as exc:
        fail(str(exc))
    return p


def write_rows(path, rows: Iterable[Mapping[str, Any]], provenance: Mapping[str, Any]) -> None:
    """Write ``rows`` and ``provenance`` to the ``--csv`` file; a failure is a named error."""
    from ..export import write_csv

    try:
        write_csv(path, rows, provenance)
    except (OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(msg if msg.startswith("--csv") else f"--csv: cannot write {str(path)!r}: {msg}")


def echo_result(out: dict, provenance: Mapping[str, Any], plot=None) -> None:
    """Print a command's ``--json`` object: its result, the ``plot`` path when one was saved,
    and the ``provenance`` block last (:func:`qnjax.cli._checks.echo_json`, strict JSON)."""
    from ._checks import echo_json

    if plot is not None:
        out["plot"] = str(plot)
    out["provenance"] = provenance
    echo_json(out)


def columns_of(data: Mapping[str, list], keys: Iterable[str] | None = None) -> list[dict]:
    """Rows (one per index) from a dict of equally long lists (a sweep's output)."""
    lists = {k: v for k, v in data.items() if isinstance(v, list)}
    n = len(data.get("distance_km", next(iter(lists.values()), [])))
    keys = [k for k in (keys or lists) if k in lists and len(lists[k]) == n]
    return [{k: lists[k][i] for k in keys} for i in range(n)]


# ----------------------------------------------------------------------------- tables


def _words(text: str) -> int:
    return max((len(w) for w in text.split()), default=1)


def _layout(widths: list[int], mins: list[int], avail: int) -> list[int] | None:
    """Column widths that fit ``avail`` characters (borders included), shrinking the columns
    that may wrap towards their longest word; ``None`` when even that does not fit."""
    def total(ws):
        return sum(ws) + 3 * len(ws) + 1

    ws = list(widths)
    while total(ws) > avail:
        free = [i for i in range(len(ws)) if ws[i] > mins[i]]
        if not free:
            return None
        i = max(free, key=lambda k: ws[k] - mins[k])
        ws[i] -= 1
    return ws


def print_table(title: str | None, headers: list[str], rows: list[list[str]], *, keep: int = 1,
                caption: str | None = None, con=None, text_cols: Iterable[int] = ()) -> None:
    """Print a table that loses nothing at any console width.

    Every column gets a fixed width: a number column the width of its longest cell (numbers
    never wrap), a text column (``text_cols``) and the first ``keep`` columns at least their
    longest word (they wrap at spaces; a word longer than half the width, such as a protocol
    tree, folds); headers wrap at spaces. When the columns do not fit
    side by side, the table is printed in parts, each repeating the first ``keep`` columns
    (the row labels), instead of cutting cells with an ellipsis."""
    con = con or console()
    text = set(text_cols) | set(range(keep))
    natural = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(headers)]
    mins = [max([(_words(r[i]) if i in text else len(r[i])) for r in rows] + [_words(h)])
            for i, h in enumerate(headers)]
    avail = max(con.width, 20)
    for i in set(text_cols) - set(range(keep)):  # a word longer than half the width (a protocol
        mins[i] = min(mins[i], max(12, avail // 2))  # tree) folds instead of squeezing the labels

    parts, cur = [], list(range(keep))
    for i in range(keep, len(headers)):
        if len(cur) == keep or _layout([mins[k] for k in cur + [i]], [mins[k] for k in cur + [i]], avail):
            cur.append(i)
        else:
            parts.append(cur)
            cur = list(range(keep)) + [i]
    parts.append(cur)
    from rich.table import Table

    for n, cols in enumerate(parts):
        ws = _layout([natural[i] for i in cols], [mins[i] for i in cols], avail) or [mins[i] for i in cols]
        t = Table(title=title if n == 0 else None, header_style="bold", caption_justify="left",
                  caption=caption if n == len(parts) - 1 else None)
        for i, w in zip(cols, ws):
            right = i not in text and all(
                not v or v[0] in "0123456789+-." or v.startswith(("n/a", "inf")) for v in (r[i] for r in rows))
            t.add_column(headers[i], justify="right" if right else "left", width=w, overflow="fold")
        for r in rows:
            t.add_row(*[r[i] for i in cols])
        con.print(t)


def cell(value: Any, unit: str = "", *, na: str = "n/a", digits: int = 3) -> str:
    """A number in engineering notation with its unit; ``None`` / NaN give ``na`` (the words
    for why the cell is empty, e.g. "n/a (no repeater)")."""
    from .._style import eng

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return na
    if isinstance(value, str):
        return value or na
    return eng(value, unit, digits)


def console(width: int | None = None):
    """The stdout console (``QNJAX_WIDTH`` or the terminal's width)."""
    import os

    from rich.console import Console

    w = width or os.environ.get("QNJAX_WIDTH")
    return Console(width=int(w)) if w else Console()
