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
