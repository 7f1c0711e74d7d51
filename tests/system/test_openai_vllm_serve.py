"""The OpenAI-compatible engine against a real `vllm serve` of the embedded default model on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.engines.models import embedded_model
from harness.engines.vllm_engine import VLLMEngine, cpu_environment_defaults, is_cpu_platform
from harness.store import RunStore
from tests.conftest import REPO_ROOT
from tests.support.helpers import cli_flags

pytestmark = pytest.mark.slow

SERVED_NAME = "smollm2-135m"
START_TIMEOUT = 900.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_group_gone(process: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while process.poll() is None or group_alive(process.pid):  # poll() reaps the leader
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop_group(process: subprocess.Popen) -> None:
    """Stop the server's whole process group (vLLM runs its engine core in a child process): SIGTERM, then
    SIGKILL for whatever is left after 60 s."""
    for sig, grace in ((signal.SIGTERM, 60), (signal.SIGKILL, 30)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        if wait_group_gone(process, grace):
            return


@contextlib.contextmanager
def vllm_serve(log_path: Path) -> Iterator[tuple[str, subprocess.Popen, float]]:
    """``vllm serve`` of the embedded model on a free loopback port, stopped (whole group) on exit.

    Yields the base URL, the server process and the seconds it took to become healthy.
    """
    model = embedded_model()  # converted once and cached in ~/.cache/ttc
    port = free_port()
    env = dict(os.environ, VLLM_LOGGING_LEVEL="WARNING")
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model.path,
        "--served-model-name",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--gpu-memory-utilization",
        "0.15",
        "--max-model-len",
        "2048",
    ]
    if is_cpu_platform():
        # what VLLMEngine does on CPU: no reserved core, eager, and float32 where bf16 would be emulated
        env = {**cpu_environment_defaults(), **env}
        command += ["--enforce-eager", "--dtype", VLLMEngine.resolve_sample_defining({})["dtype"]]
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"vllm serve exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() - started > START_TIMEOUT:
                pytest.fail(f"vllm serve not healthy after {START_TIMEOUT:.0f} s:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1", process, time.monotonic() - started
    finally:
        stop_group(process)


def test_ttc_run_against_vllm_serve(shared_data, tmp_path):
    log_path = tmp_path / "server.log"
    with vllm_serve(log_path) as (base_url, server, start_seconds):
        check_run_against(base_url, log_path, start_seconds, shared_data, tmp_path / "run")
    assert not group_alive(server.pid), "no server process is left running"


def check_run_against(base_url: str, log_path: Path, start_seconds: float, shared_data: Path, out: Path) -> None:
    server = cli_flags(engine="openai", base_url=base_url, model=SERVED_NAME)
    run = cli_flags(task="gsm8k", data=shared_data / "gsm8k_test.jsonl", problems=2, samples=4, max_tokens=96)
    args = [sys.executable, "-m", "harness.cli", "run", *server, *run, *cli_flags(out=out, workers=1)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    began = time.monotonic()
    done = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    run_seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr[-3000:] + "\n--- server log ---\n" + log_path.read_text()[-3000:]
    assert "pass@k" in done.stdout

    store = RunStore.open(out)
    session = store.manifest["sessions"][-1]
    print(
        f"\nvllm serve healthy after {start_seconds:.0f} s; `ttc run` (2 problems x 4 samples, verification "
        f"included) took {run_seconds:.1f} s; sampling session {session['seconds']:.1f} s, "
        f"{session['output_tokens']} output tokens"
    )
    rows = store.read_samples().to_pylist()
    assert len(rows) == 8 and len({(row["problem_id"], row["sample_idx"]) for row in rows}) == 8
    assert all(row["text"].strip() for row in rows), "the model wrote something"
    assert all(0 < row["n_tokens"] <= 96 and row["finish_reason"] in ("stop", "length") for row in rows)
    assert all(row["logprob_sum"] is not None and row["logprob_sum"] < 0 for row in rows)
    assert all(row["prompt_tokens"] > 500 for row in rows), "the 8-shot prompt, counted by the server"
    assert len({row["text"] for row in rows}) > 1, "distinct samples at temperature 0.8"
    engine = store.manifest["engine"]
    assert engine["engine"] == "openai" and engine["n_per_request"] and engine["fallbacks"] == []
    assert engine["served_model"]["id"] == SERVED_NAME and engine["served_model"]["owned_by"] == "vllm"
    assert engine["n_tokens_from"] == ["logprobs"]
    assert store.manifest["config"]["model"] == f"{SERVED_NAME}@127.0.0.1"
    assert store.manifest["sessions"][-1]["status"] == "complete"
    assert (out / "summary.json").is_file()

    again = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "(8/8 samples already stored)" in again.stdout
    assert len(RunStore.open(out).manifest["sessions"]) == 1
