"""One style for every figure and table qnjax draws: number formats, figure layout, saving.

* :func:`eng` formats numbers in engineering notation with a unit (``2.90e-3 bits/s``); NaN,
  ``None`` and empty values read ``n/a`` so an empty cell never looks like a lost number.
* :func:`figure` opens a matplotlib figure in the house style (Agg backend, no display needed);
  :func:`caption` writes the scheme/hardware summary under the axes; :func:`save` writes PNG, PDF
  or SVG by the file's extension, atomically, and never over a file that is not an image.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Sequence

from ._files import check_target, replace_bytes

__all__ = ["NA", "eng", "figure", "caption", "save", "check_path", "FORMATS"]

NA = "n/a"
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".pdf": (b"%PDF",), ".svg": (b"<?xml", b"<svg")}
_SERIES = ["#1f4e79", "#c0504d", "#4f8a3a", "#8064a2", "#e0a030", "#3aa6b9", "#7f7f7f"]


def eng(x: Any, unit: str = "", digits: int = 3) -> str:
    """``x`` in engineering notation (exponent a multiple of 3) with ``digits`` significant digits.

    ``eng(0.0029, "bits/s") == "2.90e-3 bits/s"``, ``eng(29.6) == "29.6"``, ``eng(12345) == "12.3e3"``;
    ``None``, NaN and non-numbers give ``"n/a"``; infinities ``"inf"``.
    """
    try:
        v = float(x)
    except (TypeError, ValueError):
        return NA
    if math.isnan(v):
        return NA
    suffix = f" {unit}" if unit else ""
    if math.isinf(v):
        return ("inf" if v > 0 else "-inf") + suffix
    if v == 0:
        return "0" + suffix
    exp3 = 3 * math.floor(math.log10(abs(v)) / 3)
    mant = v / 10.0 ** exp3
    decimals = max(digits - 1 - int(math.floor(math.log10(abs(mant)))), 0)
    text = f"{mant:.{decimals}f}"
    if abs(float(text)) >= 1000:  # rounding carried into the next group: 999.7 -> 1.00e3
        exp3 += 3
        mant = v / 10.0 ** exp3
        text = f"{mant:.{digits - 1}f}"
    return (text if exp3 == 0 else f"{text}e{exp3}") + suffix


def figure(ncols: int = 1, nrows: int = 1, *, width: float = 5.2, height: float = 3.6):
    """A figure with ``nrows × ncols`` axes in the qnjax style: ``(fig, axes)`` (axes always a list)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "axes.prop_cycle": matplotlib.cycler(color=_SERIES), "font.size": 9, "legend.fontsize": 8,
        "legend.frameon": False, "figure.dpi": 110, "savefig.bbox": "tight",
    })
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, [ax for row in axes for ax in row]


def caption(fig, lines: Sequence[str]) -> None:
    """The scheme and hardware summary, small, under the axes."""
    text = "\n".join(line for line in lines if line)
    if text:
        fig.text(0.01, -0.01, text, ha="left", va="top", fontsize=7.5, color="#404040", wrap=True)


def _check(path: Path, option: str) -> str:
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise ValueError(f"{option}: {str(path)!r} has no known image extension; use one of "
                         f"{', '.join(FORMATS)}")
    check_target(path, option)
    if path.exists():
        try:
            with path.open("rb") as fh:
                head = fh.read(512).lstrip()
        except OSError as exc:
            raise ValueError(f"{option}: cannot read {str(path)!r}: {exc.strerror}") from None
        if not any(head.startswith(m) for m in _MAGIC[ext]):
            raise ValueError(f"{option}: {str(path)!r} exists and is not a {FORMATS[ext].upper()} "
                             "image; refusing to overwrite it")
    return FORMATS[ext]


def check_path(path: str | os.PathLike, option: str = "--plot") -> None:
    """Refuse, before any work, a plot path :func:`save` would refuse (``ValueError``)."""
    _check(Path(path), option)


def save(fig, path: str | os.PathLike, option: str = "--plot") -> Path:
    """Save ``fig`` to ``path`` (PNG, PDF or SVG by extension) atomically; close the figure.

    Raises:
      ValueError: unknown extension, a directory, a missing folder, or an existing file that is
        not an image of that format (left byte-identical).
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = _check(path, option)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt)
    finally:
        plt.close(fig)
    replace_bytes(path, buf.getvalue())
    return path
