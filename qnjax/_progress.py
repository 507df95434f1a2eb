"""Progress of long work on stderr, with elapsed and estimated remaining time.

One implementation for every command and library loop that can take more than a few seconds:

* on a terminal, a rich progress bar (description, bar, done/total, elapsed, remaining),
  removed when the work ends;
* elsewhere (logs, CI, pipes), one plain line per stage and at most one line every
  ``interval`` seconds: ``qnjax: optimizing 3 seg: 4/10 (12 s elapsed, about 18 s left)``;
* nothing at all when disabled. Progress never goes to stdout, so ``--json`` output stays one
  JSON object.

The remaining time is the elapsed time scaled by the work left (``elapsed · (total − done) /
done``): an estimate, shown as "about".
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

__all__ = ["Progress", "format_seconds"]


def format_seconds(s: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


class Progress:
    """``Progress(enabled, description, total)``; call :meth:`advance` as work completes.

    Args:
      enabled: ``False`` makes every method a no-op.
      description: what is being done (one short phrase).
      total: units of work expected (may grow with :meth:`add_total`).
      stream: where to write (default ``sys.stderr``); a terminal gets a live bar.
      interval: seconds between plain lines when ``stream`` is not a terminal.
    """

    def __init__(self, enabled: bool, description: str, total: int, *, stream: Optional[TextIO] = None,
                 interval: float = 10.0):
        self.enabled = bool(enabled)
        self.description = description
        self.total = int(total)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.interval = float(interval)
        self.t0 = time.perf_counter()
        self._last_line = -float("inf")
        self._last_desc = None
        self._printed_done = None
        self.bar = None
        if not self.enabled:
            return
        isatty = getattr(self.stream, "isatty", lambda: False)
        if isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)

            self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                    console=Console(file=self.stream), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(description, total=self.total)
        else:
            self._line(force=True)

    # -- plain-line mode
    def _line(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_line < self.interval:
            return
        self._last_line = now
        self._last_desc = self.description
        self._printed_done = self.done
        el = now - self.t0
        left = ""
        if 0 < self.done < self.total:
            left = f", about {format_seconds(el * (self.total - self.done) / self.done)} left"
        print(f"qnjax: {self.description}: {self.done}/{self.total} ({format_seconds(el)} elapsed{left})",
              file=self.stream, flush=True)

    def advance(self, n: int = 1, description: Optional[str] = None) -> None:
        """``n`` more units done; a new ``description`` starts a new stage."""
        if not self.enabled:
            return
        self.done += int(n)
        if description:
            self.description = description
        if self.bar is not None:
            kw = {"description": description} if description else {}
            self.bar.update(self.task, completed=self.done, **kw)
        else:
            self._line(force=description is not None and description != self._last_desc)

    def update(self, done: int, total: Optional[int] = None) -> None:
        """Set the units done (and optionally the total) directly, e.g. from a ``(done, total)``
        callback."""
        if total is not None:
            self.total = int(total)
            if self.bar is not None:
                self.bar.update(self.task, total=self.total)
        self.advance(int(done) - self.done)

    def add_total(self, n: int) -> None:
        """``n`` more units of work than announced."""
        if not self.enabled:
            return
        self.total += int(n)
        if self.bar is not None:
            self.bar.update(self.task, total=self.total)

    def close(self) -> None:
        """Stop the bar; in plain-line mode print the final line."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        elif self.done != self._printed_done:
            self._line(force=True)
        self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
