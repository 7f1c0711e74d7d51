"""harness.core.interrupts with real signals in a real process: the first SIGINT, SIGTERM or SIGHUP raises
Interrupted carrying its exit status; a second one while the first is handled ends the process at once (the
CLI's choice) or raises again (the library's); outside the handlers, signals keep their usual meaning."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from harness.core.interrupts import Interrupted, deferred, exit_status, handling_interrupts
from tests.conftest import REPO_ROOT

# A process that waits for a signal inside handling_interrupts, then "cleans up" for a minute: what a step
# whose cleanup hangs would do. It prints "ready", then what it caught.
SCRIPT = """
import sys, time
from harness.core.interrupts import handling_interrupts, Interrupted
with handling_interrupts(exit_on_second={exit_on_second}):
    try:
        print("ready", flush=True)
        time.sleep(60)
    except Interrupted as interrupt:
        print("caught", interrupt.signal_name, interrupt.exit_status, flush=True)
        try:
            time.sleep(60)  # a cleanup that would hang
        except Interrupted as again:
            print("caught again", again.signal_name, flush=True)
            sys.exit(7)
"""


def start(exit_on_second: bool) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT.format(exit_on_second=exit_on_second))],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "ready\n"
    return process


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_second_interrupt_ends_the_process_at_once_with_the_signals_status(number):
    process = start(exit_on_second=True)
    process.send_signal(number)
    name = signal.Signals(number).name
    assert process.stdout.readline() == f"caught {name} {128 + number}\n"
    process.send_signal(number)
    try:
        _, err = process.communicate(timeout=30)  # not the minute the cleanup would take
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the second interrupt did not end the process") from None
    assert process.returncode == 128 + number
    assert f"interrupted again ({name}): stopping at once" in err


def test_in_a_library_call_the_second_interrupt_raises_again():
    process = start(exit_on_second=False)
    process.send_signal(signal.SIGTERM)
    assert process.stdout.readline() == "caught SIGTERM 143\n"
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert out == "caught again SIGINT\n" and process.returncode == 7


def test_handlers_are_restored_and_an_interrupt_is_a_keyboard_interrupt():
    before = signal.getsignal(signal.SIGTERM)
    with handling_interrupts():
        assert signal.getsignal(signal.SIGTERM) is not before
        with handling_interrupts():  # nested: the outer handlers stay
            pass
        with pytest.raises(KeyboardInterrupt) as caught:  # code that cleans up after Ctrl-C cleans up after all
            signal.raise_signal(signal.SIGTERM)
        assert isinstance(caught.value, Interrupted) and exit_status(caught.value) == 143
    assert signal.getsignal(signal.SIGTERM) is before
    assert exit_status(KeyboardInterrupt()) == 130


def test_an_interrupt_in_a_deferred_block_is_raised_when_the_block_is_done():
    """A shard written and counted is one step: the signal lands in the middle, the step still ends whole."""
    done = []
    with handling_interrupts(), pytest.raises(Interrupted) as caught:
        with deferred():
            signal.raise_signal(signal.SIGTERM)
            done.append("written")
            with deferred():  # nested: held until the outermost block ends
                done.append("counted")
            done.append("recorded")
        done.append("never reached")
    assert done == ["written", "counted", "recorded"] and caught.value.signal_name == "SIGTERM"
    with handling_interrupts(), pytest.raises(ValueError), deferred():  # an error of the block wins, and the
        signal.raise_signal(signal.SIGINT)  # held interrupt is not raised later by another block
        raise ValueError("failed")
    with handling_interrupts(), deferred():
        pass


# Third-party code that loses the interrupt raised in it (as pyzmq's poll does while vLLM starts its engine):
# it catches KeyboardInterrupt and waits on, for ``seconds``, then ends normally.
LOSING_SCRIPT = """
import os, time
ready_fd = os.dup(1)  # stdout, also while it goes to an engine's log
from harness.core.interrupts import Interrupted, install_handlers, losable
install_handlers(exit_on_second={exit_on_second})
def third_party(seconds):
    end, ready = time.monotonic() + seconds, False
    while True:
        try:
            if not ready:
                ready = True
                os.write(ready_fd, b"ready\\n")
            while time.monotonic() < end:
                time.sleep(0.05)
            return
        except KeyboardInterrupt:
            pass  # lost
import contextlib
from harness.engines.engine_log import EngineLog
log = EngineLog({log!r}).captured() if {log!r} else contextlib.nullcontext()
try:
    with log, losable(grace_seconds={grace}):
        third_party({seconds})
    print("not raised", flush=True)
except Interrupted as interrupt:
    print("raised", interrupt.signal_name, flush=True)
"""


def run_losing(exit_on_second: bool, seconds: float, grace: float, log: str = "") -> tuple[int, str, str]:
    script = LOSING_SCRIPT.format(exit_on_second=exit_on_second, seconds=seconds, grace=grace, log=log)
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)  # not the two minutes the third-party code may wait
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("an interrupt lost in third-party code left the process waiting") from None
    return process.returncode, out, err


def test_an_interrupt_lost_in_third_party_code_ends_the_cli_with_its_status():
    status, out, err = run_losing(exit_on_second=True, seconds=120, grace=0.5)
    assert status == 130, (out, err)
    assert "stopping at once" in err and "raised" not in out


def test_the_notice_reaches_the_user_while_stderr_goes_to_an_engine_log(tmp_path):
    log = tmp_path / "logs" / "engine.log"
    status, out, err = run_losing(exit_on_second=True, seconds=120, grace=0.5, log=str(log))
    assert status == 130 and "stopping at once" in err, (out, err)
    assert "stopping at once" not in log.read_text()


@pytest.mark.parametrize("exit_on_second", [True, False])
def test_an_interrupt_lost_by_a_block_that_ends_is_raised_when_it_ends(exit_on_second):
    status, out, err = run_losing(exit_on_second=exit_on_second, seconds=1, grace=30)
    assert status == 0 and out == "raised SIGINT\n", (out, err)
