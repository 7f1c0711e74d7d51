"""The real engine's life from a user's seat: the terminal holds only ttc's lines (vLLM's own output goes to
RUN_DIR/logs/engine.log), commands exit cleanly every time, and `kill -9` during sampling leaves no engine
process behind, so that the same command resumes at once. Each test starts vLLM (CPU) several times: slow."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.engines.engine_log import ENGINE_LOG
from harness.store import RunStore
from tests.conftest import REPO_ROOT
from tests.support import helpers
from tests.support.helpers import cli_flags, command_line, process_tree, survivors
from tests.support.tiny_reward_models import tiny_outcome_reward_model

pytestmark = pytest.mark.slow

# What vLLM, torch and transformers print while they convert, load and start (seen on this machine's terminal).
ENGINE_NOISE = (
    "Triton is installed",
    "FutureWarning",
    "NUMA",
    "Loading safetensors checkpoint shards",
    "it/s]",  # any progress bar
    "WARNING",
    "resource_tracker",
    "terminate called",
)


def ttc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return helpers.ttc(*args, timeout=1200, env=helpers.environment(**(env or {})))


def gsm8k_args(shared_data: Path, out: Path, samples: int) -> list[str]:
    # a tenth of the memory (vLLM's CPU default here is 0.3): the engine starts beside other engines on the machine
    data = shared_data / "gsm8k_test.jsonl"
    flags = cli_flags(task="gsm8k", data=data, problems=2, samples=samples, max_tokens=64, out=out)
    return [*flags, *cli_flags(gpu_memory_utilization=0.1)]


def assert_clean(done: subprocess.CompletedProcess, what: str) -> None:
    assert done.returncode == 0, f"{what}: exit status {done.returncode}\n{done.stderr[-3000:]}"
    terminal = done.stdout + done.stderr
    noise = [word for word in ENGINE_NOISE if word in terminal]
    assert not noise, f"{what}: the engine's own output {noise} on the terminal:\n{terminal[-3000:]}"


def test_engine_commands_exit_cleanly_and_keep_the_terminal_for_ttc(shared_data, tmp_path):
    """3 x `ttc sample` (the first one converting the embedded model), then 2 x `ttc score --backend vllm`:
    exit status 0 every time, nothing of the engine on stderr, all of it in the run's engine.log."""
    run = tmp_path / "run"
    fresh_cache = {"TTC_CACHE": str(tmp_path / "cache")}  # the first run converts the embedded model
    for round_number, samples in enumerate((1, 2, 3)):
        done = ttc("sample", *gsm8k_args(shared_data, run, samples), env=fresh_cache)
        assert_clean(done, f"ttc sample #{round_number + 1}")
        assert f"engine log: {run / ENGINE_LOG}" in done.stdout
        assert "sampling: 2/2 samples (100%)" in done.stderr
    assert RunStore.open(run).read_samples().num_rows == 6
    conversion_logs = list((tmp_path / "cache" / "models").glob("*.conversion.log"))
    assert len(conversion_logs) == 1 and conversion_logs[0].stat().st_size > 0

    model = tiny_outcome_reward_model(tmp_path / "tiny-orm")
    for name in ("first", "second"):
        options = cli_flags(model=model, backend="vllm", name=name, dtype="float32", gpu_memory_utilization=0.1)
        done = ttc("score", str(run), *options, *cli_flags(max_length=512))
        assert_clean(done, f"ttc score --name {name}")
        assert RunStore.open(run).scores(name).read().num_rows == 6
    log = (run / ENGINE_LOG).read_text(errors="replace")
    assert log.count("Loading safetensors checkpoint shards") >= 5, "each engine start wrote its output there"


class _Lines:
    """The lines a process writes to a pipe, read on a thread so that waiting for one can time out."""

    def __init__(self, stream) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

        def read() -> None:
            for line in stream:
                self.queue.put(line)
            self.queue.put(None)  # the process closed the pipe: it ended

        threading.Thread(target=read, daemon=True).start()

    def wait_for(self, accept, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError("the process ended first:\n" + "".join(self.seen)[-3000:])
            self.seen.append(line)
            if accept(line):
                return line
        raise AssertionError(f"no such line within {seconds:.0f} s:\n" + "".join(self.seen)[-3000:])


def generating(line: str) -> bool:
    """A JSON progress event of sampling with tokens: the engine is up and generating."""
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return event.get("event") == "progress" and event.get("step") == "sampling" and event.get("tokens", 0) > 0


def test_kill_during_sampling_leaves_no_engine_process_and_the_run_resumes(shared_data, tmp_path):
    run = tmp_path / "run"
    args = ["run", *gsm8k_args(shared_data, run, 4)]
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args, "--json"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        first = json.loads(_Lines(process.stderr).wait_for(generating, seconds=900))
    except AssertionError:
        process.kill()
        raise
    # the engine reports tokens every step: progress moves before any request (here of 4 samples) finishes
    assert first["done"] == 0, first
    started = process_tree(process.pid)
    assert any("EngineCore" in command_line(pid) for pid in started), [command_line(pid) for pid in started]
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not survivors(started), "every process of the killed run is gone within 10 s"

    resumed = ttc(*args)
    assert_clean(resumed, "the resumed run")
    assert "problems solved at least once" in resumed.stdout
    store = RunStore.open(run)
    assert store.read_samples().num_rows == 8
    assert [session["status"] for session in store.manifest["sessions"]][-1] == "complete"
