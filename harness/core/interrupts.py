"""Interrupts that stop a step promptly and in order: Ctrl-C (SIGINT), SIGTERM (``kill``, a scheduler's stop) and
SIGHUP (the terminal closed).

Inside ``handling_interrupts()`` the first of them raises ``Interrupted`` (a ``KeyboardInterrupt``, so code that
cleans up after Ctrl-C cleans up after all three) in the main thread. The step then stops what is in flight
(queued requests and judgements are cancelled, worker processes and their sandboxes ended), keeps everything
finished, records the sampling session as interrupted, and re-raises; the CLI says so in one line and exits with
128 + the signal's number (130, 143, 129), as a shell expects of a process a signal ended.

A second interrupt while the first is being handled ends the process at once when ``exit_on_second`` (the CLI:
an impatient second Ctrl-C must never wait on anything); what it leaves is what ``kill -9`` leaves, which the
next command resumes from and the watchdog cleans up after. In a library call (a notebook) it raises
``Interrupted`` again instead: ending the interpreter is the CLI's decision, not the library's.

Signal handlers can be set in the main thread only; elsewhere ``handling_interrupts()`` changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

#: How long an interrupt that third-party code lost may wait before the CLI ends the process (see ``losable``).
LOST_GRACE_SECONDS = 5.0
SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """A step was stopped by a signal (``signal_number``): Ctrl-C, SIGTERM or SIGHUP."""

    def __init__(self, signal_number: int = signal.SIGINT) -> None:
        self.signal_number = int(signal_number)
        super().__init__(self.signal_name)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signal_number).name

    @property
    def exit_status(self) -> int:
        """What a shell expects of a process this signal ended: 128 + its number."""
        return 128 + self.signal_number

    def __reduce__(self) -> tuple[type, tuple[int]]:
        return type(self), (self.signal_number,)


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """The exit status for ``interrupt``: an ``Interrupted``'s own, 130 (SIGINT) for a plain KeyboardInterrupt."""
    return interrupt.exit_status if isinstance(interrupt, Interrupted) else 128 + signal.SIGINT


@dataclasses.dataclass
class _State:
    depth: int = 0  # nested handling_interrupts() contexts
    received: list[int] = dataclasses.field(default_factory=list)  # signals received inside the outermost
    exit_on_second: bool = False
    deferring: int = 0  # nested deferred() blocks
    pending: int | None = None  # the first interrupt, held while deferring
    losable: float | None = None  # inside losable(): seconds an interrupt the block loses may wait
    deadline: threading.Timer | None = None  # ends the process if the block lost the interrupt
    notice_fd: int = 2  # where the one-line notices go: the user's stderr, also while it is redirected


_state = _State()


def _handle(signal_number: int, frame: FrameType | None) -> None:
    first = not _state.received
    _state.received.append(signal_number)
    if not first and _state.exit_on_second:
        name = signal.Signals(signal_number).name
        with contextlib.suppress(OSError):  # stderr may be gone (the terminal closed): exit all the same
            os.write(_state.notice_fd, f"\ninterrupted again ({name}): stopping at once\n".encode())
        os._exit(128 + signal_number)
    if first and _state.deferring:  # raised when the block ends: it is done or not done, never half
        _state.pending = signal_number
        return
    if first and _state.losable is not None and _state.exit_on_second:
        _state.deadline = threading.Timer(_state.losable, _end_lost, (signal_number,))
        _state.deadline.daemon = True
        _state.deadline.start()
    raise Interrupted(signal_number)


def _end_lost(signal_number: int) -> None:
    name = signal.Signals(signal_number).name
    with contextlib.suppress(OSError):
        os.write(_state.notice_fd, f"\ninterrupted ({name}) while the engine started: stopping at once\n".encode())
    os._exit(128 + signal_number)


def install_handlers(exit_on_second: bool = True) -> None:
    """``handling_interrupts`` for the rest of the process (the CLI's ``main``): the handlers stay while the
    interpreter shuts down, so that a second interrupt then still ends it at once, with its exit status."""
    if threading.current_thread() is threading.main_thread():
        for number in SIGNALS:
            signal.signal(number, _handle)
        _state.depth, _state.received, _state.exit_on_second = 1, [], exit_on_second


@contextlib.contextmanager
def handling_interrupts(exit_on_second: bool = False) -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into ``Interrupted`` meanwhile (see the module's docstring). Nested use
    keeps the outermost handlers (and its ``exit_on_second``); outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state.depth:
        _state.depth += 1
        try:
            yield
        finally:
            _state.depth -= 1
        return
    previous: dict[int, Any] = {number: signal.signal(number, _handle) for number in SIGNALS}
    _state.depth, _state.received, _state.exit_on_second = 1, [], exit_on_second
    try:
        yield
    finally:
        _state.depth, _state.received = 0, []
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold the first interrupt until the block ends, then raise it: for a few milliseconds of work that must
    happen whole (a shard written and counted in the session's record). A second interrupt is not held."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
        pending = _state.pending if not _state.deferring else None
        if pending is not None:
            _state.pending = None
    if pending is not None:  # reached only when the block ended normally; an error it raised wins
        raise Interrupted(pending)


@contextlib.contextmanager
def losable(grace_seconds: float = LOST_GRACE_SECONDS) -> Iterator[None]:
    """Around third-party code that can lose the ``Interrupted`` a signal raises in it: vLLM's engine start-up
    waits in pyzmq's poll, which drops an exception that a signal handler raises there (it checks signals, then
    raises and catches its own ``EINTR`` error) and waits on for minutes. If an interrupt arrives meanwhile:
    the block is still running ``grace_seconds`` later -> the CLI (``exit_on_second``) ends the process as a
    second interrupt would (the watchdog ends what it started); the block ends normally -> ``Interrupted`` is
    raised then. In the main thread only; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread() or _state.losable is not None:
        yield
        return
    seen = len(_state.received)
    _state.losable = grace_seconds
    try:
        yield
    finally:
        _state.losable = None
        if _state.deadline is not None:
            _state.deadline.cancel()
            _state.deadline = None
    if len(_state.received) > seen:  # reached only when the block ended normally: it lost the interrupt
        raise Interrupted(_state.received[seen])


@contextlib.contextmanager
def notices_to(fd: int) -> Iterator[None]:
    """Meanwhile the notices of an interrupt that ends the process at once go to ``fd``: the user's stderr while
    file descriptor 2 is sent to an engine's log."""
    previous, _state.notice_fd = _state.notice_fd, fd
    try:
        yield
    finally:
        _state.notice_fd = previous


def interrupted() -> bool:
    """Whether an interrupt arrived inside the current ``handling_interrupts()`` (cleanup may be shorter then)."""
    return bool(_state.received)


#: What the terminal sends the whole process group (Ctrl-C, a closed terminal): a worker leaves it to its parent.
GROUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGHUP") if hasattr(signal, name))


def ignore_interrupts() -> None:
    """In a worker process ttc starts: leave Ctrl-C and SIGHUP, which the terminal sends the whole process group,
    to the process that started it, which ends its workers itself."""
    for number in GROUP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)


@contextlib.contextmanager
def children_ignore_interrupts() -> Iterator[None]:
    """Processes started meanwhile (in the main thread) ignore Ctrl-C and SIGHUP from their first instruction:
    an ignored signal stays ignored across ``exec``, and a Python started so keeps ignoring it. (An interrupt of
    this process in these few milliseconds is lost; the next one counts.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in GROUP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
