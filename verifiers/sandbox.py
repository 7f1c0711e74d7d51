"""Run untrusted Python programs (model-generated code plus its tests) in a throwaway, isolated process.

WARNING: model-generated code can be wrong in harmful ways: it may loop forever, fork without end, allocate
all memory, delete files or exit before its tests run. ``run_python`` contains these *accidents*. It is not a
security boundary against code written on purpose to escape (run such code in a VM or a container of its own).

Each program runs in a new interpreter (``sys.executable -S -B verifiers/sandbox_runner.py``: the standard
library only, no site-packages) in a new session, with these layers, each reported in
``ExecutionResult.isolation`` when it applied:

=========  ===================================================================================================
netns      a new network namespace: no interface but a downed loopback, so no connection leaves the process
pidns      a new PID namespace: when the program ends or is killed, every process it started dies with it
uid        a dedicated unprivileged uid (``SANDBOX_UID_BASE`` + runner pid) that may read but not write, delete
           or signal anything outside its own temporary directory; set-uid binaries are disabled
nproc      RLIMIT_NPROC for that uid (a fork bomb stops at ``max_processes``)
rlimits    RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_CORE=0
guard      an in-process guard (after the test harness is set up) that disables process creation, signals,
           sockets, and deleting, renaming or writing files outside the temporary directory
=========  ===================================================================================================

``netns``, ``pidns``, ``uid`` and ``nproc`` need root (CAP_SYS_ADMIN, CAP_SETUID); as another user the sandbox
falls back to ``rlimits`` + ``guard``. Always: a wall-clock timeout enforced from outside the program, a fresh
temporary directory as cwd/HOME/TMPDIR (removed afterwards; under ttc, inside its scratch folder, which the
watchdog removes even after ``kill -9``: ``harness.core.scratch``), a minimal environment with PYTHONHASHSEED=0
(set orders, hence verdicts, are reproducible), and stdin/stdout/stderr on /dev/null.

A program passes only if it runs to its end: the candidate process writes its result record after the last
statement, so ``sys.exit(0)`` or ``os._exit(0)`` before the asserts is a failure (``exited_early``). Linux only.
"""

from __future__ import annotations

import functools
import marshal
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import SandboxError, check_number
from harness.core.options import check_fields
from harness.core.scratch import scratch_dir
from verifiers.base import ASSERTION, CORRECT, EXCEPTION, EXITED, MEMORY, SYNTAX_ERROR, TIMEOUT

RUNNER = Path(__file__).with_name("sandbox_runner.py")
SANDBOX_UID_BASE = 1_500_000_000  # sandbox uids are this plus a pid (< 2**22): far above any real account
RUNNER_GRACE_S = 30.0  # extra time the runner gets (start-up, cleanup) before it is killed from outside
REASONS = frozenset({CORRECT, SYNTAX_ERROR, EXCEPTION, ASSERTION, TIMEOUT, MEMORY, EXITED})


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed program.

    Attributes:
        timeout_s: wall-clock seconds from the program's start (after interpreter start-up) to its kill.
        memory_mb: address-space limit (RLIMIT_AS) of each process, in MiB; exceeding it raises MemoryError.
        max_processes: processes and threads the sandbox uid may have at once (RLIMIT_NPROC; needs root).
        max_file_mb: largest file the program may write, in MiB (RLIMIT_FSIZE).
    """

    timeout_s: float = 5.0
    memory_mb: int = 1024
    max_processes: int = 16
    max_file_mb: int = 16

    def __post_init__(self) -> None:
        check_fields(self)
        check_number("timeout_s", self.timeout_s, above=0)
        for name in ("memory_mb", "max_processes", "max_file_mb"):
            check_number(name, getattr(self, name), at_least=1)

    def to_request(self) -> dict[str, float | int]:
        return {
            "timeout_s": self.timeout_s,
            "cpu_s": math.ceil(self.timeout_s) + 1,  # a backstop; the wall clock normally ends it first
            "memory_bytes": self.memory_mb << 20,
            "max_processes": self.max_processes,
            "file_bytes": self.max_file_mb << 20,
        }


@dataclass(frozen=True)
class ExecutionResult:
    """How a sandboxed program ended.

    Attributes:
        reason: ``correct`` (ran to its end), ``syntax_error``, ``exception``, ``assertion``, ``timeout``,
            ``memory_limit`` or ``exited_early`` (the constants of ``verifiers.base``).
        detail: the error and the program line that raised it, or how the process ended.
        isolation: the layers that applied (see the module docstring), in the order they were set up.
        elapsed_s: wall-clock seconds from the program's start to its end.
    """

    reason: str
    detail: str
    isolation: tuple[str, ...]
    elapsed_s: float

    @property
    def passed(self) -> bool:
        return self.reason == CORRECT


def run_python(
    program: str, limits: SandboxLimits = SandboxLimits(), *, guard: bool = True, os_isolation: bool = True
) -> ExecutionResult:
    """Run ``program`` (Python source) in a fresh sandbox and report how it ended.

    Args:
        program: the whole program, e.g. a candidate solution followed by its asserts.
        limits: time, memory, process and file-size limits.
        guard: apply the in-process guard. Turning it off leaves only the OS layers (for testing them).
        os_isolation: use namespaces and a dedicated uid where permitted. Turning it off runs the program as
            the caller, as for a non-root user (for testing the fallback).

    Raises:
        SandboxError: the sandbox could not be set up or did not report (not a failure of the program).
    """
    if sys.platform != "linux":
        raise SandboxError(f"the code sandbox needs Linux (namespaces, prctl, pidfd); this is {sys.platform}")
    workdir = tempfile.mkdtemp(prefix="ttc-sandbox-", dir=scratch_dir())  # removed with it even after kill -9
    try:
        request = {
            "program": program,
            "workdir": workdir,
            "limits": limits.to_request(),
            "guard": guard,
            "os_isolation": os_isolation,
            "uid_base": SANDBOX_UID_BASE,
        }
        stdout, stderr, returncode = _run_runner(marshal.dumps(request), workdir, limits.timeout_s)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if os.path.exists(workdir):
            warnings.warn(f"could not remove sandbox directory {workdir}", RuntimeWarning, stacklevel=2)
    if returncode is None:
        return ExecutionResult(TIMEOUT, "sandbox runner did not finish and was killed", (), limits.timeout_s)
    try:
        report = marshal.loads(stdout)
    except (EOFError, ValueError, TypeError):
        raise SandboxError(
            f"sandbox runner failed (exit status {returncode}): {stderr.decode(errors='replace')[-2000:]}"
        ) from None
    if report["reason"] not in REASONS:
        raise SandboxError(f"sandbox setup failed: {report['detail']}")
    return ExecutionResult(report["reason"], report["detail"], tuple(report["isolation"]), report["elapsed_s"])


def _run_runner(request: bytes, workdir: str, timeout_s: float) -> tuple[bytes, bytes, int | None]:
    """Start the runner in a new session; (stdout, stderr, exit status), status None if it had to be killed."""
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-S", "-B", str(RUNNER), str(os.getpid())],  # the runner dies with this process
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=workdir,
        env=environment,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(request, timeout=timeout_s + RUNNER_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # unreaped until communicate(): the group id cannot be reused
        process.communicate()
        return b"", b"", None
    return stdout, stderr, process.returncode


@functools.cache
def probe_isolation(limits: SandboxLimits = SandboxLimits()) -> tuple[str, ...]:
    """The isolation layers that apply on this machine, found by running an empty program (cached)."""
    return run_python("pass", limits).isolation
