"""The CLI's two error paths: ttc's errors (``TTCError``) and unreadable files (``OSError``) are one line and exit
status 2; anything else is a bug in ttc, shown with its traceback and a line saying so, and exit status 1 (the
CLI in subprocesses, with tasks of a user's own that fail each way)."""

from __future__ import annotations

import json

import pytest

from tests.support.helpers import ttc

BROKEN = "tests.support.broken_tasks"


def sample(tmp_path, task: str, *extra: str):
    return ttc("sample", "--task", f"{BROKEN}:{task}", "--out", str(tmp_path / "run"), *extra)


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("RefusingTask", "error: the broken task refuses its data: record 3 has no answer"),
        ("UnreadableTask", "error: [Errno 13] Permission denied: '/data/locked.jsonl'"),
    ],
    ids=["TTCError", "OSError"],
)
def test_ttc_errors_and_file_errors_are_one_line_and_status_2(tmp_path, task, message):
    done = sample(tmp_path, task)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == message and "Traceback" not in done.stderr
    as_json = sample(tmp_path, task, "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout) == {"command": "sample", "ok": False, "error": message.removeprefix("error: ")}
    assert not (tmp_path / "run").exists()


def test_a_bug_shows_its_traceback_and_says_it_is_a_bug_with_status_1(tmp_path):
    done = sample(tmp_path, "DividingTask")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert any("broken_tasks.py" in line and "load_problems" in line for line in lines), "the user's frame is shown"
    assert lines[-2] == "ZeroDivisionError: division by zero"
    assert lines[-1].startswith("error: ZeroDivisionError: division by zero; this is a bug in ttc, not in your input")
    assert "report it" in lines[-1] and "(ttc " in lines[-1]

    as_json = sample(tmp_path, "DividingTask", "--json")
    assert as_json.returncode == 1
    result = json.loads(as_json.stdout)  # still exactly one JSON document on stdout
    assert result["ok"] is False and result["bug"] is True and result["error"].startswith("ZeroDivisionError")
    (event,) = [json.loads(line) for line in as_json.stderr.splitlines()]  # stderr stays JSON lines
    assert event["event"] == "error" and event["bug"] is True and event["message"] == result["error"]
    assert "ZeroDivisionError: division by zero" in event["traceback"]


def test_usage_errors_stay_the_parsers(tmp_path):
    done = ttc("sample", "--samples", "many", "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "Invalid value" in done.stderr and "bug" not in done.stderr
