"""One writer at a time: a writer holds an exclusive ``flock`` on ``RUN_DIR/.lock``, and writes who it is into it
(``pid ... on host``) so that a refused writer, and a summary of a run being written, can say who."""

from __future__ import annotations

import fcntl
import os
import platform
from pathlib import Path
from typing import TextIO

from harness.core.errors import RunStoreError


def acquire_lock(path: Path) -> TextIO:
    """Take the writer lock of the run directory ``path`` (held until the handle is closed), writing who holds
    it into ``.lock``; a RunStoreError names the process that holds it already."""
    handle = (path / ".lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise RunStoreError(f"{path} is in use by another ttc process ({owner}); wait for it or stop it") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {platform.node()}")
    handle.flush()
    return handle


def current_writer(run_dir: Path) -> str | None:
    """The process holding the run directory's writer lock (as it wrote itself into .lock), if any."""
    path = run_dir / ".lock"
    if not path.is_file():
        return None
    try:
        handle = path.open("r")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None
