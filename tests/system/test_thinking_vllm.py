"""Budget forcing and a one-trace sweep with the embedded model through real vLLM (mechanically: SmolLM2 does not
reason, so its thinking is cut at the budget almost always): every stored sample has at most B thinking tokens
(counted on the token ids) and a non-empty answer segment; a sweep over two budgets is killed with SIGKILL while
it works, resumes, and ends with every sample judged at every budget; nothing it started is left running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

import harness
from harness.core.reasoning import ThinkTags, split_completion
from harness.store import RunStore
from tests.conftest import REPO_ROOT
from tests.support.helpers import process_tree, survivors, ttc

pytestmark = pytest.mark.slow

PROBLEMS, SAMPLES, BUDGET, ANSWER = 2, 3, 24, 16
TAGS = ThinkTags()


def test_budget_forcing_and_a_sweep_with_the_embedded_model(shared_data, tmp_path):
    result = harness.run(
        "aime",
        data=str(shared_data / "aime_2024_2025.jsonl"),
        problems=PROBLEMS,
        samples=SAMPLES,
        max_tokens=64,
        temperature=1.0,
        reasoning="on",
        thinking_budget=BUDGET,
        answer_tokens=ANSWER,
        out=tmp_path / "run",
        workers=1,
        progress="quiet",
    )
    store = RunStore.open(result.run_dir)
    assert store.manifest["config"]["sample_defining"]["budget_forcing"]["thinking_budget"] == BUDGET
    rows = store.read_samples().to_pylist()
    assert len(rows) == PROBLEMS * SAMPLES
    for row in rows:
        segments = split_completion(row["text"], TAGS)
        assert row["thinking_tokens"] <= BUDGET and segments.closed, row
        assert segments.answer.strip() and 1 <= row["answer_tokens"] <= max(ANSWER, 64 - row["thinking_tokens"])
        if row["forced"]:
            assert row["thinking_tokens"] == BUDGET and "</think>\n\nFinal answer:" in row["text"], row
            assert row["answer_tokens"] <= ANSWER
    assert "truncated_thinking" not in result.summary["reasons"]  # every forced sample has an answer

    sweep = ["sweep", str(result.run_dir), "--thinking-budgets", "8,16", "--workers", "1", "--quiet"]
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *sweep],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(20)  # mid-way: the engine loading or generating the forced answers
    started = process_tree(process.pid)
    assert process.poll() is None, f"finished before it could be killed: {process.stderr.read()}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not survivors(started), "every process the killed sweep started is gone within 10 s"
    resumed = ttc(*sweep[:-1], "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert [entry["budget"] for entry in report["budgets"]] == [8, 16]
    for entry in report["budgets"]:
        assert entry["samples"] == entry["verified"] == PROBLEMS * SAMPLES
        assert entry["generated_tokens"] <= ANSWER * entry["forced"]  # at most A tokens per cut sample
    store = RunStore.open(result.run_dir)
    for budget in (8, 16):
        for row in store.sweep_samples(report["sweep"], budget).read().to_pylist():
            assert row["thinking_tokens"] <= budget and (not row["forced"] or row["thinking_tokens"] == budget), row
    again = ttc(*sweep[:-1], "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["generated_tokens"] == 0  # nothing left to do
    summary = harness.analyze(result.run_dir)
    assert summary["surface"] is not None and summary["surface"]["budgets"] == [8, 16]
