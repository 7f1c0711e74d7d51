"""Runs for the report and compare tests: a JSONL task with levels, an engine whose first sample is hostile
HTML, and a numeric verifier that reports some samples as timeouts (so every outcome has examples)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from harness import sample, verify
from harness.core.records import SamplingSettings
from harness.engines.base import GenerationRequest, GenerationResult
from tests.support.fake_engine import FAKE_ANSWERS, FakeEngine
from tests.support.helpers import FAKE_ENGINE
from verifiers.base import TIMEOUT, Verdict
from verifiers.numeric import NumericVerifier

# Shown in the report as text; if it were parsed as HTML, the script would set window.pwned.
HOSTILE_TEXT = '<script>window.pwned=1</script></html><img src=x onerror="window.pwned=2">'
TIMEOUT_ANSWER = "11"  # FakeEngine draws it for about one sample in seven


# The JSONL task over write_level_problems' file: its fields, the level as metadata, the numeric verifier.
LEVEL_TASK_OPTIONS = {
    "prompt_field": "q",
    "answer_field": "a",
    "id_field": "uid",
    "metadata_fields": ["level"],
    "verifier": "numeric",
}


def verified_fake_run(
    out: Path, model: Path, data: Path, problems: int, samples: int, *, task: str = "jsonl", seed: int = 0
) -> Path:
    """A run sampled on the fake engine and verified (not analysed) in ``out``: the level problems in ``data`` as
    a JSONL task, or ``task`` on ``data`` with its default options. Returns ``out``."""
    sample(
        task,
        data=str(data),
        task_options=LEVEL_TASK_OPTIONS if task == "jsonl" else {},
        model=str(model),
        engine=FAKE_ENGINE,
        problems=problems,
        samples=samples,
        seed=seed,
        out=out,
        progress="quiet",
    )
    verify(out, workers=1, progress="quiet")
    return out


def write_level_problems(path: Path, count: int = 12) -> Path:
    """``count`` problems p0, p1, ... with answers the fake engine sometimes gives, in three MATH-like levels."""
    rows = [
        {"q": f"Question {i}?", "a": FAKE_ANSWERS[i % 5], "uid": f"p{i}", "level": f"Level {i % 3 + 1}"}
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


class HostileEngine(FakeEngine):
    """FakeEngine, except that sample 0 of problem p0 is hostile HTML followed by p0's right answer."""

    def generate(self, requests: Iterable[GenerationRequest], settings: SamplingSettings) -> Iterator[GenerationResult]:
        for result in super().generate(requests, settings):
            request = result.request
            if request.problem_id == "p0" and request.first_index == 0:
                text = f"{HOSTILE_TEXT}\n#### {FAKE_ANSWERS[0]}"
                result.completions[0] = replace(result.completions[0], text=text, n_tokens=len(text.split()))
            yield result


class TimeoutNumericVerifier(NumericVerifier):
    """The numeric verifier, but answers of 11 count as timeouts (a stand-in for a verifier's time limit)."""

    name = "numeric-with-timeouts"

    def verify(self, reference, completions):
        verdicts = super().verify(reference, completions)
        return [
            Verdict(False, TIMEOUT, None, "exceeded the time limit (test stand-in)")
            if v.answer == TIMEOUT_ANSWER
            else v
            for v in verdicts
        ]
