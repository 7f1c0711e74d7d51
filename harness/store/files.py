"""Atomic writes into a run directory: a temporary name, fsync, rename, fsync of the folder, so a file exists
whole or not at all (a crash, even ``kill -9``, leaves the old file or the new one, and at worst a temporary
file that the next writer removes)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the temporary file is ``.<name>.<random>.tmp`` beside it)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: Path, data: Any) -> None:
    """``data`` as indented JSON (what JSON cannot hold written as text), atomically."""
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8"))


def fsync_dir(path: Path) -> None:
    """Make a rename in the folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
