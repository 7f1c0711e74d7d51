"""The CLI's task options and its error handling (fake engine; the real engine is tested end to end elsewhere)."""

import json
import subprocess
import sys

from harness.store import RunStore
from tests.conftest import REPO_ROOT
from tests.helpers import FAKE_ENGINE, fake_model_dir


def ttc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_custom_jsonl_task_with_fields_stop_strings_and_verifier(tmp_path):
    data = tmp_path / "mine.jsonl"
    rows = [{"q": f"What is {i} + {i}?", "a": 2 * i, "topic": "add" if i % 2 else "double", "uid": f"p{i}"} for i in range(6)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    done = ttc("run", "--engine", FAKE_ENGINE, "--model", str(fake_model_dir(tmp_path)), "--task", "jsonl",
               "--data", str(data), "--prompt-field", "q", "--answer-field", "a", "--id-field", "uid",
               "--metadata-field", "topic", "--stop", "\n\n", "--stop", "Q:", "--verifier", "numeric",
               "--problems", "0", "--samples", "3", "--out", str(tmp_path / "run"), "--workers", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    store = RunStore.open(tmp_path / "run")
    problems = store.problems()
    assert [p.problem_id for p in problems] == [f"p{i}" for i in range(6)]
    assert problems[3].metadata == {"topic": "add"} and problems[3].prompt == "What is 3 + 3?"
    assert store.manifest["config"]["sampling"]["stop"] == ["\n\n", "Q:"]
    assert store.manifest["default_verifier"] == "numeric"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["groups"]["topic"]) == {"add", "double"}
    assert summary["verifier"]["name"] == "numeric"


def test_options_a_task_does_not_take_are_refused_clearly(tmp_path):
    done = ttc("sample", "--engine", FAKE_ENGINE, "--model", str(fake_model_dir(tmp_path)), "--task", "humaneval",
               "--shots", "3", "--out", str(tmp_path / "run"))  # fmt: skip
    assert done.returncode == 2
    assert "error: task 'humaneval' does not accept these options ['shots']" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists(), "a refused command creates nothing"


def test_missing_data_and_unknown_names_are_refused_clearly(tmp_path):
    common = ["sample", "--engine", FAKE_ENGINE, "--model", str(fake_model_dir(tmp_path)), "--out", str(tmp_path / "r")]
    missing = ttc(*common, "--task", "gsm8k", "--data", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "nope" in missing.stderr and "Traceback" not in missing.stderr
    unknown = ttc(*common, "--task", "gsm9k")
    assert unknown.returncode == 2 and "unknown task 'gsm9k'" in unknown.stderr
    engine = ttc("sample", "--engine", "nonsense", "--task", "humaneval", "--out", str(tmp_path / "r"))
    assert engine.returncode == 2 and "unknown engine 'nonsense'" in engine.stderr
    not_a_run = ttc("analyze", str(tmp_path))
    assert not_a_run.returncode == 2 and "not a run directory" in not_a_run.stderr


def test_adaptive_pilot_spends_the_extra_samples_once_and_reports_both_intervals(shared_data, tmp_path):
    args = ["run", "--engine", FAKE_ENGINE, "--model", str(fake_model_dir(tmp_path)), "--task", "gsm8k",
            "--data", str(shared_data / "gsm8k_test.jsonl"), "--problems", "12", "--samples", "8",
            "--adaptive-pilot", "40", "--out", str(tmp_path / "run"), "--workers", "1", "--json", "--quiet"]  # fmt: skip
    done = ttc(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)["adaptive_pilot"]
    store = RunStore.open(tmp_path / "run")
    assert store.read_samples(columns=["seed"]).num_rows == 12 * 8 + 40
    assert sum(result["extra"].values()) == 40 and result["k"] == 80
    assert result["width_before"] > 0 and 0 <= result["after"]["low"] <= result["after"]["high"] <= 1
    counts = store.counts()
    assert counts.num_samples.sum() == 12 * 8 + 40, "the extra samples are verified too"
    sessions = len(store.manifest["sessions"])

    again = ttc(*args)  # the same command: the plan is kept, nothing new is drawn
    assert again.returncode == 0, again.stderr[-3000:]
    store = RunStore.open(tmp_path / "run")
    assert store.read_samples(columns=["seed"]).num_rows == 12 * 8 + 40
    assert len(store.manifest["sessions"]) == sessions
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["adaptive_pilot"]["extra"] == result["extra"]

    sample_only = ttc("sample", *args[1:])
    assert sample_only.returncode == 2 and "needs verdicts" in sample_only.stdout + sample_only.stderr
