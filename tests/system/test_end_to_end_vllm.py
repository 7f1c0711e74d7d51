"""The real thing: the embedded default model through real vLLM, from `ttc run` to summary.json."""

import json
import subprocess
import sys

import pytest

from harness.store import RunStore
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def run_ttc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200
    )


def test_default_model_through_real_vllm(tmp_path):
    out = tmp_path / "run"
    # the defaults of `ttc run` (embedded model, HumanEval) on a tiny budget
    args = ["run", "--problems", "2", "--samples", "4", "--max-tokens", "96", "--out", str(out)]
    first = run_ttc(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "pass@k" in first.stdout and "problems solved at least once" in first.stdout

    store = RunStore.open(out)
    samples = store.read_samples()
    assert samples.num_rows == 8
    # a completion may be empty (the model's first line is a stop string); most are not
    assert sum(bool(text.strip()) for text in samples.column("text").to_pylist()) >= 4
    assert all(0 <= n <= 96 for n in samples.column("n_tokens").to_pylist())
    assert sum(samples.column("n_tokens").to_pylist()) > 8
    assert all(lp is not None and lp <= 0 for lp in samples.column("logprob_sum").to_pylist())
    # every sample records the seed that governed it (per request on GPUs, the session's on CPU)
    assert all(seed is not None for seed in samples.column("seed").to_pylist())
    manifest = store.manifest
    assert manifest["engine"]["engine"] == "vllm" and manifest["engine"]["version"]
    assert manifest["model"]["parameters"] > 100_000_000
    assert manifest["sessions"][-1]["status"] == "complete"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 2 and summary["samples_per_problem"]["min"] == 4
    assert [row["k"] for row in summary["pass_at_k"]] == [1, 2, 4]
    assert sum(summary["reasons"].values()) == 8
    assert summary["task"] == "humaneval" and summary["verifier"]["name"] == "python-tests"

    again = run_ttc(*args)  # the same command again: nothing to generate, so no engine start
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(8/8 samples already stored)" in again.stdout
    assert len(RunStore.open(out).manifest["sessions"]) == 1
