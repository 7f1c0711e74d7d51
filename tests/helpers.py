"""Helpers shared by tests: a stand-in model directory and runs on the fake engine."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.engines.watchdog import alive, descendants, process_table
from harness.pipeline.options import SampleOptions

FAKE_ENGINE = "tests.fake_engine:FakeEngine"


def fake_model_dir(root: Path) -> Path:
    """A directory that passes for a local checkpoint (the fake engine never reads it)."""
    model = root / "fake-model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["Fake"]}))
    return model


def gsm8k_options(shared_data: Path, root: Path, **overrides) -> SampleOptions:
    options = dict(
        task="gsm8k",
        data=str(shared_data / "gsm8k_test.jsonl"),
        model=str(fake_model_dir(root)),
        engine=FAKE_ENGINE,
        problems=5,
        samples=4,
        out=root / "run",
    )
    options.update(overrides)
    return SampleOptions(**options)


def process_tree(pid: int) -> dict[int, int]:
    """``pid``, every process below it and every member of its process group: pid -> start time."""
    table = process_table()
    pids = descendants({pid}, table) | {other for other, proc in table.items() if proc.group == pid}
    return {other: table[other].start for other in pids}


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "(gone)"


def survivors(processes: dict[int, int], seconds: float = 10.0) -> list[str]:
    """Of ``processes`` (pid -> start time), the command lines of those still running after ``seconds`` (or
    none, as soon as all have exited)."""
    deadline = time.monotonic() + seconds
    while (left := alive(processes, process_table())) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [f"{pid}: {command_line(pid)}" for pid in left]
