"""Where a command may write: every output path is checked here, before anything is computed.

No command writes over a run directory's own files (``ttc report RUN --out RUN/manifest.json`` would ruin
the run), over a folder, over one of its own input files, or through a path that lies below a file; and no
run directory is created inside another one. Each refusal is an ``OptionError`` naming the option.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from pathlib import Path

from harness.core.errors import OptionError

# What a run directory holds (harness.store.run_store's layout, and the files its steps write): an output
# path among these, in any run directory, is refused unless it is the command's own output in its own run.
RUN_ENTRIES = frozenset(
    {
        "manifest.json",
        "problems.jsonl",
        ".lock",
        "samples",
        "verdicts",
        "scores",
        "selections",
        "logs",
        "summary.json",
        "coverage.png",
        "report.html",
        "verifiers.json",
        "verifiers.png",
    }
)


def run_directory_holding(path: Path) -> Path | None:
    """The run directory ``path`` lies in or is (the nearest of itself and its folders with a manifest.json)."""
    for folder in (path, *path.parents):
        if (folder / "manifest.json").is_file():
            return folder
    return None


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_not_below_a_file(path: Path, resolved: Path, option: str) -> None:
    existing = _nearest_existing(resolved.parent)
    if not existing.is_dir():
        raise OptionError(option, f"{path} lies below {existing}, which is a file, not a folder")


def _check_regular_file(path: Path, resolved: Path, option: str) -> None:
    """Refuse a FIFO, a device or a socket: writing one blocks or goes nowhere (and a file is written atomically,
    beside itself, which a device's folder does not allow)."""
    try:
        mode = resolved.stat().st_mode
    except OSError:  # not there yet: it will be a new file
        return
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise OptionError(option, f"{path} is {kind}, not a regular file; give the path of a file to write")


def check_output_path(
    path: str | Path,
    option: str,
    *,
    own_run: str | Path | None = None,
    own_files: Iterable[str] = (),
    inputs: Iterable[str | Path | None] = (),
) -> Path:
    """Check that a command may write the file ``path`` (given as ``option``); returns it.

    Refused: a folder; a FIFO, device or socket; a path below a file; one of ``inputs`` (the command's input
    files); and any entry of a run directory (``RUN_ENTRIES``) unless it is one of ``own_files`` of ``own_run``
    (the command's own outputs in the run it works on, e.g. ``report.html`` for ``ttc report RUN``).
    """
    path = Path(path)
    resolved = path.resolve()
    if resolved.is_dir():
        raise OptionError(option, f"{path} is a folder; give the path of a file to write")
    _check_regular_file(path, resolved, option)
    _check_not_below_a_file(path, resolved, option)
    if any(resolved == Path(source).resolve() for source in inputs if source is not None):
        raise OptionError(option, f"{path} is one of the command's input files; choose another path")
    run = run_directory_holding(resolved.parent)
    if run is not None:
        entry = resolved.relative_to(run).parts[0]
        own = own_run is not None and run == Path(own_run).resolve() and resolved.name in set(own_files)
        if entry in RUN_ENTRIES and not (own and resolved.parent == run):
            raise OptionError(
                option, f"{path} would overwrite the run directory {run}'s own {entry}; choose a path outside it"
            )
    return path


def check_output_folder(path: str | Path, option: str, writes: Iterable[str]) -> Path:
    """Check that a command may write the files ``writes`` into the folder ``path`` (created if missing)."""
    path = Path(path)
    resolved = path.resolve()
    if resolved.exists() and not resolved.is_dir():
        raise OptionError(option, f"{path} is a file, not a folder")
    _check_not_below_a_file(path, resolved, option)
    for name in writes:
        check_output_path(path / name, option)
    return path


def check_run_directory_path(path: str | Path, option: str) -> Path:
    """Check that ``path`` can be a run directory (created, or resumed if it is one): not a file, not below a
    file, not inside another run directory."""
    path = Path(path)
    resolved = path.resolve()
    if resolved.exists() and not resolved.is_dir():
        raise OptionError(option, f"{path} is a file, not a run directory")
    _check_not_below_a_file(path, resolved, option)
    outer = run_directory_holding(resolved.parent)
    if outer is not None:
        raise OptionError(option, f"{path} lies inside the run directory {outer}; choose a folder outside it")
    return path
