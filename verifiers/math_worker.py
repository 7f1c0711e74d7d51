"""The process in which math-verify runs, and the handle the verifier holds on it.

Why a process of its own: math-verify's timeouts use SIGALRM, which works only in a main thread, and
nothing interrupts an input that hangs inside C code (a huge integer product, a C extension). So every
sympy call happens in a child process that

- runs each answer (parse, compare, canonical form) under a budget of CPU seconds (``ITIMER_PROF``; CPU
  rather than wall time so that a busy machine does not turn slow answers into timeouts);
- caps its address space (``RLIMIT_AS``) so a runaway expansion fails with MemoryError instead of
  swapping the machine;
- is killed by the parent when it does not answer within a wall-clock deadline (the hang the CPU timer
  could not interrupt), and replaced.

Protocol over a duplex pipe (pickled tuples). Parent: ``("judge", gold, answers, cpu_seconds)``. Child:
``("ready", pid)`` once after start, then per job ``("gold", status, detail)`` and one
``("answer", reason, canonical, detail)`` per answer, in order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator
from multiprocessing.connection import Connection, Pipe
from typing import Any, ClassVar

from harness.core.errors import VerifierError
from verifiers.base import CORRECT, MEMORY, PARSE_ERROR, TIMEOUT, WRONG

_BOOT = "import sys; from verifiers.math_worker import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"


class CpuBudgetExceeded(BaseException):
    """Raised in the child when an answer used up its CPU budget (a BaseException, so that the
    ``except Exception`` blocks inside math-verify and sympy do not swallow it)."""


@contextlib.contextmanager
def cpu_budget(seconds: float) -> Iterator[None]:
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def _raise_budget_exceeded(signum: int, frame: Any) -> None:
    raise CpuBudgetExceeded()


# ----------------------------------------------------------------------------------------------- child side


def serve(fd: int, memory_limit_mb: int) -> None:
    """Child main loop: judge jobs from the parent until it closes the pipe."""
    if memory_limit_mb > 0:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_limit_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard < 0 else min(limit, hard), hard))
    # math-verify warns once that its own (SIGALRM) timeouts are off, and logs every failed parse.
    logging.disable(logging.WARNING)
    import math_verify  # noqa: F401  (imported before "ready" so that start-up cost is paid once)

    signal.signal(signal.SIGPROF, _raise_budget_exceeded)
    connection = Connection(fd)
    try:
        connection.send(("ready", os.getpid()))
        while True:
            _, gold, answers, seconds = connection.recv()
            gold_parsed, status, detail = _parse_gold(gold, seconds)
            connection.send(("gold", status, detail))
            if gold_parsed is None:  # the reference failed to parse: its status says why
                continue
            for answer in answers:
                connection.send(("answer", *_judge(gold_parsed, answer, seconds)))
    except (EOFError, OSError):
        return  # the parent went away


def _boxed(answer: str) -> str:
    # Gold and prediction go through the same path: math-verify's LaTeX extraction of a boxed answer.
    return "\\boxed{" + answer + "}"


def _parse(answer: str) -> list:
    from math_verify import LatexExtractionConfig, parse

    return parse(_boxed(answer), [LatexExtractionConfig(boxed_match_priority=0)], parsing_timeout=None)


def _parse_gold(gold: str, seconds: float) -> tuple[list | None, str, str]:
    try:
        with cpu_budget(seconds):
            return _parse(gold), "ok", ""
    except CpuBudgetExceeded:
        return None, TIMEOUT, f"reference answer exceeded {seconds:g} s of CPU time in parsing"
    except MemoryError:
        return None, MEMORY, "reference answer exceeded the memory limit in parsing"


def _judge(gold_parsed: list, answer: str, seconds: float) -> tuple[str, str | None, str]:
    """(reason, canonical form or None, detail) for one normalised answer."""
    from math_verify import verify
    from sympy import Basic, MatrixBase

    try:
        with cpu_budget(seconds):
            predicted = _parse(answer)
            expression = next((p for p in predicted if isinstance(p, (Basic, MatrixBase))), None)
            correct = bool(predicted) and verify(gold_parsed, predicted, timeout_seconds=None)
            canonical = None if expression is None else canonical_form(expression)
    except CpuBudgetExceeded:
        return TIMEOUT, None, f"exceeded {seconds:g} s of CPU time"
    except MemoryError:
        return MEMORY, None, "exceeded the memory limit"
    except Exception as error:  # noqa: BLE001 - math-verify catches its own errors; any other is a parse failure
        return PARSE_ERROR, None, f"{type(error).__name__}: {str(error)[:200]}"
    if correct:
        return CORRECT, canonical, ""
    if expression is None:
        return PARSE_ERROR, None, "not parseable as LaTeX and not equal to the reference as a string"
    return WRONG, canonical, ""


def canonical_form(expression: Any) -> str:
    """sympy's printed form, with decimal numbers made exact (``0.5`` -> ``1/2``) so that they group with
    fractions. sympy prints sums, products and sets in a fixed order, so ``1+x`` and ``x+1`` agree."""
    from sympy import Float, Rational

    try:
        floats = expression.atoms(Float)
        if floats:
            expression = expression.xreplace({value: Rational(str(value)) for value in floats})
    except (TypeError, ValueError, AttributeError):
        pass  # inf/nan floats or objects without atoms() keep their printed form
    return str(expression)


# ---------------------------------------------------------------------------------------------- parent side


def _import_paths() -> list[str]:
    return [os.getcwd() if entry == "" else entry for entry in sys.path]


class WorkerProcess:
    """A running child process serving ``serve``; ``receive`` waits with a wall-clock deadline."""

    def __init__(self, memory_limit_mb: int | None, startup_timeout: float = 120.0) -> None:
        parent_end, child_end = Pipe(duplex=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(_import_paths()))
        self.owner_pid = os.getpid()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(child_end.fileno()), str(memory_limit_mb or 0)],
            pass_fds=(child_end.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the parent only; the child sees EOF
        )
        child_end.close()
        self.connection = parent_end
        self._finalizer = weakref.finalize(self, _stop, self.process, self.connection, self.owner_pid)
        try:
            ready = self.receive(startup_timeout)
        except EOFError:
            ready = None
        if ready is None or ready[0] != "ready":
            self.kill()
            raise VerifierError(
                f"the math verification worker did not start (exit code {self.process.returncode}); "
                "its error, if any, is on stderr above"
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_usable(self) -> bool:
        """Alive, and ours: a forked copy of a verifier must not talk to its parent's child."""
        return self.owner_pid == os.getpid() and self.process.poll() is None

    def send(self, message: tuple) -> None:
        self.connection.send(message)

    def receive(self, timeout: float) -> tuple | None:
        """The next message, or None if none came within ``timeout`` seconds; EOFError if the child died."""
        if not self.connection.poll(timeout):
            return None
        return self.connection.recv()

    def kill(self) -> None:
        self._finalizer()


