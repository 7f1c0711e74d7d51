"""Helpers shared by tests: the CLI in a subprocess, a stand-in model directory, and the arguments of runs on the
fake engine (``tests/conftest.py``'s ``make_fake_run`` builds whole runs from them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.engines.watchdog import alive, descendants, process_table
from harness.pipeline.options import SampleOptions

FAKE_ENGINE = "tests.support.fake_engine:FakeEngine"
REPO_ROOT = Path(__file__).resolve().parents[2]


def ttc(*args: str, timeout: float = 300, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """``ttc ARGS`` in a subprocess from the repository root (so it runs this checkout), output captured as text;
    ``env`` replaces the environment."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
    )


def environment(**changes: str) -> dict[str, str]:
    """This process's environment with ``changes``."""
    return {**os.environ, **changes}


def fake_model_dir(root: Path, name: str = "fake-model") -> Path:
    """A directory ``root/name`` that passes for a local checkpoint (the fake engine never reads it)."""
    model = root / name
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["Fake"]}))
    return model


def fake_run_arguments(shared_data: Path, root: Path, **overrides: Any) -> dict[str, Any]:
    """``harness.run`` arguments (task aside: GSM8K) for a run on the fake engine in ``root/run``: 8 problems x 8
    samples, one verification worker, no progress output."""
    arguments = dict(
        data=str(shared_data / "gsm8k_test.jsonl"),
        model=str(fake_model_dir(root)),
        engine=FAKE_ENGINE,
        problems=8,
        samples=8,
        out=root / "run",
        workers=1,
        progress="quiet",
    )
    arguments.update(overrides)
    return arguments


def cli_flags(**options: object) -> list[str]:
    """Command-line flags: ``max_tokens=64`` is ``--max-tokens 64``, True the flag alone, a list the flag once
    per item; None and False give nothing."""
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if item is True:
                flags.append(flag)
            elif item is not None and item is not False:
                flags += [flag, str(item)]
    return flags


def fake_run_args(shared_data: Path, root: Path, command: str, problems: int, samples: int, *extra: str) -> list[str]:
    """``ttc COMMAND`` arguments for GSM8K on the fake engine into ``root/run``, then ``extra``."""
    data = shared_data / "gsm8k_test.jsonl"
    model = fake_model_dir(root)
    flags = cli_flags(engine=FAKE_ENGINE, model=model, task="gsm8k", data=data, problems=problems, samples=samples)
    return [command, *flags, *cli_flags(out=root / "run"), *extra]


def fake_sample_arguments(shared_data: Path, root: Path, **overrides: Any) -> dict[str, Any]:
    """``harness.sample`` arguments (task aside: GSM8K) of ``fake_run_arguments``, 5 problems x 4 samples unless
    ``overrides`` say otherwise."""
    arguments = fake_run_arguments(shared_data, root, problems=5, samples=4)
    del arguments["workers"]  # the verify step's
    return {**arguments, **overrides}


def gsm8k_options(shared_data: Path, root: Path, **overrides: Any) -> SampleOptions:
    """The ``SampleOptions`` of ``fake_sample_arguments``, for tests of the steps' internals (prepare)."""
    arguments = fake_sample_arguments(shared_data, root, **overrides)
    del arguments["progress"]  # the terminal's, not sampling's
    return SampleOptions(task="gsm8k", **arguments)


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
