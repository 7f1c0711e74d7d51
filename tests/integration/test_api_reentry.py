"""The README's `run()` example as a plain script, without `if __name__ == "__main__":` (issue 22): the
verification workers are spawned, import the script again and would call `run()` again. Each refuses at once
with one clear error saying to add the guard, and the script's own call fails saying so, instead of a wall of
tracebacks or a hang. With the guard the same script runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.support.helpers import fake_run_arguments

SCRIPT = """
import harness
arguments = {arguments!r}
{call}
"""


def script(tmp_path: Path, shared_data: Path, guarded: bool) -> Path:
    arguments = fake_run_arguments(shared_data, tmp_path, problems=2, samples=2, workers=2)
    arguments["out"] = str(arguments["out"])
    call = "result = harness.run('gsm8k', **arguments)\nprint('done', result.summary['samples'])"
    if guarded:
        call = 'if __name__ == "__main__":\n' + textwrap.indent(call, "    ")
    path = tmp_path / "experiment.py"
    path.write_text(SCRIPT.format(arguments=arguments, call=call))
    return path


def run_script(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_a_script_without_the_main_guard_gets_one_clear_error(shared_data, tmp_path):
    done = run_script(script(tmp_path, shared_data, guarded=False))
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("harness.core.errors.")]
    assert errors[-1].startswith("harness.core.errors.VerifierError: a verification worker process died")
    assert 'if __name__ == "__main__":' in errors[-1]
    reentries = [line for line in errors if line.startswith("harness.core.errors.ReentryError")]
    assert 1 <= len(reentries) <= 2, "one per worker that started, each one line saying why"
    assert "harness.run() was called while a process ttc started was importing your script" in reentries[0]
    assert done.stderr.count('if __name__ == "__main__":') >= 2, "the guard is shown"
    assert "done" not in done.stdout


def test_the_same_script_with_the_guard_runs(shared_data, tmp_path):
    done = run_script(script(tmp_path, shared_data, guarded=True))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "done 4"


def test_the_readme_and_examples_show_the_guard():
    readme = (REPO_ROOT / "README.md").read_text()
    example = readme[readme.index("from harness import run") :].split("```", 1)[0]
    assert example.index('if __name__ == "__main__":') < example.index("run(")
    assert "ReentryError" in readme, "the README says what happens without it"
    for path in (REPO_ROOT / "examples").glob("*.py"):
        text = path.read_text()
        if "import run" in text or "harness.run(" in text:
            assert 'if __name__ == "__main__":' in text, path
