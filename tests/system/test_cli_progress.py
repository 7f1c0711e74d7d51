"""Progress as the CLI shows it: JSON lines with --json, plain lines off a terminal, nothing with --quiet, and
sampling progress that moves while the engine generates (fake engine, the CLI in subprocesses)."""

from __future__ import annotations

import json

from harness.store import RunStore
from tests.support.helpers import environment, fake_run_args, ttc


def run_args(shared_data, tmp_path, command: str) -> list[str]:
    return fake_run_args(shared_data, tmp_path, command, 5, 4, "--workers", "1")


def test_cli_json_mode_gives_json_lines_on_stderr_and_one_result_on_stdout(shared_data, tmp_path):
    done = ttc(*run_args(shared_data, tmp_path, "run"), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # stdout holds exactly one JSON document
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert result["command"] == "run" and result["ok"] and result["run"] == str(tmp_path / "run")
    assert result["sampling"]["wanted"] == 20 and result["sampling"]["session"]["status"] == "complete"
    assert result["verification"]["verified"] == 20 and result["summary"]["pass_at_1"] == summary["pass_at_1"]
    events = [json.loads(line) for line in done.stderr.splitlines()]
    ends = {event["step"]: event for event in events if event["event"] == "end"}
    assert ends["sampling"]["done"] == 20 and ends["sampling"]["problems_done"] == 5
    assert ends["verifying"]["done"] == 20 and ends["verifying"]["problems_done"] == 5
    assert any(event["event"] == "log" and "run directory" in event["message"] for event in events)

    again = ttc("verify", str(tmp_path / "run"), "--json", "--quiet")  # nothing left to judge; result only
    assert again.returncode == 0 and again.stderr == ""
    assert json.loads(again.stdout)["verification"]["verified"] == 0

    refused = ttc("verify", str(tmp_path / "missing"), "--json")
    assert refused.returncode == 2
    assert json.loads(refused.stdout) == {
        "command": "verify",
        "ok": False,
        "error": f"{tmp_path / 'missing'} is not a run directory (no manifest.json)",
    }
    assert json.loads(refused.stderr)["event"] == "error"


def test_cli_plain_and_quiet_modes(shared_data, tmp_path):
    plain = ttc(*run_args(shared_data, tmp_path, "sample"))
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "sampling: 20/20 samples (100%) | problems 5/5 |" in plain.stderr and "\r" not in plain.stderr
    assert "run directory:" in plain.stdout

    quiet = ttc("verify", str(tmp_path / "run"), "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_sampling_progress_moves_while_the_engine_generates(shared_data, tmp_path):
    """One request of 4 samples whose 6 tokens come one step at a time (0.6 s each): progress events arrive
    before it finishes. JSON events come at most every 2 s and the first at once, so the 2.4 s between the
    first and the fifth step guarantee two events before the request is done, however slow the machine."""
    args = fake_run_args(shared_data, tmp_path, "sample", 1, 4, "--json")
    done = ttc(*args, env=environment(TTC_FAKE_TOKEN_DELAY="0.6"))
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    progress = [event for event in events if event["event"] == "progress" and event["step"] == "sampling"]
    early = [event for event in progress if event["done"] == 0]
    assert len(early) >= 2, progress
    assert 0 < early[0]["tokens"] < early[-1]["tokens"] < 24
    assert early[0]["eta_s"] is None, "no ETA before the rate is measured (the first reads hours otherwise)"
    assert [event["tokens"] for event in progress] == sorted(event["tokens"] for event in progress)
    end = next(event for event in events if event["event"] == "end" and event["step"] == "sampling")
    stored = RunStore.open(tmp_path / "run").read_samples().column("n_tokens").to_pylist()
    assert end["done"] == 4 and end["tokens"] == sum(stored) == 24
