"""The terminal is ttc's: an engine's own output goes to RUN_DIR/logs/engine.log, whose tail is shown when the
engine fails. The real engine's noise: test_engine_lifecycle.py."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

from harness.engines.engine_log import EngineLog
from tests.conftest import REPO_ROOT

PROGRAM = """
import os, subprocess, sys
from harness.engines.engine_log import EngineLog
child = (
    "import sys, time; time.sleep(0.5); print('child on stdout', flush=True); "
    "print('child on stderr', file=sys.stderr)"
)
with EngineLog(sys.argv[1]).captured():
    print("python print")  # still buffered (stdout is a pipe) when the capture ends: flushed into the log
    os.write(2, b"C-level write\\n")
    process = subprocess.Popen([sys.executable, "-c", child])
print("ttc line")
sys.exit(process.wait())  # the child wrote after the capture ended, to the descriptors it inherited
"""


def test_captured_output_of_this_process_and_its_children_goes_to_the_log(tmp_path):
    log_path = tmp_path / "logs" / "engine.log"
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(log_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ttc line\n" and done.stderr == ""
    assert log_path.read_text().splitlines() == ["python print", "C-level write", "child on stdout", "child on stderr"]


def test_warnings_go_to_the_log_while_the_engine_runs(tmp_path, capfd):
    log = EngineLog(tmp_path / "engine.log")
    with log.warnings_logged():
        warnings.warn("deprecated inside the engine", FutureWarning, stacklevel=1)
    assert "FutureWarning: deprecated inside the engine" in log.path.read_text()
    assert "deprecated" not in capfd.readouterr().err


def test_the_tail_keeps_the_last_lines_and_the_last_state_of_progress_bars(tmp_path):
    log = EngineLog(tmp_path / "engine.log")
    assert log.tail() == "" and log.failure_note() is None
    log.path.write_text("".join(f"line {i}\n" for i in range(40)) + "Loading: 0%\rLoading: 50%\rLoading: 100%\n\n")
    assert log.tail(3) == "line 38\nline 39\nLoading: 100%"
    note = log.failure_note()
    assert note.startswith(f"the engine's last output ({log.path}):\n  line 16\n") and note.endswith(
        "\n  Loading: 100%"
    )


def test_the_failure_note_keeps_a_root_cause_that_later_tracebacks_pushed_out_of_the_tail(tmp_path):
    log = EngineLog(tmp_path / "engine.log")
    worker = "(Worker pid=7) ERROR 12-04 [executor.py:953] ValueError: Available memory on node 0 (3.5 GiB) is less"
    core = "Exception: WorkerProc initialization failed due to an exception in a background process."
    log.path.write_text("\n".join([worker, worker, core, *(f"File line {i}" for i in range(40)), core]) + "\n")
    note = log.failure_note()
    assert note.startswith(f"errors earlier in the engine's output:\n  {worker}\n  {core}\nthe engine's last output (")
    assert note.endswith("\n  File line 16\n" + "".join(f"  File line {i}\n" for i in range(17, 40)) + f"  {core}")
