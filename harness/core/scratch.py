"""Where the processes a ttc process starts keep their temporary files (code sandboxes' working directories):
below one folder per ttc process, named in ``$TTC_SCRATCH_DIR`` (set by ``harness.engines.watchdog.
ensure_watchdog``, inherited by the processes it starts), which the watchdog removes when that process is gone,
even after ``kill -9``, so that no temporary directory outlives its command. Without it (a sandbox used on its
own) they go where ``tempfile`` puts them, and are removed by the code that made them."""

from __future__ import annotations

import os

SCRATCH_ENV = "TTC_SCRATCH_DIR"


def scratch_dir() -> str | None:
    """The folder for temporary files of this process tree, if one is set up and still there."""
    folder = os.environ.get(SCRATCH_ENV)
    return folder if folder and os.path.isdir(folder) else None
