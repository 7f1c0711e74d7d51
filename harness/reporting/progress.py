"""Progress of long steps, in one of four output modes.

- ``live``: one line redrawn in place (a terminal).
- ``lines``: a plain log line every ``interval`` seconds and at the end (CI logs stay readable).
- ``json``: JSON lines of progress events (``start``, ``progress``, ``end``), for programs.
- ``quiet``: nothing.

``auto`` picks ``live`` on a terminal and ``lines`` elsewhere. Every event and line reports problems done,
units (samples or verdicts) done, the rate, tokens so far and per second (when tokens are counted), elapsed
time and ETA (once the rate has been measured for ``ETA_AFTER_SECONDS``). Sampling counts tokens while
requests are still running (``add_tokens``, fed by the engine), so its progress moves long before the first
request finishes, and its ETA comes from tokens: the samples left times the mean tokens of a finished sample
(the token limit before any finished), less the tokens already generated for samples in flight, at the token
rate so far.
The JSON event schema is documented in docs/openai.md ("Progress and output modes").
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any, Literal, TextIO, get_args

from harness.core.errors import OptionError

#: How progress is shown: ``auto`` (``live`` on a terminal, ``lines`` elsewhere), a ``live`` line redrawn in
#: place, plain ``lines``, ``json`` events on stderr, or nothing (``quiet``).
ProgressMode = Literal["auto", "live", "lines", "json", "quiet"]
PROGRESS_MODES: tuple[ProgressMode, ...] = get_args(ProgressMode)
# Seconds between JSON progress events, and between redraws of the live line (a fast step updates thousands
# of times a second).
JSON_INTERVAL = 2.0
LIVE_INTERVAL = 0.1
# Seconds between plain log lines (``lines`` mode): often enough that a long step visibly moves.
LINES_INTERVAL = 5.0
# Seconds of measured progress (since the first unit or token) before an ETA is shown: a rate taken over the
# first instants (an engine's first token, a unit finished at once) makes the ETA a guess, hours off either way.
ETA_AFTER_SECONDS = 3.0
_CLI_LOG_HANDLER = "ttc-cli"  # the handler configure_logging installs, and replaces when called again


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def resolve_mode(mode: str, stream: TextIO) -> str:
    """``auto`` becomes ``live`` on a terminal, else ``lines``; other modes are checked and returned."""
    if mode not in PROGRESS_MODES:
        raise OptionError("progress", f"unknown progress mode {mode!r}; expected one of {', '.join(PROGRESS_MODES)}")
    if mode == "auto":
        return "live" if stream.isatty() else "lines"
    return mode


def write_json_line(stream: TextIO, event: dict[str, Any]) -> None:
    stream.write(json.dumps(event, separators=(",", ":")) + "\n")
    stream.flush()


class Progress:
    """Counts units of work (samples, verdicts), the problems they belong to, and optional tokens.

    Args:
        description: what is being done ("sampling", "verifying"); the ``step`` of JSON events.
        total: units to do in this session.
        problems: problems to finish in this session (None: not shown).
        unit: unit name for the display.
        mode: one of ``PROGRESS_MODES``.
        stream: where to write (stderr by default).
        interval: seconds between plain log lines in ``lines`` mode (JSON events: ``JSON_INTERVAL``).
        max_tokens_per_unit: the token limit of one unit (a sample's ``max_tokens``): turns on the ETA from
            tokens, with this as the expected tokens of a unit until one has finished.
        silent_for: seconds without any output (the JSON start event included): a step that ends sooner
            shows nothing; one that takes longer shows its progress from then on (analyses that are quick
            on small inputs and slow on a million problems).
    """

    def __init__(
        self,
        description: str,
        total: int,
        problems: int | None = None,
        unit: str = "samples",
        mode: str = "auto",
        stream: TextIO | None = None,
        interval: float = LINES_INTERVAL,
        max_tokens_per_unit: int | None = None,
        silent_for: float = 0.0,
    ) -> None:
        self.description = description
        self.total = total
        self.problems_total = problems
        self.unit = unit
        self.stream = stream or sys.stderr
        self.mode = resolve_mode(mode, self.stream) if total > 0 else "quiet"
        self.interval = {"json": JSON_INTERVAL, "live": LIVE_INTERVAL}.get(self.mode, interval)
        self.max_tokens_per_unit = max_tokens_per_unit
        self.done = 0
        self.tokens = 0  # tokens so far: the larger of the two counts below
        self.generated_tokens = 0  # reported while generating (add_tokens), finished or not
        self.finished_tokens = 0  # of the units done (update)
        self.problems_done = 0
        self.started = time.monotonic()
        self._moved: float | None = None  # when the first unit or token was counted: the rate's start
        self._last_output = self.started
        self._shown: tuple[int, int] | None = None  # (done, tokens) last written
        self.silent_until = self.started + silent_for
        self._started_shown = False
        if silent_for <= 0:
            self._show_start()

    def _show_start(self) -> None:
        self._started_shown = True
        if self.mode == "json":
            start = {"step": self.description, "total": self.total, "unit": self.unit}
            write_json_line(self.stream, {"event": "start", **start, "problems_total": self.problems_total})

    def update(self, units: int, tokens: int = 0, problems: int = 0) -> None:
        """Record ``units`` more done (and their ``tokens``), of which ``problems`` problems are now complete."""
        self.done += units
        self._moved = self._moved or time.monotonic()
        self.finished_tokens += tokens
        self.tokens = max(self.generated_tokens, self.finished_tokens)
        self.problems_done += problems
        self._show(finished=self.done >= self.total)

    def add_tokens(self, tokens: int) -> None:
        """Record ``tokens`` generated since the last call, for units still in flight (an engine's ``on_tokens``)."""
        self.generated_tokens += tokens
        self._moved = self._moved or time.monotonic()
        self.tokens = max(self.generated_tokens, self.finished_tokens)
        self._show(finished=False)

    def _show(self, finished: bool) -> None:
        """Write the figures if the interval has passed (and on the first and, for plain lines, the last update)."""
        if self.mode == "quiet":
            return
        now = time.monotonic()
        if now < self.silent_until:
            return
        if not self._started_shown:
            self._show_start()
        if now - self._last_output >= self.interval or (finished and self.mode == "lines") or self._shown is None:
            self._emit("progress")
            self._last_output = now

    def _eta(self, elapsed: float) -> float | None:
        """Seconds left: from the token rate when ``max_tokens_per_unit`` is known, else from the unit rate;
        None until the rate has been measured for ``ETA_AFTER_SECONDS``."""
        if self.done >= self.total or elapsed <= 0:
            return None
        if self._moved is None or time.monotonic() - self._moved < ETA_AFTER_SECONDS:
            return None
        if self.max_tokens_per_unit is not None and self.tokens > 0:
            per_unit = self.finished_tokens / self.done if self.done else float(self.max_tokens_per_unit)
            in_flight = max(self.generated_tokens - self.finished_tokens, 0)
            left = max((self.total - self.done) * per_unit - in_flight, 0.0)
            return left / (self.tokens / elapsed)
        rate = self.done / elapsed
        return (self.total - self.done) / rate if rate > 0 else None

    def snapshot(self) -> dict[str, Any]:
        """The current figures (the fields of a JSON ``progress`` event)."""
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = self._eta(elapsed)
        return {
            "step": self.description,
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
            "problems_done": self.problems_done,
            "problems_total": self.problems_total,
            "tokens": self.tokens,
            "elapsed_s": round(elapsed, 3),
            "rate": round(rate, 3),
            "tokens_per_s": round(self.tokens / elapsed, 1) if self.tokens and elapsed > 0 else None,
            "eta_s": None if eta is None else round(eta, 1),
        }

    def line(self) -> str:
        figures = self.snapshot()
        parts = [
            f"{self.description}: {self.done}/{self.total} {self.unit} ({100.0 * self.done / max(self.total, 1):.0f}%)"
        ]
        if self.problems_total is not None:
            parts.append(f"problems {self.problems_done}/{self.problems_total}")
        parts.append(f"{figures['rate']:.1f} {self.unit}/s")
        if figures["tokens_per_s"] is not None:
            parts.append(f"{self.tokens} tokens")
            parts.append(f"{figures['tokens_per_s']:.0f} tok/s")
        parts.append(f"elapsed {_duration(figures['elapsed_s'])}")
        if figures["eta_s"] is not None and math.isfinite(figures["eta_s"]):
            parts.append(f"ETA {_duration(figures['eta_s'])}")
        return " | ".join(parts)

    def _emit(self, event: str) -> None:
        self._shown = (self.done, self.tokens)
        if self.mode == "json":
            write_json_line(self.stream, {"event": event, **self.snapshot()})
        elif self.mode == "live":
            self.stream.write("\r" + self.line() + "\033[K" + ("\n" if event == "end" else ""))
            self.stream.flush()
        else:
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Final output: the end event (JSON), the finished live line, or a last line if figures changed (none
        for a step that ended while silent)."""
        if not self._started_shown:
            return
        if (
            self.mode == "json"
            or self.mode == "live"
            or (self.mode == "lines" and self._shown != (self.done, self.tokens))
        ):
            self._emit("end")


class JsonLogHandler(logging.Handler):
    """Writes log records as ``{"event": "log", "level": ..., "message": ...}`` lines (``--json`` mode)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = {"event": "log", "level": record.levelname.lower(), "message": record.getMessage()}
            write_json_line(self.stream, event)
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)


class _LevelPrefixFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def message_logger(mode: str, stream: TextIO | None = None) -> Callable[[str], None]:
    """A ``log(message)`` function for the pipeline's informational lines in the given output mode.

    ``json`` writes ``log`` events to ``stream`` (stderr); ``quiet`` drops them; other modes print the text
    to stdout, as before.
    """
    if mode == "quiet":
        return lambda message: None
    if mode == "json":
        target = stream or sys.stderr
        return lambda message: write_json_line(target, {"event": "log", "level": "info", "message": message})
    return lambda message: print(message, file=stream or sys.stdout, flush=True)


def configure_logging(json_mode: bool, stream: TextIO | None = None) -> None:
    """Route warnings of ``harness`` (e.g. engine retries) to stderr: JSON events or ``warning: ...`` lines."""
    logger = logging.getLogger("harness")
    for existing in list(logger.handlers):
        if existing.get_name() == _CLI_LOG_HANDLER:
            logger.removeHandler(existing)
    handler: logging.Handler
    if json_mode:
        handler = JsonLogHandler(stream)
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(_LevelPrefixFormatter())
    handler.set_name(_CLI_LOG_HANDLER)
    handler.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
