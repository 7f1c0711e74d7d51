"""Reasoning models from the command line: ``--reasoning`` and ``--think-tags`` on ``ttc run``, ``ttc sample`` and
``ttc verify``, their JSON results, the terminal's line, and bad input refused in one line naming the flag (or
the file and line) before any engine starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.helpers import cli_flags, fake_model_dir, ttc

THINKING_ENGINE = "tests.support.thinking_engine:ThinkingFakeEngine"


def thinking_flags(shared_data: Path, root: Path, **options: object) -> list[str]:
    defaults: dict[str, object] = dict(
        engine=THINKING_ENGINE,
        model=fake_model_dir(root),
        task="gsm8k",
        data=shared_data / "gsm8k_test.jsonl",
        problems=3,
        samples=6,
        out=root / "run",
        workers=1,
    )
    return cli_flags(**{**defaults, **options})


def test_run_with_reasoning_on_reports_it_everywhere(shared_data, tmp_path):
    done = ttc("run", *thinking_flags(shared_data, tmp_path, reasoning="on"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["verification"]["reasoning"] == {"mode": "on", "think_tags": ["<think>", "</think>"]}
    summary = result["summary"]
    assert summary["reasoning"]["mode"] == "on" and summary["reasoning"]["truncated"] == 3
    assert [row["k"] for row in summary["pass_hat_k"]] == [row["k"] for row in summary["pass_at_k"]]
    assert summary["avg_at_n"]["mean"] == pytest.approx(summary["pass_at_1"])

    shown = ttc("report", str(tmp_path / "run"))
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.startswith("reasoning:")]
    assert len(lines) == 1 and "reasoning: on (<think>...</think>); 3/18 samples cut off" in lines[0]
    assert "pass^k" in shown.stdout and "avg@6" in shown.stdout

    off = ttc("verify", str(tmp_path / "run"), "--reasoning", "off", "--workers", "1", "--json")
    assert off.returncode == 0, off.stderr
    verification = json.loads(off.stdout)["verification"]
    assert verification["reasoning"]["mode"] == "off" and verification["verified"] == 18
    assert verification["verdict_set"] != result["verification"]["verdict_set"]


def test_sample_then_verify_judges_as_the_run_was_sampled(shared_data, tmp_path):
    sampled = ttc("sample", *thinking_flags(shared_data, tmp_path, think_tags="<think>,</think>"), "--json")
    assert sampled.returncode == 0, sampled.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["reasoning"]["mode"] == "on" and manifest["reasoning"]["requested"] == "auto"
    verified = ttc("verify", str(tmp_path / "run"), "--workers", "1")
    assert verified.returncode == 0, verified.stderr
    assert "(reasoning on: the answers after </think>)" in verified.stdout + verified.stderr


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


GOOD = {"question": "2 + 2?", "choices": ["3", "4"], "answer": 1}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"think_tags": "<think>"}, "--think-tags: takes two tags, OPEN,CLOSE (e.g. <think>,</think>), got '<think>'"),
        ({"think_tags": "<think>,"}, "--think-tags: each tag must be a non-empty text, got ''"),
        ({"think_tags": "<t>,<t>"}, "--think-tags: the opening and closing tags must differ, got '<t>' twice"),
        ({"reasoning": "yes"}, "--reasoning: must be one of auto, on, off, got 'yes'"),
        ({"task": "aime", "split": "2023"}, "--split: {aime} has no AIME 2023; its years: ['2024', '2025']"),
        ({"task": "aime", "split": "last"}, "--split: must be a year (e.g. 2024, 2025) or all, got 'last'"),
        ({"task": "mcq", "mcq": {"question": "q", "answer": 0}}, "{mcq}:2: no field(s) ['choices']"),
        (
            {"task": "mcq", "mcq": {"question": "q", "choices": ["a"], "answer": 0}},
            "{mcq}:2: a question needs at least",
        ),
        ({"task": "mcq", "mcq": {"question": "q", "choices": ["a", "b"], "answer": 5}}, "{mcq}:2: 'answer' is 5, out"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_or_the_line(shared_data, tmp_path, options, message):
    options = dict(options)
    aime = shared_data / "aime_2024_2025.jsonl"
    mcq = write_jsonl(tmp_path / "q.jsonl", [GOOD, options.pop("mcq", GOOD)])
    if options.get("task") == "aime":
        options["data"] = aime
    elif options.get("task") == "mcq":
        options["data"] = mcq
    done = ttc("sample", *thinking_flags(shared_data, tmp_path, **options))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: " + message.format(aime=aime, mcq=mcq)), line
    assert not (tmp_path / "run").exists()


def test_verify_refuses_bad_reasoning_options_before_judging(shared_data, tmp_path):
    assert ttc("sample", *thinking_flags(shared_data, tmp_path)).returncode == 0
    for flags, message in (
        (["--reasoning", "maybe"], "error: --reasoning: must be one of auto, on, off, got 'maybe'"),
        (["--think-tags", "</think>"], "error: --think-tags: takes two tags"),
    ):
        done = ttc("verify", str(tmp_path / "run"), *flags)
        assert done.returncode == 2 and done.stderr.strip().startswith(message), done.stderr
    assert not (tmp_path / "run" / "verdicts").exists()
