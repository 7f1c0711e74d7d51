"""Thinking budgets from the command line: ``--thinking-budget`` and its options on ``ttc run``/``ttc sample``,
``ttc sweep`` (its table, JSON result and resume), and bad input refused in one line naming the flag before any
engine starts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.store import RunStore
from tests.conftest import REPO_ROOT
from tests.support.helpers import cli_flags, fake_model_dir, process_tree, survivors, ttc

TRACE_ENGINE = "tests.support.trace_engine:TraceEngine"


def trace_flags(shared_data: Path, root: Path, **options: object) -> list[str]:
    defaults: dict[str, object] = dict(
        engine=TRACE_ENGINE,
        model=fake_model_dir(root),
        task="gsm8k",
        data=shared_data / "gsm8k_test.jsonl",
        problems=3,
        samples=4,
        out=root / "run",
        workers=1,
        reasoning="on",
        max_tokens=64,
    )
    return cli_flags(**{**defaults, **options})


def test_a_budget_forced_run_then_a_sweep_from_the_command_line(shared_data, tmp_path):
    done = ttc("sample", *trace_flags(shared_data, tmp_path, thinking_budget=12, answer_tokens=3), "--json")
    assert done.returncode == 0, done.stderr
    sweep = ttc("sweep", str(tmp_path / "run"), "--thinking-budgets", "4,8", "--workers", "1")
    assert sweep.returncode == 0, sweep.stderr
    table = sweep.stdout.splitlines()
    assert table[1].split()[0] == "budget" and [line.split()[0] for line in table[2:4]] == ["4", "8"]
    assert "sampling each budget afresh would generate" in table[4]
    again = ttc("sweep", str(tmp_path / "run"), "--thinking-budgets", "4,8", "--workers", "1", "--json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["generated_tokens"] == 0 and result["verified"] == 0  # resumed: nothing left to do
    assert [entry["samples"] for entry in result["budgets"]] == [12, 12]
    assert result["description"]["answer_tokens"] == 3  # the run's own forcing


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"thinking_budget": 0}, "error: --thinking-budget: must be at least 1, got 0"),
        ({"thinking_budget": 8, "answer_tokens": 0}, "error: --answer-tokens: must be at least 1, got 0"),
        ({"thinking_budget": 8, "min_thinking": 9}, "error: --min-thinking: must be at most the thinking budget (8)"),
        (
            {"thinking_budget": 8, "reasoning": "off"},
            "error: --thinking-budget: budget forcing cuts the thinking, so it needs reasoning on, not --reasoning off",
        ),
    ],
)
def test_bad_forcing_flags_are_one_line(shared_data, tmp_path, options, message):
    done = ttc("run", *trace_flags(shared_data, tmp_path, **options))
    assert done.returncode == 2 and done.stderr.strip().startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        ("8,4", "error: --thinking-budgets: must be increasing, got 4 after 8"),
        ("4,4", "error: --thinking-budgets: budget 4 is repeated"),
        ("4,x", "error: --thinking-budgets: expected comma-separated numbers of tokens, got 'x'"),
        ("4,100", "error: --thinking-budgets: 100 is above the run's own thinking budget, 64 (its --max-tokens)"),
    ],
)
def test_bad_sweep_budgets_are_one_line(shared_data, tmp_path, budgets, message):
    assert ttc("sample", *trace_flags(shared_data, tmp_path)).returncode == 0
    done = ttc("sweep", str(tmp_path / "run"), "--thinking-budgets", budgets)
    assert done.returncode == 2 and done.stderr.strip().startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "run" / "sweeps").exists()


def sweep_rows(run: Path, verdict_key: str) -> list[dict[str, object]]:
    store = RunStore.open(run)
    key = store.manifest["active_sweep"]
    rows = []
    for budget in store.sweep_budgets(key):
        table = store.sweep_samples(key, budget).read()
        verdicts = {
            (row["problem_id"], row["sample_idx"]): row["reason"]
            for row in store.sweep_verdicts(key, budget, verdict_key).read(["reason"]).to_pylist()
        }
        for row in table.to_pylist():
            rows.append({**row, "budget": budget, "reason": verdicts[(row["problem_id"], row["sample_idx"])]})
        paths = [
            *store.sweep_samples(key, budget).shard_paths(),
            *store.sweep_verdicts(key, budget, verdict_key).shard_paths(),
        ]
        assert sum(pq.read_metadata(path).num_rows for path in paths) == 2 * table.num_rows, "no row stored twice"
    return sorted(rows, key=lambda row: (row["budget"], row["problem_id"], row["sample_idx"]))


def test_kill_during_a_sweep_then_resume(shared_data, tmp_path):
    problems, samples = 24, 4
    runs = {name: tmp_path / name for name in ("killed", "whole")}
    for run in runs.values():
        flags = trace_flags(shared_data, tmp_path, problems=problems, samples=samples, out=run, quiet=True)
        assert ttc("sample", *flags).returncode == 0
    sweep = ["sweep", "--thinking-budgets", "4,8", "--workers", "1", "--quiet", "--engine-option", "concurrent=8"]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            sweep[0],
            str(runs["killed"]),
            *sweep[1:],
            "--engine-option",
            "delay=0.05",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(list((runs["killed"] / "sweeps").glob("*/budget-4/samples/part-*.parquet"))) < 2:
        assert process.poll() is None, f"finished before it could be killed: {process.stderr.read()}"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.005)
    started = process_tree(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not survivors(started), "every process the killed sweep started is gone within 10 s"
    partial = RunStore.open(runs["killed"])
    key = partial.manifest["active_sweep"]
    assert 0 < partial.sweep_samples(key, 4).read().num_rows < problems * samples  # the directory reads back
    resumed = ttc(sweep[0], str(runs["killed"]), *sweep[1:], "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["generated_tokens"] > 0 and report["verified"] == 2 * problems * samples  # none judged before
    assert ttc(sweep[0], str(runs["whole"]), *sweep[1:]).returncode == 0
    assert not list(runs["killed"].glob("sweeps/**/.tmp-*")), "no partial write is left behind"
    killed, whole = sweep_rows(runs["killed"], report["verdict_set"]), sweep_rows(runs["whole"], report["verdict_set"])
    assert len(killed) == 2 * problems * samples and killed == whole  # the resumed sweep is the uninterrupted one
