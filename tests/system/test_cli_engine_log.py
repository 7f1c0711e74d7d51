"""The engine log from a user's seat: one line says where an engine's output went, and an engine that fails to
start shows its log's tail (fake engine, the CLI in subprocesses)."""

from __future__ import annotations

import subprocess

import pytest

from harness.engines.engine_log import ENGINE_LOG
from tests.support.helpers import environment, fake_run_args, ttc


def sample(shared_data, tmp_path, **env: str) -> subprocess.CompletedProcess:
    return ttc(*fake_run_args(shared_data, tmp_path, "sample", 2, 2), env=environment(**env))


@pytest.mark.parametrize("output", ["loading weights: 100%", ""], ids=["engine-output", "none"])
def test_one_line_says_where_the_engines_output_went(shared_data, tmp_path, output):
    done = sample(shared_data, tmp_path, TTC_FAKE_START_OUTPUT=output)
    log_path = tmp_path / "run" / ENGINE_LOG
    assert done.returncode == 0, done.stderr
    assert "loading weights" not in done.stdout + done.stderr
    if output:
        assert f"engine log: {log_path}" in done.stdout.splitlines() and log_path.read_text() == output + "\n"
    else:
        assert "engine log" not in done.stdout, "an engine that writes nothing needs no line about its log"


def test_an_engine_failing_to_start_shows_the_tail_of_its_log(shared_data, tmp_path):
    done = sample(
        shared_data,
        tmp_path,
        TTC_FAKE_START_OUTPUT="CUDA out of memory (the engine's own words)",
        TTC_FAKE_START_FAILS="1",
    )
    log_path = tmp_path / "run" / ENGINE_LOG
    assert done.returncode == 2 and "error: the fake engine failed to start" in done.stderr
    assert "CUDA out of memory" in log_path.read_text(), "the engine's output went to its log"
    assert "CUDA out of memory" not in done.stderr, "not between ttc's lines"
    assert f"the engine's last output ({log_path}):\n  CUDA out of memory (the engine's own words)" in done.stdout
