"""A judge that answers from a script: a perfect judge of GSM8K-style answers ("#### X"), for testing the judge
verifier, judge score sets and generative selection without a model.

Judge prompts (they show the reference): "yes" when the answer's last "#### X" is the reference, else "no", with
top log-probabilities P(yes) = 0.9 or 0.2. Generative selection prompts (no reference): the model directory's
``key.json`` maps a question's first line to its answer; the reply names the first candidate that gives it, or
says it cannot tell. Every reply counts one token per word, and the prompt one token per word.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.core.records import SamplingSettings
from harness.engines.base import Completion, Engine, GenerationRequest, GenerationResult, TokenCallback

JUDGE_ENGINE = "tests.support.judge_engine:ScriptedJudgeEngine"


def judge_model_dir(root: Path, key: Mapping[str, str]) -> Path:
    """A stand-in checkpoint directory whose ``key.json`` holds each question's answer (first line -> answer)."""
    model = root / "scripted-judge"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["ScriptedJudge"]}))
    (model / "key.json").write_text(json.dumps(dict(key)))
    return model


def final_answer(text: str) -> str | None:
    found = re.findall(r"####\s*(\S+)", text)
    return found[-1] if found else None


class ScriptedJudgeEngine(Engine):
    def __init__(self, model: str, **options: Any) -> None:
        self.model = model
        self.key = json.loads((Path(model) / "key.json").read_text())
        self.prompts_seen: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {"engine": "scripted-judge", "model": self.model}

    def reply(self, text: str) -> tuple[str, list[dict[str, float]] | None]:
        if "Reference answer:" in text:
            reference = text.split("Reference answer:\n", 1)[1].split("\n", 1)[0].strip()
            segment = text.split("Answer to check (its end):\n", 1)[1]
            right = final_answer(segment) == reference
            probability = 0.9 if right else 0.2
            return ("Yes" if right else "No"), [{"Yes": math.log(probability), "No": math.log(1 - probability)}]
        question = next((q for q in self.key if q in text), None)
        candidates = re.split(r"\nAnswer \d+ \(its end\):\n", text)[1:]
        for number, candidate in enumerate(candidates, start=1):
            if question is not None and final_answer(candidate) == self.key[question]:
                return f"Answer {number} is correct.", None
        return "I cannot tell.", None

    def generate(
        self, requests: Iterable[GenerationRequest], settings: SamplingSettings, on_tokens: TokenCallback | None = None
    ) -> Iterator[GenerationResult]:
        for request in requests:
            assert not isinstance(request.prompt, str), "a judge is asked in chat messages"
            text = request.prompt[-1]["content"]
            self.prompts_seen.append(text)
            reply, tops = self.reply(text)
            completion = Completion(
                text=reply,
                n_tokens=len(reply.split()),
                finish_reason="stop",
                logprob_sum=None,
                top_logprobs=tops if request.top_logprobs else None,
            )
            yield GenerationResult(request=request, completions=[completion], prompt_tokens=len(text.split()))

    def close(self) -> None:
        pass
