"""The CLI: task options, the one error path, --json on every command (fake engine; real engine: elsewhere)."""

import json

import pytest

from harness.reporting.run_counts import run_counts
from harness.store import RunStore
from tests.support.helpers import FAKE_ENGINE, cli_flags, fake_model_dir, fake_run_args, ttc


def test_custom_jsonl_task_with_fields_stop_strings_and_verifier(tmp_path):
    data = tmp_path / "mine.jsonl"
    rows = [
        {"q": f"What is {i} + {i}?", "a": 2 * i, "topic": "add" if i % 2 else "double", "uid": f"p{i}"}
        for i in range(6)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    fields = cli_flags(prompt_field="q", answer_field="a", id_field="uid", metadata_field="topic", stop=["\n\n", "Q:"])
    flags = cli_flags(engine=FAKE_ENGINE, model=fake_model_dir(tmp_path), task="jsonl", data=data, verifier="numeric")
    done = ttc("run", *flags, *fields, *cli_flags(problems=0, samples=3, out=tmp_path / "run", workers=1))
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
    done = ttc(
        "sample",
        "--engine",
        FAKE_ENGINE,
        "--model",
        str(fake_model_dir(tmp_path)),
        "--task",
        "humaneval",
        "--shots",
        "3",
        "--out",
        str(tmp_path / "run"),
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: --shots: task 'humaneval' does not accept this option; its options: prompt_style, prompt_template"
    ]
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
    args = fake_run_args(
        shared_data, tmp_path, "run", 12, 8, "--adaptive-pilot", "40", "--workers", "1", "--json", "--quiet"
    )
    done = ttc(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)["adaptive_pilot"]
    store = RunStore.open(tmp_path / "run")
    assert store.read_samples(columns=["seed"]).num_rows == 12 * 8 + 40
    assert sum(result["extra"].values()) == 40 and result["k"] == 80
    assert result["width_before"] > 0 and 0 <= result["after"]["low"] <= result["after"]["high"] <= 1
    counts = run_counts(store)
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


@pytest.fixture(scope="module")
def fake_run(make_fake_run):
    """A run on the fake engine (6 GSM8K problems x 8 samples), made through the Python API."""
    return make_fake_run(problems=6, samples=8)


@pytest.mark.parametrize(
    "command, args, fields",
    [
        ("analyze", [], {"run", "summary"}),
        ("report", [], {"run", "report", "summary"}),
        ("verify", [], {"run", "verification"}),
        ("forecast", ["--k", "80"], {"k", "confidence", "forecasts"}),
        ("budget", ["--target", "0.5"], {"target", "plans"}),
        ("compare-verifiers", ["--selectors", "coverage,majority"], {"run", "ks", "selectors"}),
        (
            "backtest",
            ["--pilot", "2", "--k", "8", "--repeats", "2", "--methods", "powerlaw,bayes"],
            {"rows", "summary"},
        ),
    ],
)
def test_json_flag_prints_one_result_object_on_stdout(fake_run, tmp_path, command, args, fields):
    if command == "backtest":
        from harness.metrics.counts import write_counts_jsonl

        write_counts_jsonl(run_counts(RunStore.open(fake_run)), tmp_path / "counts.jsonl")
        target = ["--counts", str(tmp_path / "counts.jsonl")]
    else:
        target = [str(fake_run)]
    done = ttc(command, *target, *args, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # exactly one JSON document, nothing else on stdout
    assert result["command"] == command and result["ok"] is True
    assert fields <= set(result), f"{command} --json lacks {fields - set(result)}"
    for line in done.stderr.splitlines():  # messages, if any, are JSON lines too
        assert json.loads(line)["event"] in {"log", "start", "progress", "end"}


def test_every_error_is_one_line_and_exit_status_2_naming_the_flag(tmp_path):
    bad = ttc("sample", "--task", "gsm8k", "--max-tokens", "0", "--out", str(tmp_path / "run"))
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == ["error: --max-tokens: must be at least 1, got 0"]
    assert not (tmp_path / "run").exists()

    as_json = ttc("sample", "--task", "gsm8k", "--top-p", "0", "--out", str(tmp_path / "run"), "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout) == {
        "command": "sample",
        "ok": False,
        "error": "--top-p: must lie in (0, 1], got 0.0",
    }

    for args, message in [
        (["forecast"], "error: give a run directory or --counts FILE (exactly one)"),
        (["analyze", str(tmp_path)], f"error: {tmp_path} is not a run directory (no manifest.json)"),
        (
            ["budget", "--counts", "x.jsonl", "--price-per-mtok", "1", "--gpu-hour-price", "2"],
            "error: give --price-per-mtok or --gpu-hour-price, not both",
        ),
        (["compare", str(tmp_path)], None),
    ]:
        done = ttc(*args)
        assert done.returncode == 2, args
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: "), done.stderr
        assert message is None or done.stderr.strip() == message


def test_json_flag_on_the_import_commands(shared_data, tmp_path):
    out = tmp_path / "imported"
    created = ttc(
        "import-samples", str(shared_data / "qwen25math_rm_maj_example_math_cot_100.jsonl"), "--out", str(out), "--json"
    )
    assert created.returncode == 0, created.stderr[-3000:]
    assert json.loads(created.stdout) == {
        "command": "import-samples",
        "ok": True,
        "run": str(out),
        "problems": 100,
        "samples": 800,
        "score_sets": ["imported"],
    }
    scores = tmp_path / "scores.jsonl"
    scores.write_text(json.dumps({"problem_id": "0", "sample_idx": 0, "score": 1}) + "\n")
    imported = ttc("import-scores", str(out), str(scores), "--name", "mine", "--json")
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert json.loads(imported.stdout) == {
        "command": "import-scores",
        "ok": True,
        "run": str(out),
        "score_set": "mine",
        "imported": 1,
    }


def test_library_parameters_are_shown_as_their_cli_flags():
    from harness.cli.app import error_message
    from harness.core.errors import OptionError

    assert error_message(OptionError("max_tokens", "must be at least 1")) == "--max-tokens: must be at least 1"
    assert error_message(OptionError("ks", "k must be at least 1")) == "--k: k must be at least 1"
    assert error_message(OptionError("prices", "one per run")) == "--price-per-mtok: one per run"
