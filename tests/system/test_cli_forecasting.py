"""ttc forecast and ttc budget on counts files: the JSON other tools read, clear errors (the CLI in subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.support.helpers import ttc
from tests.unit.forecasting.test_budget import pilot_counts
from tests.unit.forecasting.test_forecast import MONKEY


def test_cli_forecast_writes_the_json_other_tools_read(shared_data, tmp_path):
    done = ttc(
        "forecast",
        "--counts",
        str(shared_data / MONKEY),
        "--group-by",
        "model",
        "--k",
        "20000",
        "--method",
        "bayes",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)  # stdout holds exactly one JSON document
    assert printed["command"] == "forecast" and printed["ok"] and printed["k"] == 20000
    result = printed["forecasts"]
    assert len(result) == 7 and "Pythia 12B" in result
    for value in result.values():
        assert set(value) == {"coverage", "low", "high", "method"}
        assert value["method"] == "bayes"
        assert 0 <= value["low"] <= value["coverage"] <= value["high"] <= 1
    table = ttc(
        "forecast", "--counts", str(shared_data / MONKEY), "--group-by", "model", "--k", "20000", "--method", "bayes"
    )
    assert table.returncode == 0 and "Pythia 70M" in table.stdout


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"num_samples": 10}'], "lacks ['num_correct']"),
        (['{"num_samples": 10, "num_correct": 11}'], "num_correct 11 > num_samples 10"),
        (['{"num_samples": -1, "num_correct": 0}'], "non-negative integer"),
        (
            ['{"num_samples": 10, "num_correct": 2, "model": "a"}', '{"num_samples": 10, "num_correct": 1}'],
            "no value for it",
        ),
        ([], "no problems"),
    ],
)
def test_cli_reports_bad_counts_files_clearly(tmp_path, lines, message):
    path = tmp_path / "counts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = ttc("forecast", "--counts", str(path), "--group-by", "model", "--k", "1000")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_cli_needs_exactly_one_input(tmp_path):
    done = ttc("forecast", "--k", "1000")
    assert done.returncode == 2 and "exactly one" in done.stderr


def test_cli_budget_from_counts(tmp_path):
    path = tmp_path / "pilot.jsonl"
    counts = pilot_counts(seed=4)
    path.write_text("".join(json.dumps(record) + "\n" for record in counts.to_records()))
    args = [
        sys.executable,
        "-m",
        "harness.cli",
        "budget",
        "--counts",
        str(path),
        "--target",
        "0.6",
        "--method",
        "bayes",
        "--tokens-per-sample",
        "300",
        "--plot",
        str(tmp_path / "budget.png"),
    ]
    done = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "missing inputs: model parameters, price, throughput (tokens per second)" in done.stdout
    as_json = subprocess.run([*args, "--json"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert as_json.returncode == 0, as_json.stderr
    plan = json.loads(as_json.stdout)["plans"]["all"]
    assert plan["k"] and plan["costs"]["k"]["generated_tokens"] == plan["k"] * len(counts) * 300
    assert (tmp_path / "budget.png").read_bytes()[:4] == b"\x89PNG"
