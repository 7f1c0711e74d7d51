"""Nothing that a ttc process started outlives it, even after ``kill -9``.

vLLM starts its engine core and worker processes itself (multiprocessing), and they do not notice that the
process which started them died: killed with ``kill -9``, ttc used to leave them running, holding the model's
memory (an accelerator's too), with the next run failing to start. Verification's process pool, its math
workers and code sandboxes, and multiprocessing's resource tracker are left behind the same way.

``ensure_watchdog()`` starts, once per process, a watchdog: this file run as a script (standard library only,
in a session of its own so that a Ctrl-C in the terminal does not reach it). Every ``SCAN_SECONDS`` it records
the descendants of the process that started it from /proc (pid and start time, so that a reused pid is never
mistaken for one of them). When that process is gone (the watchdog's parent changes), it ends what is left:
SIGTERM first (vLLM's engine core then stops its workers and frees its shared memory itself), SIGKILL after
``TERM_GRACE_SECONDS`` to whatever is still there, new descendants included. multiprocessing's resource
trackers are left to exit by themselves (they clean up what the others leaked once all of their clients are
gone, and ignore SIGTERM) and killed after ``TRACKER_GRACE_SECONDS``. Everything is gone within about
``SCAN_SECONDS + TERM_GRACE_SECONDS + TRACKER_GRACE_SECONDS``. After a normal exit nothing is left for it to
end, and it exits too.

The watchdog also owns the process's scratch folder (``harness.core.scratch``): ``ensure_watchdog`` creates it and
names it in ``$TTC_SCRATCH_DIR`` for the processes started afterwards (code sandboxes make their working
directories there), and the watchdog removes it, with whatever is left in it, once the processes are ended.

``die_with_parent`` is the direct way for processes ttc starts itself (verification's pool workers): the
kernel kills them when their parent dies (``PR_SET_PDEATHSIG``). Both need Linux; elsewhere they do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

SCAN_SECONDS = 0.5
TERM_GRACE_SECONDS = 3.0
TRACKER_GRACE_SECONDS = 3.0
PR_SET_PDEATHSIG = 1
_RESOURCE_TRACKER = b"multiprocessing.resource_tracker"

# the watched pid -> its watchdog; one entry, which a forked child replaces with its own
_watchdog: dict[int, subprocess.Popen] = {}


def ensure_watchdog() -> None:
    """Start this process's watchdog, unless it runs already (or this is not Linux)."""
    pid = os.getpid()
    if not sys.platform.startswith("linux") or pid in _watchdog:
        return
    from harness.core.scratch import SCRATCH_ENV  # here: run as a script, this file imports no ttc module

    _watchdog.clear()
    scratch = tempfile.mkdtemp(prefix=f"ttc-{pid}-")
    os.chmod(scratch, 0o711)  # a sandbox's own uid may enter its working directory, not list the others
    os.environ[SCRATCH_ENV] = scratch
    _watchdog[pid] = subprocess.Popen(
        [sys.executable, "-I", "-S", __file__, str(pid), scratch],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent dies (a process pool's ``initializer``)."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------ the watchdog process


class Proc(NamedTuple):
    """A process as /proc/PID/stat shows it."""

    parent: int
    group: int
    start: int  # clock ticks after boot: with the pid, identifies the process (pids are reused)
    state: str  # "Z": a zombie (exited, not yet reaped)


def process_table() -> dict[int, Proc]:
    """Every process by pid."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (command)", which may hold spaces
        table[int(name)] = Proc(int(fields[1]), int(fields[2]), int(fields[19]), fields[0].decode())
    return table


def descendants(roots: set[int], table: dict[int, Proc]) -> set[int]:
    """``roots`` and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, proc in table.items():
        children.setdefault(proc.parent, []).append(pid)
    found, stack = set(), [pid for pid in roots if pid in table]
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, ()))
    return found


def alive(known: dict[int, int], table: dict[int, Proc]) -> dict[int, int]:
    """Of ``known`` (pid -> start time), the processes still running (not exited, reused or a zombie)."""
    return {
        pid: start
        for pid, start in known.items()
        if pid in table and table[pid].start == start and table[pid].state != "Z"
    }


def _is_resource_tracker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return _RESOURCE_TRACKER in handle.read()
    except OSError:
        return False


def _signal(pids: dict[int, int], number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already, or no longer ours
            os.kill(pid, number)


def _wait_gone(pids: dict[int, int], seconds: float) -> dict[int, int]:
    """Wait up to ``seconds`` for ``pids`` to exit; those still running."""
    deadline = time.monotonic() + seconds
    while (left := alive(pids, process_table())) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def end_all(known: dict[int, int]) -> None:
    """End the recorded processes and everything below them (the docstring of this module says how)."""
    table = process_table()
    targets = alive(known, table)
    targets = {pid: table[pid].start for pid in descendants(set(targets), table)}
    trackers = {pid: start for pid, start in targets.items() if _is_resource_tracker(pid)}
    others = {pid: start for pid, start in targets.items() if pid not in trackers}
    _signal(others, signal.SIGTERM)
    left = _wait_gone(others, TERM_GRACE_SECONDS)
    table = process_table()
    left = {pid: table[pid].start for pid in descendants(set(left), table)}  # with what they started meanwhile
    _signal(left, signal.SIGKILL)
    _signal(_wait_gone(trackers, TRACKER_GRACE_SECONDS), signal.SIGKILL)


def watch(parent: int, scratch: str | None = None) -> None:
    """Record ``parent``'s descendants until it dies, then end them and remove its ``scratch`` folder."""
    me = os.getpid()
    known: dict[int, int] = {}
    while os.getppid() == parent:
        table = process_table()
        known = alive(known, table)
        for pid in descendants({parent}, table) - {parent, me}:
            known[pid] = table[pid].start
        time.sleep(SCAN_SECONDS)
    end_all(known)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
