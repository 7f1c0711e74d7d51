"""The CLI's contract at its edges (issue 22): `--json` stays JSON when the parser refuses a value; `--out` that
is a FIFO or a device is refused before anything blocks; a read-only archived run can still be reported to
another path; `--counts <(...)` (a pipe) works; a size the store cannot hold is refused before anything is
written; `ttc --version`; the table's title has a line of its own. Real subprocesses throughout."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.support.helpers import fake_run_args, ttc


@pytest.fixture(scope="module")
def fake_run(make_fake_run) -> Path:
    return make_fake_run(problems=4, samples=4)


@pytest.mark.parametrize(
    ("args", "command", "message"),
    [
        (["sample", "--samples", "many"], "sample", "Invalid value for '--samples'"),
        (["forecast", "--k", "1e3"], "forecast", "Invalid value for '--k'"),
        (["verify", "--no-such-flag", "x"], "verify", "No such option: --no-such-flag"),
        (["no-such-command"], "ttc", "No such command 'no-such-command'"),
    ],
)
def test_with_json_a_value_the_parser_refuses_is_still_a_json_result(args, command, message):
    done = ttc(*args, "--json")
    assert done.returncode == 2
    result = json.loads(done.stdout)  # one JSON document, no usage box
    assert result["command"] == command and result["ok"] is False and message in result["error"]
    (event,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert event == {"event": "error", "message": result["error"]}
    plain = ttc(*args)  # without --json: the parser's usage message, as before
    assert plain.returncode == 2 and plain.stdout == "" and "Usage:" in plain.stderr


def test_version():
    done = ttc("--version")
    assert done.returncode == 0 and done.stdout.startswith("ttc ") and len(done.stdout.split()) == 2


def test_an_out_that_is_a_fifo_or_a_device_is_refused_at_once(fake_run, tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    for target, kind in [(fifo, "a FIFO"), (Path("/dev/null"), "a device")]:
        done = ttc("report", str(fake_run), "--out", str(target), timeout=120)  # no reader: writing would block
        assert done.returncode == 2, done.stderr
        assert (
            done.stderr.strip()
            == f"error: --out: {target} is {kind}, not a regular file; give the path of a file to write"
        )
    plot = ttc("forecast", str(fake_run), "--plot", str(fifo), timeout=120)
    assert plot.returncode == 2 and f"--plot: {fifo} is a FIFO" in plot.stderr


def test_counts_from_process_substitution(fake_run, tmp_path):
    counts = tmp_path / "counts.jsonl"
    counts.write_text("".join(json.dumps({"num_samples": 8, "num_correct": c}) + "\n" for c in (0, 1, 3, 8, 2)))
    script = (
        f"{sys.executable} -m harness.cli forecast --counts <(cat {counts}) --k 64 --json && "
        f"{sys.executable} -m harness.cli budget --counts <(cat {counts}) --target 0.8 --json && "
        f"{sys.executable} -m harness.cli backtest --counts <(cat {counts}) --pilot 4 --k 8 --repeats 2 --json"
    )
    done = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [result["command"] for result in results] == ["forecast", "budget", "backtest"]
    assert all(result["ok"] for result in results)


def read_only(run: Path, *command: str) -> subprocess.CompletedProcess:
    """``ttc COMMAND`` with ``run`` read-only: a read-only bind mount in a mount namespace of its own where
    the tests run as root (root writes through file modes), the files' modes otherwise."""
    ttc_command = [sys.executable, "-m", "harness.cli", *command]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("no unshare to mount the run read-only")
        mount = f"mount --bind {run} {run} && mount -o remount,bind,ro {run} && exec " + shlex.join(ttc_command)
        ttc_command = ["unshare", "--mount", "sh", "-c", mount]
    else:
        for path in [*run.rglob("*"), run]:
            path.chmod(0o555 if path.is_dir() else 0o444)
    return subprocess.run(ttc_command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_a_read_only_archived_run_is_reported_to_another_path(fake_run, tmp_path):
    run = tmp_path / "archived"
    shutil.copytree(fake_run, run)
    (run / "summary.json").unlink()  # missing (or stale): analysed without being written
    (run / ".lock").unlink(missing_ok=True)
    before = sorted(path.name for path in run.iterdir())
    try:
        done = read_only(run, "report", str(run), "--out", str(tmp_path / "report.html"), "--json")
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout)["summary"]["problems"] == 4
        assert (tmp_path / "report.html").stat().st_size > 0
        assert sorted(path.name for path in run.iterdir()) == before, "nothing written into the run"
        inside = read_only(run, "analyze", str(run))  # asked to write into the run: refused in one line
        assert inside.returncode == 2 and inside.stderr.startswith("error: "), inside.stderr
        assert len(inside.stderr.strip().splitlines()) == 1
    finally:
        for path in [run, *run.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--samples", str(2**63), "--samples: must lie in [1, 1,000,000]"),
        ("--samples", str(10**10), "--samples: must lie in [1, 1,000,000]"),
        ("--max-tokens", str(2**40), "--max-tokens: must be at most 2,147,483,647"),
    ],
)
def test_sizes_beyond_what_is_stored_are_refused_before_anything_is_written(
    shared_data, tmp_path, flag, value, message
):
    done = ttc(*fake_run_args(shared_data, tmp_path, "sample", 2, 2, flag, value), timeout=120)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {message}"), done.stderr
    assert not (tmp_path / "run").exists()


def test_the_tables_title_has_a_line_of_its_own(fake_run):
    """Above the table, a title wraps to the table's width (a narrow column of words); on its own line it
    takes the terminal's."""
    done = ttc("report", str(fake_run), env={**os.environ, "COLUMNS": "120"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    title = next(index for index, line in enumerate(lines) if line.startswith("gsm8k · "))
    assert lines[title].endswith("verifier numeric") and lines[title + 1].startswith("┏")
