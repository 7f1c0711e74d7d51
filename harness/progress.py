"""Progress of long steps: a live bar on a terminal, periodic plain log lines elsewhere (CI logs stay readable)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Counts units of work (samples, verdicts) and optional tokens; shows rate and ETA.

    Args:
        description: what is being done ("sampling", "verifying").
        total: units to do in this session.
        unit: unit name for the display.
        stream: where to write (stderr by default).
        interval: seconds between plain log lines when the stream is not a terminal.
        enabled: False silences it (``--quiet``).
    """

    def __init__(
        self,
        description: str,
        total: int,
        unit: str = "samples",
        stream: TextIO | None = None,
        interval: float = 10.0,
        enabled: bool = True,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.interval = interval
        self.enabled = enabled and total > 0
        self.done = 0
        self.tokens = 0
        self.groups_done = 0
        self.started = time.monotonic()
        self._last_line = 0.0
        self._live = self.enabled and self.stream.isatty()

    def update(self, units: int, tokens: int = 0, groups: int = 1) -> None:
        self.done += units
        self.tokens += tokens
        self.groups_done += groups
        now = time.monotonic()
        if not self.enabled:
            return
        if self._live:
            self.stream.write("\r" + self.line() + "\033[K")
            self.stream.flush()
        elif now - self._last_line >= self.interval or self.done >= self.total:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._last_line = now

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else float("nan")
        parts = [
            f"{self.description}: {self.done}/{self.total} {self.unit} ({100.0 * self.done / max(self.total, 1):.0f}%)",
            f"{rate:.1f} {self.unit}/s",
        ]
        if self.tokens:
            parts.append(f"{self.tokens / elapsed:.0f} tok/s" if elapsed > 0 else "")
        parts.append(f"elapsed {_duration(elapsed)}")
        if self.done < self.total and rate > 0:
            parts.append(f"ETA {_duration(remaining)}")
        return " | ".join(part for part in parts if part)

    def close(self) -> None:
        if self.enabled and self._live:
            self.stream.write("\r" + self.line() + "\033[K\n")
            self.stream.flush()
