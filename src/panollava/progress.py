"""Progress of long loops (training steps, evaluation pairs) with a rate and an ETA.

In a terminal it is a rich progress bar; otherwise (``nohup … > log``, SLURM, a pipe) one plain
line at most every ``every_s`` seconds, and a last one at the end::

    eval test: 120/1211 pairs (9.9%), 1.31 pairs/s, ETA 13m52s, elapsed 1m32s

    progress = ProgressReporter("eval test", total=1211, unit="pairs")
    progress.update(120)                 # absolute count done
    progress.update(121, loss=2.31)      # extra fields shown after the counts
    progress.close()
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["ProgressReporter", "format_duration"]


def format_duration(seconds: float) -> str:
    """``95 -> '1m35s'``, ``3725 -> '1h02m05s'``."""
    seconds = max(0, round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{s:02d}s"
    return f"{m}m{s:02d}s" if m else f"{s}s"


def _fields(fields: dict[str, float | int | str]) -> str:
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()]
    return ", ".join(parts)


class ProgressReporter:
    """Counts ``done`` of ``total`` ``unit`` since creation (resumed work starts at ``start``)."""

    def __init__(
        self,
        what: str,
        total: int,
        unit: str = "items",
        *,
        start: int = 0,
        every_s: float = 30.0,
        stream: TextIO | None = None,
        tty: bool | None = None,
    ) -> None:
        self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
        self.stream = stream or sys.stderr
        self.start = start  # already done when we began (not counted in the rate)
        self.done = start
        self.fields: dict[str, float | int | str] = {}
        self._t0 = time.monotonic()
        self._last_line = -float("inf")
        self._bar: Progress | None = None
        if self.stream.isatty() if tty is None else tty:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[extra]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._task = self._bar.add_task(
                escape(what), total=total, completed=start, rate="", extra=""
            )
            self._bar.start()

    def rate(self) -> float:
        """Units per second since this reporter started."""
        elapsed = time.monotonic() - self._t0
        return (self.done - self.start) / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the current rate (None before the first unit)."""
        rate = self.rate()
        return (self.total - self.done) / rate if rate > 0 else None

    def line(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = self.eta()
        text = (
            f"{self.what}: {self.done}/{self.total} {self.unit} ({pct:.1f}%), "
            f"{self.rate():.3g} {self.unit}/s, ETA {format_duration(eta) if eta is not None else '?'}"
            f", elapsed {format_duration(time.monotonic() - self._t0)}"
        )
        return f"{text}, {_fields(self.fields)}" if self.fields else text

    def update(self, done: int, **fields: float | int | str) -> None:
        """Set the absolute count ``done`` (and shown fields such as ``loss``)."""
        self.done = done
        self.fields.update(fields)
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=done,
                rate=f"{self.rate():.3g} {self.unit}/s",
                extra=escape(_fields(self.fields)),
            )
            return
        now = time.monotonic()
        if now - self._last_line >= self.every_s or done >= self.total:
            self._last_line = now
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        """Stop the bar (terminal) or print the final line (log) if the last one is stale."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self._last_line < 0 or self.done < self.total:
            print(self.line(), file=self.stream, flush=True)
