"""`kill -9` at any moment leaves a run directory that the next run resumes from, losing only work in flight,
and no process that the killed command started (verification workers, their math workers and sandboxes,
multiprocessing's resource tracker): all are gone within 10 s. The real engine's processes: test_engine_lifecycle.py."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from harness.reporting.run_counts import run_counts
from harness.store import RunStore
from tests.conftest import REPO_ROOT
from tests.support.fake_engine import fake_text
from tests.support.helpers import cli_flags, command_line, fake_run_args, process_tree, survivors

PROBLEMS, SAMPLES = 24, 6


def ttc(*args: str, delay: float, **env: str) -> subprocess.Popen:
    """`ttc ARGS` in a session (and process group) of its own, as a shell runs a command."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "TTC_FAKE_DELAY": str(delay), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def sample_args(shared_data: Path, tmp_path: Path) -> list[str]:
    return fake_run_args(shared_data, tmp_path, "sample", PROBLEMS, SAMPLES, "--quiet")


def shard_count(folder: Path) -> int:
    return len(list(folder.glob("part-*.parquet"))) if folder.is_dir() else 0


def kill_after_shards(process: subprocess.Popen, folder: Path, shards: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while shard_count(folder) < shards:
        assert process.poll() is None, f"finished before it could be killed: {process.stderr.read()}"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()


def assert_exact_samples(run: Path) -> None:
    store = RunStore.open(run)
    table = store.read_samples()
    keys = list(zip(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist()))
    assert len(keys) == len(set(keys)) == PROBLEMS * SAMPLES
    for row in table.to_pylist():
        assert row["text"] == fake_text(row["problem_id"], row["sample_idx"], row["seed"])
    assert raw_rows(store.samples.shard_paths()) == PROBLEMS * SAMPLES, "no row is stored twice"


def raw_rows(paths) -> int:
    return sum(pq.read_metadata(path).num_rows for path in paths)


def test_kill_during_sampling_then_resume(shared_data, tmp_path):
    run = tmp_path / "run"
    # Kill several times at different moments; each restart must continue where the last left off.
    for stop_after in (1, 5, 11):
        kill_after_shards(ttc(*sample_args(shared_data, tmp_path), delay=0.02), run / "samples", stop_after)
        store = RunStore.open(run)  # the directory is readable right after the kill
        stored = sum(b - a for ranges in store.sample_ranges().values() for a, b in ranges)
        assert stored == SAMPLES * shard_count(run / "samples"), "only whole requests are ever stored"
    finished = ttc(*sample_args(shared_data, tmp_path), delay=0.0)
    assert finished.wait(timeout=120) == 0, finished.stderr.read()
    assert_exact_samples(run)


def test_kill_during_verification_then_resume(shared_data, tmp_path):
    run = tmp_path / "run"
    assert ttc(*sample_args(shared_data, tmp_path), delay=0.0).wait(timeout=120) == 0
    verify = [
        "verify",
        str(run),
        *cli_flags(quiet=True, workers=2, verifier="tests.support.slow_verifier:SlowNumericVerifier"),
    ]
    store = RunStore.open(run)
    key_folder = None
    process = ttc(*verify, delay=0.2)
    deadline = time.monotonic() + 60
    while key_folder is None or shard_count(key_folder) < 1:
        folders = list((run / "verdicts").glob("slow-numeric-*")) if (run / "verdicts").is_dir() else []
        key_folder = folders[0] if folders else None
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    started = process_tree(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(started) >= 4, "ttc, its resource tracker and 2 workers"
    assert not survivors(started), "every process the killed command started is gone within 10 s"
    partial = store.verdicts(key_folder.name).read().num_rows
    assert 0 < partial < PROBLEMS * SAMPLES
    finished = ttc(*verify, delay=0.0)
    assert finished.wait(timeout=120) == 0, finished.stderr.read()
    verdicts = store.verdicts(key_folder.name).read()
    keys = list(zip(verdicts.column("problem_id").to_pylist(), verdicts.column("sample_idx").to_pylist()))
    assert len(keys) == len(set(keys)) == PROBLEMS * SAMPLES
    assert raw_rows(store.verdicts(key_folder.name).shard_paths()) == PROBLEMS * SAMPLES, "no verdict stored twice"
    counts = run_counts(RunStore.open(run), key_folder.name)
    assert np.all(counts.num_samples == SAMPLES)


def test_kill_during_verification_ends_workers_math_workers_and_sandboxes(shared_data, tmp_path):
    """Killed while each of its 2 workers waits on a sandboxed program that sleeps a minute, with a math worker
    beside it: nothing of it survives 10 s, and the same command then verifies everything."""
    run = tmp_path / "run"
    assert ttc(*sample_args(shared_data, tmp_path), delay=0.0).wait(timeout=120) == 0
    verify = [
        "verify",
        str(run),
        *cli_flags(quiet=True, workers=2, verifier="tests.support.slow_verifier:LingeringVerifier"),
    ]
    process = ttc(*verify, delay=0.0, TTC_LINGER_SECONDS="60")
    deadline = time.monotonic() + 120
    while True:
        started = process_tree(process.pid)
        commands = [command_line(pid) for pid in started]
        sandboxes = sum("sandbox_runner.py" in command for command in commands)
        math_workers = sum("math_worker import serve" in command for command in commands)
        # A sandbox forks its program, so a runner may briefly show twice: at least, not exactly.
        if sandboxes >= 2 and math_workers >= 2:
            break
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, commands
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not survivors(started), "every process the killed command started is gone within 10 s"

    finished = ttc(*verify, delay=0.0)
    assert finished.wait(timeout=120) == 0, finished.stderr.read()
    (key,) = RunStore.open(run).verdict_sets()
    assert key.startswith("lingering-") and RunStore.open(run).verdicts(key).read().num_rows == PROBLEMS * SAMPLES
