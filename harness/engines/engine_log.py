"""The terminal is ttc's: an engine's own output goes to a log file (``RUN_DIR/logs/engine.log``).

vLLM and the libraries under it print while they start and stop (Triton and NUMA notices, FutureWarnings,
checkpoint loading bars), from this process and from the engine processes it starts, which inherit its
standard output and error. ``EngineLog.captured()`` points this process's file descriptors 1 and 2 at the log
while an engine starts or stops, so the engine's processes write there for as long as they live, and
``warnings_logged()`` and ``loggers_logged()`` send Python warnings and the engine libraries' log records there
while the engine runs; ttc's own lines (progress, results) are written in between, to the terminal. When the
engine fails, ``tail()`` is what to show.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TextIO, TypeVar

from harness.core.errors import EngineError, TTCError
from harness.core.interrupts import notices_to

#: The engine log's place in a run directory.
ENGINE_LOG = Path("logs") / "engine.log"
TAIL_LINES = 25
ROOT_CAUSE_LINES = 3
# The last line of a Python traceback, however prefixed ("(Worker pid=7) ERROR ... ValueError: ...").
_EXCEPTION_LINE = re.compile(r"\b\w*(?:Error|Exception): ")
#: Loggers of the libraries an engine runs on, which write to the terminal themselves.
ENGINE_LOGGERS = ("vllm", "transformers")


class _Closable(Protocol):
    def close(self) -> None: ...


_Engine = TypeVar("_Engine", bound=_Closable)


class EngineLog:
    """A log file that an engine's output is sent to (created, with its folder, on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _open(self) -> int:
        """The log, opened for appending, its folder made beside it (in the run directory, which is never made
        here: when it was removed meanwhile, the output goes nowhere)."""
        try:
            self.path.parent.mkdir(exist_ok=True)
            return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except FileNotFoundError:
            return os.open(os.devnull, os.O_WRONLY)

    @contextlib.contextmanager
    def captured(self) -> Iterator[None]:
        """Everything written to this process's stdout and stderr meanwhile, by Python or C code, goes to the
        log; processes started meanwhile keep writing there after it ends."""
        _flush()
        saved = [os.dup(1), os.dup(2)]
        log = self._open()
        try:
            os.dup2(log, 1)
            os.dup2(log, 2)
            with notices_to(saved[1]):  # a notice that ttc stops at once is the user's, not the log's
                yield
        finally:
            _flush()  # what was written meanwhile but is still buffered belongs to the log
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, log):
                os.close(fd)

    @contextlib.contextmanager
    def warnings_logged(self) -> Iterator[None]:
        """Python warnings go to the log meanwhile (``warnings.catch_warnings``: not thread-safe, as ever)."""
        with warnings.catch_warnings(), open(self._open(), "a", encoding="utf-8") as log:

            def to_log(
                message: Warning | str,
                category: type[Warning],
                filename: str,
                lineno: int,
                file: TextIO | None = None,
                line: str | None = None,
            ) -> None:
                log.write(warnings.formatwarning(message, category, filename, lineno, line))
                log.flush()

            warnings.showwarning = to_log
            yield

    @contextlib.contextmanager
    def loggers_logged(self, names: tuple[str, ...] = ENGINE_LOGGERS) -> Iterator[None]:
        """Records of the loggers ``names`` go to the log meanwhile, instead of to their own handlers. Enter it
        once the engine has started: a library configures its logger's handlers when it is first imported."""
        handler = logging.StreamHandler(open(self._open(), "a", encoding="utf-8"))  # noqa: SIM115 - closed below
        handler.setFormatter(logging.Formatter("%(levelname)s %(asctime)s %(name)s: %(message)s"))
        loggers = [logging.getLogger(name) for name in names]
        saved = [(logger.handlers[:], logger.propagate) for logger in loggers]
        for logger in loggers:
            logger.handlers, logger.propagate = [handler], False
        try:
            yield
        finally:
            for logger, (handlers, propagate) in zip(loggers, saved):
                logger.handlers, logger.propagate = handlers, propagate
            handler.close()
            handler.stream.close()

    def lines(self) -> list[str]:
        """The log's non-empty lines, progress bars' carriage-return redraws reduced to their last state."""
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")  # keeps "\r" (read_text would not)
        except FileNotFoundError:
            return []
        shown = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
        return [line for line in shown if line.strip()]

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The log's last ``lines`` lines."""
        return "\n".join(self.lines()[-lines:])

    def failure_note(self) -> str | None:
        """What to show when the engine failed (None: an empty log): the log's tail, and before it the last few
        exception lines from earlier in the log (an engine process's root cause, which the tracebacks of the
        processes that failed after it push out of the tail)."""
        lines = self.lines()
        if not lines:
            return None
        tail = lines[-TAIL_LINES:]
        earlier = list(dict.fromkeys(line for line in lines[:-TAIL_LINES] if _EXCEPTION_LINE.search(line)))
        parts = []
        if earlier:
            parts.append("errors earlier in the engine's output:\n" + _indented(earlier[-ROOT_CAUSE_LINES:]))
        parts.append(f"the engine's last output ({self.path}):\n" + _indented(tail))
        return "\n".join(parts)


@contextlib.contextmanager
def engine_session(start: Callable[[], _Engine], log_path: Path, log: Callable[[str], None]) -> Iterator[_Engine]:
    """Start an engine with ``start()``, its output going to ``log_path`` (one line says so, if it wrote any:
    an engine that samples from a server writes none), and close it on the way out (its shutdown output going
    there too). If anything fails meanwhile, ``log`` shows the log's tail before the error goes on; an engine that
    fails to start raises an ``EngineError`` with its message."""
    engine_log = EngineLog(log_path)
    with engine_log.warnings_logged():
        try:
            with engine_log.captured():
                try:
                    engine = start()
                except TTCError:
                    raise
                except Exception as error:  # the engine's own failure (a model it cannot load): not a ttc bug
                    raise EngineError(str(error) or type(error).__name__) from error
            if engine_log.path.stat().st_size:
                log(f"engine log: {engine_log.path}")
            try:
                with engine_log.loggers_logged():
                    yield engine
            finally:
                with engine_log.captured():
                    engine.close()
        except Exception:
            note = engine_log.failure_note()
            if note:
                log(note)
            raise


def _indented(lines: list[str]) -> str:
    return "\n".join("  " + line for line in lines)


def _flush() -> None:
    """Flush Python's and C's buffered standard streams, so that their text lands where it was written to."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):  # closed or broken: nothing left to flush
                stream.flush()
    with contextlib.suppress(OSError, AttributeError):  # no C library to ask
        ctypes.CDLL(None).fflush(None)
