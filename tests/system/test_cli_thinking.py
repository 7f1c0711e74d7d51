"""Thinking budgets from the command line: ``--thinking-budget`` and its options on ``ttc run``/``ttc sample``,
``ttc sweep`` (its table, JSON result and resume), and bad input refused in one line naming the flag before any
engine starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.helpers import cli_flags, fake_model_dir, ttc

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
        ({"thinking_budget": 8, "reasoning": "off"}, "error: --thinking-budget: budget forcing needs reasoning on"),
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
