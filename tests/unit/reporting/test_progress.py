"""Progress output: plain lines off a terminal, JSON events with --json, nothing with --quiet."""

from __future__ import annotations

import io
import json
import logging

import pytest

from harness.reporting.progress import ETA_AFTER_SECONDS, JSON_INTERVAL, Progress, configure_logging

EVENT_FIELDS = {
    "step",
    "done",
    "total",
    "unit",
    "problems_done",
    "problems_total",
    "tokens",
    "elapsed_s",
    "rate",
    "tokens_per_s",
    "eta_s",
}


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The progress module's clock, moved by hand (``clock[0] += seconds``)."""
    now = [100.0]
    monkeypatch.setattr("harness.reporting.progress.time.monotonic", lambda: now[0])
    return now


def test_off_a_terminal_progress_is_plain_lines_with_problems_rate_tokens_and_eta(clock):
    stream = io.StringIO()  # not a tty: "auto" becomes periodic lines
    progress = Progress("sampling", 8, problems=2, stream=stream, interval=0.0)
    clock[0] += 1
    progress.update(1, tokens=100)
    clock[0] += ETA_AFTER_SECONDS
    progress.update(3, tokens=300, problems=1)
    progress.update(4, tokens=400, problems=1)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in stream.getvalue() and "\033" not in stream.getvalue()
    assert lines[0].startswith("sampling: 1/8 samples (12%) | ") and "ETA" not in lines[0], "no rate measured yet"
    assert lines[1].startswith("sampling: 4/8 samples (50%) | problems 1/2 | ")
    assert " tok/s | " in lines[1] and "ETA " in lines[1]
    assert lines[2].startswith("sampling: 8/8 samples (100%) | problems 2/2 | ") and "ETA" not in lines[2]


def test_lines_are_periodic_not_per_update():
    stream = io.StringIO()
    progress = Progress("verifying", 1000, stream=stream, interval=3600)
    for _ in range(999):
        progress.update(1)
    assert len(stream.getvalue().splitlines()) == 1, "the first update, then nothing until the interval passes"
    progress.update(1)  # the last one is always shown
    progress.close()
    assert stream.getvalue().splitlines()[-1].startswith("verifying: 1000/1000 samples (100%)")


def test_json_mode_writes_start_progress_and_end_events(clock):
    stream = io.StringIO()
    progress = Progress("sampling", 6, problems=3, mode="json", stream=stream)
    clock[0] += 1
    progress.update(2, tokens=50, problems=1)
    clock[0] += JSON_INTERVAL + ETA_AFTER_SECONDS
    for _ in range(2):
        progress.update(2, tokens=50, problems=1)
    progress.close()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [event["event"] for event in events] == ["start", "progress", "progress", "end"]
    assert events[0] == {"event": "start", "step": "sampling", "total": 6, "unit": "samples", "problems_total": 3}
    assert all(set(event) == EVENT_FIELDS | {"event"} for event in events[1:])
    assert events[1]["done"] == 2 and events[1]["problems_done"] == 1 and events[1]["eta_s"] is None
    assert events[2]["done"] == 4 and events[2]["eta_s"] == 3.0, "2 left at 4 done in 6 s"
    assert events[3]["done"] == 6 and events[3]["problems_done"] == 3 and events[3]["tokens"] == 150
    assert events[3]["eta_s"] is None and events[3]["tokens_per_s"] > 0


def test_tokens_move_progress_before_any_unit_finishes_and_give_the_eta(clock):
    stream = io.StringIO()
    progress = Progress("sampling", 10, mode="json", stream=stream, max_tokens_per_unit=100)
    clock[0] += 5
    progress.add_tokens(1)
    assert progress.snapshot()["eta_s"] is None, "the first token measures no rate"
    clock[0] += 5
    progress.add_tokens(49)
    # 5 tok/s; no sample finished, so each is expected to take the limit: 10 x 100 - 50 tokens left
    assert progress.snapshot() | {"elapsed_s": None} == {
        "step": "sampling",
        "done": 0,
        "total": 10,
        "unit": "samples",
        "problems_done": 0,
        "problems_total": None,
        "tokens": 50,
        "elapsed_s": None,
        "rate": 0.0,
        "tokens_per_s": 5.0,
        "eta_s": 190.0,
    }
    clock[0] += 10
    progress.add_tokens(50)
    progress.update(2, tokens=40)  # 20 tokens a sample: 8 x 20 left, less the 60 generated for samples in flight
    assert progress.snapshot()["tokens"] == 100 and progress.snapshot()["eta_s"] == 20.0
    progress.update(8, tokens=160)  # an engine that reports no tokens while running still counts finished ones
    assert progress.snapshot()["tokens"] == 200 and progress.snapshot()["eta_s"] is None
    progress.close()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [event["event"] for event in events] == ["start", "progress", "progress", "progress", "end"]
    assert events[1]["done"] == 0 and events[1]["tokens"] == 1, "the first tokens are shown at once"
    assert events[1]["eta_s"] is None and events[2]["eta_s"] == 190.0
    assert events[-1]["tokens"] == 200


def test_a_plain_line_shows_tokens_so_far_and_the_token_rate():
    stream = io.StringIO()
    progress = Progress("sampling", 4, problems=1, stream=stream, max_tokens_per_unit=64)
    progress.add_tokens(12)
    line = stream.getvalue().splitlines()[0]
    assert line.startswith("sampling: 0/4 samples (0%) | problems 0/1 | 0.0 samples/s | 12 tokens | ")
    assert " tok/s | elapsed " in line and "ETA" not in line, "no ETA from the first tokens' rate"


def test_quiet_mode_and_empty_steps_write_nothing():
    stream = io.StringIO()
    quiet = Progress("sampling", 5, mode="quiet", stream=stream)
    quiet.update(5)
    quiet.close()
    empty = Progress("sampling", 0, mode="json", stream=stream)
    empty.close()
    assert stream.getvalue() == ""
    with pytest.raises(ValueError, match="unknown progress mode 'fancy'"):
        Progress("sampling", 5, mode="fancy")


def test_configure_logging_replaces_its_own_handler_and_keeps_others():
    logger = logging.getLogger("harness")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    other = logging.NullHandler()
    logger.addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    try:
        configure_logging(json_mode=True, stream=first)
        configure_logging(json_mode=False, stream=second)
        logging.getLogger("harness.engines").warning("engine retried")
        assert other in logger.handlers
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
    assert first.getvalue() == ""  # the first call's JSON handler is gone
    assert second.getvalue() == "warning: engine retried\n"
