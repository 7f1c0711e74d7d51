"""The code sandbox against real harmful programs: each must be reported as a failure and harm nothing.

Every case runs a real interpreter. Cases named ``*_without_guard`` turn the in-process guard off to show that
the OS layers (namespaces, dedicated uid, rlimits) hold on their own; they need root and are skipped elsewhere.
Cases with ``os_isolation=False`` show the guard alone, the fallback for non-root users.
"""

from __future__ import annotations

import glob
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from verifiers.base import ASSERTION, CORRECT, EXCEPTION, EXITED, MEMORY, SYNTAX_ERROR, TIMEOUT
from verifiers.sandbox import SANDBOX_UID_BASE, SandboxLimits, probe_isolation, run_python

FAST = SandboxLimits(timeout_s=2.0)
SLACK_S = 15.0  # start-up and clean-up on a loaded 2-core machine, on top of the program's own timeout


def sandbox_processes(uids: set[int]) -> list[int]:
    """Processes whose real uid is one of ``uids``: none may outlive its run."""
    pids = []
    for status_path in glob.glob("/proc/[0-9]*/status"):
        try:
            uid_line = next(line for line in Path(status_path).read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uid_line.split()[1]) in uids:
            pids.append(int(status_path.split("/")[2]))
    return pids


def sandbox_directories() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "ttc-sandbox-*")))


@pytest.fixture
def os_layers() -> tuple[str, ...]:
    """Skip unless every OS layer applies here (root with CAP_SYS_ADMIN)."""
    isolation = probe_isolation()
    missing = {"netns", "pidns", "uid", "nproc", "rlimits"} - set(isolation)
    if missing:
        pytest.skip(f"OS isolation layers {sorted(missing)} are unavailable here (needs root); have {isolation}")
    return isolation


@pytest.fixture
def no_leftovers(monkeypatch):
    """The test must leave no sandbox process and no sandbox directory behind. Only its own sandboxes count,
    as other runs may use sandboxes on the machine meanwhile: its sandboxes' directories are made in a
    temporary folder of its own (which their uids may traverse), and its processes are those running under the
    uids of the sandbox runners it started (``SANDBOX_UID_BASE`` + runner pid)."""
    folder = tempfile.mkdtemp(prefix="ttc-test-sandboxes-")
    os.chmod(folder, 0o711)
    monkeypatch.setattr(tempfile, "tempdir", folder)
    runners: list[int] = []

    class RecordedPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            runners.append(self.pid)

    monkeypatch.setattr(subprocess, "Popen", RecordedPopen)
    try:
        yield
        assert sandbox_processes({SANDBOX_UID_BASE + pid for pid in runners}) == []
        assert sandbox_directories() == set()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_timed(program: str, limits: SandboxLimits = FAST, **options):
    started = time.monotonic()
    result = run_python(program, limits, **options)
    wall_s = time.monotonic() - started
    assert wall_s < limits.timeout_s + SLACK_S, f"the sandbox took {wall_s:.1f} s"
    return result, wall_s


def test_correct_program_passes_with_all_layers_reported(no_leftovers):
    result, _ = run_timed("def f(x):\n    return x + 1\n\nassert f(1) == 2\n")
    assert result.reason == CORRECT and result.passed
    assert {"rlimits", "guard"} <= set(result.isolation)
    if os.geteuid() == 0:
        assert {"netns", "pidns", "uid", "nproc"} <= set(result.isolation)


@pytest.mark.parametrize(
    ("program", "reason", "detail"),
    [
        ("def f(:\n    pass\n", SYNTAX_ERROR, "line 1"),
        ("def f():\n  return 1\n    return 2\n", SYNTAX_ERROR, "IndentationError"),
        ("x = 1\nassert x == 2, 'x is wrong'\n", ASSERTION, "x is wrong (line 2: assert x == 2"),
        ("x = 1\nundefined_name + x\n", EXCEPTION, "NameError"),
        ("def f(n):\n    return f(n + 1)\nf(0)\n", EXCEPTION, "RecursionError"),
        ("input()\n", EXCEPTION, "EOFError"),  # stdin is /dev/null
        ("x = " + "(" * 300 + ")" * 300 + "\n", SYNTAX_ERROR, "too many nested parentheses"),
        ("a = 1\x00\n", SYNTAX_ERROR, "null bytes"),
        ("eval('1 +')\n", EXCEPTION, "SyntaxError"),  # raised while running, not while compiling
        ("import os\nos._exit = os.write = None\nassert 0\n", ASSERTION, "line 3"),  # the runner keeps its own
        ("x = bytearray(10 ** 11)\n", MEMORY, "MemoryError"),
        ("x = [0] * (10 ** 10)\n", MEMORY, "MemoryError"),
    ],
)
def test_failure_reasons(program, reason, detail, no_leftovers):
    result, _ = run_timed(program)
    assert result.reason == reason
    assert detail in result.detail