def _stop(process: subprocess.Popen, connection: Connection, owner_pid: int) -> None:
    connection.close()
    if os.getpid() != owner_pid:
        return  # a forked copy of the handle: the process belongs to the parent
    if process.poll() is None:
        process.kill()
    process.wait()


class SharedWorker:
    """A worker process that every verifier with the same memory limit uses within one process, one per slot.

    The harness sends a pickled verifier with every problem to its process pool, so each problem arrives
    with a fresh verifier object; sharing the worker per process means its start-up (about a second) is
    paid once per process, not once per problem. Slot 0 judges every answer first; further slots start when
    slow answers are spread over several workers. Hold ``lock`` while talking to the worker.
    """

    _instances: ClassVar[dict[tuple[int | None, int], SharedWorker]] = {}
    _instances_lock = threading.Lock()

    def __init__(self, memory_limit_mb: int | None) -> None:
        self.memory_limit_mb = memory_limit_mb
        self.lock = threading.Lock()
        self._process: WorkerProcess | None = None

    @classmethod
    def for_limit(cls, memory_limit_mb: int | None, slot: int = 0) -> SharedWorker:
        with cls._instances_lock:
            if (memory_limit_mb, slot) not in cls._instances:
                cls._instances[memory_limit_mb, slot] = cls(memory_limit_mb)
            return cls._instances[memory_limit_mb, slot]

    @classmethod
    def all_for_limit(cls, memory_limit_mb: int | None) -> list[SharedWorker]:
        with cls._instances_lock:
            return [
                worker
                for (limit, _), worker in sorted(cls._instances.items(), key=lambda item: item[0][1])
                if limit == memory_limit_mb
            ]

    def live(self) -> WorkerProcess:
        """The running worker, started (or restarted, if it died) as needed."""
        if self._process is None or not self._process.is_usable():
            if self._process is not None:
                self._process.kill()
            self._process = WorkerProcess(self.memory_limit_mb)
        return self._process

    def discard(self) -> None:
        """Kill the worker; the next ``live()`` starts a new one."""
        if self._process is not None:
            self._process.kill()
            self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.is_usable() else None
