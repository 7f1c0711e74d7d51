"""Every task end to end with a weak model's outputs: sample (scripted engine), verify, analyse, report.

A weak model gives answers that lack a final answer, wrong answers and empty completions, for whole
problems at a time. Each scenario must verify (one declared verdict schema: a problem whose samples all lack
an answer writes a null answer column, which must concatenate with another problem's strings), analyse and
report; without a success the summary gives no forecast, only the bound the data support.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from harness import analyze, load_run, sample, verify
from harness.core.records import Problem
from harness.reporting.terminal import print_summary
from harness.store.shards import VERDICT_SCHEMA
from tasks import load_task
from tests.support.scripted_engine import SCRIPTED_ENGINE, scripted_model_dir

PROBLEMS = 3
SAMPLES = 4
EMPTY = ""

Text = Callable[[Problem], str]


def fenced(code: str) -> str:
    return f"Here it is:\n```python\n{code}```\n"


# task -> (data file in the shared data or None, task options, correct, wrong, without an answer)
TASKS: dict[str, tuple[str | None, dict[str, Any], Text, Text, Text]] = {
    "gsm8k": (
        "gsm8k_test.jsonl",
        {},
        lambda p: f"So the total is\n#### {p.reference['answer']}",
        lambda p: "So the total is\n#### 123456789",
        lambda p: "I am not sure how to solve this.",
    ),
    "math500": (
        "math500_test.jsonl",
        {"prompt_style": "chat"},
        lambda p: f"The answer is $\\boxed{{{p.reference['answer']}}}$.",
        lambda p: "The answer is $\\boxed{-987654321}$.",
        lambda p: "Let us think about it step by step. Hmm.",
    ),
    "humaneval": (
        None,
        {},
        lambda p: fenced(p.reference["prefix"] + p.metadata["canonical_solution"]),
        lambda p: fenced(f"def {p.metadata['entry_point']}(*args):\n    return None\n"),
        lambda p: "I cannot write this function, sorry.",
    ),
    "humaneval-completion": (
        None,
        {"prompt_style": "completion"},
        lambda p: p.metadata["canonical_solution"],
        lambda p: "    return None\n",
        lambda p: "I cannot write this function, sorry.",
    ),
    "mbpp": (
        "mbpp.jsonl",
        {},
        lambda p: p.metadata["code"] + "\n[DONE]",
        lambda p: "def unrelated():\n    return None\n[DONE]",
        lambda p: "I cannot write this function, sorry.",
    ),
    "jsonl": (
        "qa.jsonl",  # written by the test
        {"prompt_field": "q", "answer_field": "a", "verifier": "numeric"},
        lambda p: f"The answer is 7.\n#### {p.reference['answer']}",
        lambda p: "#### 123456789",
        lambda p: "No idea.",
    ),
}

# scenario -> what each of the three problems' samples are, cycled over the samples: "c" correct, "w" wrong,
# "n" without an answer, "e" empty
SCENARIOS = {
    "no answer": ("n", "n", "n"),
    "all wrong": ("w", "w", "w"),
    "mixed": ("n", "w", "cwne"),
    "empty": ("e", "e", "e"),
}


def data_for(task: str, shared: Path | None, tmp_path: Path) -> str | None:
    name = TASKS[task][0]
    if name is None:
        return None
    if task == "jsonl":
        rows = [{"q": f"What is {i} + 5?", "a": str(i + 5)} for i in range(PROBLEMS)]
        path = tmp_path / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return str(path)
    if shared is None:
        pytest.skip("benchmark data not found (set TTC_SHARED_DATA)")
    return str(shared / name)


@pytest.fixture(scope="module")
def shared() -> Path | None:
    from tests.conftest import find_shared_data

    return find_shared_data()


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("task", TASKS)
def test_weak_model_run_verifies_analyses_and_reports(task, scenario, shared, tmp_path):
    name = task.split("-")[0]
    data = data_for(task, shared, tmp_path)
    _, task_options, correct, wrong, no_answer = TASKS[task]
    problems = load_task(name, data=data, **task_options).problems()[:PROBLEMS]
    make = {"c": correct, "w": wrong, "n": no_answer, "e": lambda p: EMPTY}
    script = {
        problem.problem_id: [make[kind](problem) for kind in kinds]
        for problem, kinds in zip(problems, SCENARIOS[scenario])
    }
    run_dir = sample(
        name,
        data=data,
        task_options=task_options,
        model=str(scripted_model_dir(tmp_path, script)),
        engine=SCRIPTED_ENGINE,
        problems=PROBLEMS,
        samples=SAMPLES,
        out=tmp_path / "run",
        progress="quiet",
    ).run_dir
    outcome = verify(run_dir, workers=1, progress="quiet")
    assert outcome["verified"] == PROBLEMS * SAMPLES
    for path in (run_dir / "verdicts" / outcome["verdict_set"]).glob("part-*.parquet"):
        assert pq.read_schema(path).remove_metadata() == VERDICT_SCHEMA
    summary = analyze(run_dir)
    report = load_run(run_dir).report()

    expected_correct = 1 if scenario == "mixed" else 0
    assert summary["correct"] == expected_correct and summary["samples"] == PROBLEMS * SAMPLES
    assert summary["solved_problems"] == expected_correct
    assert "correct" not in summary["reasons"] or summary["reasons"]["correct"] == expected_correct
    html = report.read_text()
    assert "<h1" in html and summary["task"] in html
    # successes on fewer than two problems are too few for a law: bounds only, never a forecast
    forecast = summary["forecast"]
    assert forecast["coverage"] is None and forecast["method"] == "bound" and "too few for a law" in forecast["note"]
    assert 0.0 <= forecast["low"] <= forecast["high"] <= 1.0 and summary["fit"] is None
    assert summary["budget"]["method"] == "bound" and all(row["k"] is None for row in summary["budget"]["targets"])
    assert "No forecast:" in html and "No budget: no forecast" in html
    printed = io.StringIO()
    print_summary(summary, Console(file=printed, width=200))
    text = printed.getvalue()
    assert "no forecast: " in text and f"bound: coverage@{10 * SAMPLES} is at most {forecast['high']:.3f}" in text
    assert "forecast: coverage@" not in text