@pytest.mark.parametrize(
    "early_exit",
    ["import sys\nsys.exit(0)", "exit()", "raise SystemExit", "import os\nos._exit(0)", "import os\nos.abort()"],
)
def test_exiting_before_the_asserts_fails(early_exit, no_leftovers):
    result, _ = run_timed(f"def f():\n    return 1\n\n{early_exit}\nassert f() == 2\n")
    assert not result.passed
    assert result.reason in (EXITED, EXCEPTION)
    if "abort" not in early_exit:
        assert result.reason == EXITED


def test_infinite_loop_times_out(no_leftovers):
    limits = SandboxLimits(timeout_s=1.0)
    result, _ = run_timed("while True:\n    pass\n", limits)
    assert result.reason == TIMEOUT
    assert 1.0 <= result.elapsed_s < 1.0 + SLACK_S


def test_sleeping_program_times_out_on_the_wall_clock(no_leftovers):
    result, _ = run_timed("import time\ntime.sleep(60)\n", SandboxLimits(timeout_s=1.0))
    assert result.reason == TIMEOUT


def test_fork_bomb_is_refused_by_the_guard(no_leftovers):
    result, _ = run_timed("import os\nwhile True:\n    os.fork()\n")
    assert result.reason == EXCEPTION
    assert "os.fork is disabled" in result.detail


def test_fork_bomb_without_guard_is_contained(os_layers, no_leftovers):
    program = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result, _ = run_timed(program, SandboxLimits(timeout_s=1.0, max_processes=8), guard=False)
    assert result.reason == TIMEOUT


def test_process_limit_stops_forking_without_guard(os_layers, no_leftovers):
    # the program counts the children it can start (each sleeps, so all are alive at once): the limit is 8
    # processes for the sandbox uid, the program being one of them
    program = (
        "import os, time\n"
        "children = 0\n"
        "try:\n"
        "    while children < 100:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "except BlockingIOError:\n"
        "    pass\n"
        "assert children == 7, children\n"
    )
    result, _ = run_timed(program, SandboxLimits(timeout_s=5.0, max_processes=8), guard=False)
    # correct, not a timeout: the sleeping children did not hold the run up (they died with the program)
    assert result.reason == CORRECT, result.detail


def test_daemon_that_escapes_its_session_is_killed_without_guard(os_layers, no_leftovers):
    program = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(120)\n    os._exit(0)\n"
    result, _ = run_timed(program, guard=False)
    assert result.reason == CORRECT


@pytest.mark.parametrize(
    ("guard", "os_isolation"), [(True, True), (False, True), (True, False)], ids=["all", "os-only", "guard-only"]
)
@pytest.mark.parametrize("how", ["os.system", "shutil.rmtree", "os.remove", "open-for-writing"])
def test_deleting_or_overwriting_outside_the_sandbox_harms_nothing(tmp_path, request, how, guard, os_isolation):
    if not guard:
        request.getfixturevalue("os_layers")
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    sentinel = victim_dir / "sentinel.txt"
    sentinel.write_text("keep me")
    attacks = {
        "os.system": f"os.system('rm -rf {victim_dir}')",
        "shutil.rmtree": f"shutil.rmtree({str(victim_dir)!r})",
        "os.remove": f"os.remove({str(sentinel)!r})",
        "open-for-writing": f"open({str(sentinel)!r}, 'w').write('gone')",
    }
    program = f"import os, shutil\n{attacks[how]}\nassert not os.path.exists({str(sentinel)!r})\n"
    result, _ = run_timed(program, guard=guard, os_isolation=os_isolation)
    assert not result.passed
    assert sentinel.read_text() == "keep me"


class _RecordingHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.received.append(self.request.recv(1024))


@pytest.fixture
def loopback_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RecordingHandler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("guard", "os_isolation"), [(True, True), (False, True), (True, False)], ids=["all", "os-only", "guard-only"]
)
def test_no_network(loopback_server, guard, os_isolation, no_leftovers):
    if not guard and "netns" not in probe_isolation():
        pytest.skip("no network namespace here: without the guard nothing would stop the connection")
    port = loopback_server.server_address[1]
    program = (
        "import socket\n"
        f"connection = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "connection.sendall(b'leaked')\n"
        "connection.close()\n"
    )
    result, _ = run_timed(program, guard=guard, os_isolation=os_isolation)
    assert result.reason == EXCEPTION
    time.sleep(0.2)
    assert loopback_server.received == []
    # positive control: the server does accept connections from outside the sandbox
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(b"hello")
    deadline = time.monotonic() + 5
    while not loopback_server.received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert loopback_server.received == [b"hello"]


@pytest.mark.parametrize(
    ("program", "reason", "detail"),
    [
        ("import subprocess\nsubprocess.run(['true'])\n", EXCEPTION, "subprocess.Popen is disabled"),
        ("import os\nos.kill(1, 9)\n", EXCEPTION, "os.kill is disabled"),
        ("import ctypes\n", EXCEPTION, "ModuleNotFoundError"),
        ("import asyncio\nassert asyncio.run(asyncio.sleep(0, 5)) == 5\n", CORRECT, ""),  # needs socketpair
        (
            (
                "import tempfile, os\nwith tempfile.TemporaryDirectory() as d:\n"
                "    open(os.path.join(d, 'x'), 'w').close()\n"
            ),
            CORRECT,
            "",
        ),
    ],
    ids=["subprocess", "kill", "ctypes", "asyncio", "tempfile"],
)
def test_guard_refuses_processes_signals_and_ctypes_but_allows_local_work(program, reason, detail, no_leftovers):
    result, _ = run_timed(program)
    assert result.reason == reason, result.detail
    assert detail in result.detail


def test_huge_file_is_stopped_by_the_size_limit(no_leftovers):
    program = "with open('big.bin', 'wb') as f:\n    for _ in range(100):\n        f.write(b'0' * (1 << 20))\n"
    result, _ = run_timed(program, SandboxLimits(timeout_s=5.0, max_file_mb=4))
    assert result.reason == EXCEPTION
    assert "File too large" in result.detail


def test_program_runs_in_a_fresh_directory_with_a_minimal_environment(no_leftovers):
    program = (
        "import os, tempfile\n"
        "cwd = os.getcwd()\n"
        "assert os.path.basename(cwd).startswith('ttc-sandbox-'), cwd\n"
        "assert os.listdir(cwd) == [], os.listdir(cwd)\n"
        "assert os.environ['HOME'] == os.environ['TMPDIR'] == cwd\n"
        "assert tempfile.gettempdir() == cwd\n"
        "assert set(os.environ) <= {'PATH', 'HOME', 'TMPDIR', 'LANG', 'PYTHONHASHSEED', 'LC_CTYPE'}, dict(os.environ)\n"
        "with open('scratch.txt', 'w') as f:\n"
        "    f.write('inside is fine')\n"
        "os.remove('scratch.txt')\n"
    )
    result, _ = run_timed(program)
    assert result.reason == CORRECT, result.detail


def test_output_flood_is_discarded(no_leftovers):
    result, _ = run_timed("for _ in range(200):\n    print('x' * 100_000)\nimport sys\nsys.stderr.write('y' * 10**6)\n")
    assert result.reason == CORRECT


def test_only_the_standard_library_is_importable(no_leftovers):
    assert run_timed("import collections, heapq, itertools, math, re, fractions\n")[0].reason == CORRECT
    for module in ("numpy", "verifiers", "tasks"):
        result, _ = run_timed(f"import {module}\n")
        assert result.reason == EXCEPTION and "ModuleNotFoundError" in result.detail


def test_hash_seed_is_fixed_so_verdicts_are_reproducible(no_leftovers):
    expected = subprocess.run(
        [sys.executable, "-c", "print(hash('ttc'))"],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert run_timed(f"assert hash('ttc') == {expected}\n")[0].reason == CORRECT


def test_concurrent_runs_are_independent(no_leftovers):
    programs = [f"assert sum(range({n})) == {n * (n - 1) // 2}\n" for n in range(12)] + ["assert False\n"] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run_python, programs))
    assert [r.reason for r in results] == [CORRECT] * 12 + [ASSERTION] * 4


@pytest.mark.parametrize(
    "bad", [{"timeout_s": 0}, {"timeout_s": float("nan")}, {"memory_mb": 0}, {"max_processes": 1.5}]
)
def test_limits_are_validated(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SandboxLimits(**bad)
