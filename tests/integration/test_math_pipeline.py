"""MATH-500 through the whole pipeline: sample (scripted engine), verify on a spawned pool, analyse."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from harness import analyze, sample, verify
from harness.core.jsonl import read_jsonl
from harness.core.records import SamplingSettings
from harness.engines.base import Completion, Engine, GenerationRequest, GenerationResult
from harness.store import RunStore
from tests.conftest import find_shared_data
from tests.support.helpers import fake_model_dir

PROBLEMS, SAMPLES = 6, 8


def scripted_text(answer: str, index: int) -> str:
    """Sample ``index`` of a problem: right in \\dfrac spelling, right, wrong, or without an answer."""
    kind = index % 4
    if kind == 0:
        return f"Working... so the answer is $\\boxed{{{answer.replace('frac', 'dfrac')}}}$."
    if kind == 1:
        return f"Final Answer: The final answer is ${answer}$. I hope it is correct."
    if kind == 2:
        return "Therefore the answer is $\\boxed{\\sqrt{7}+1000}$."
    return "I am not sure how to continue"


class ScriptedMathEngine(Engine):
    """Answers MATH-500 problems in a fixed pattern of right, wrong and missing answers."""

    def __init__(self, model: str, **options: Any) -> None:
        records = read_jsonl(find_shared_data() / "math500_test.jsonl")
        self.answers = {record["unique_id"]: record["answer"] for record in records}
        self.model = model

    def describe(self) -> dict[str, Any]:
        return {"engine": "scripted-math", "model": self.model}

    def generate(self, requests: Iterable[GenerationRequest], settings: SamplingSettings) -> Iterator[GenerationResult]:
        for request in requests:
            texts = [scripted_text(self.answers[request.problem_id], request.first_index + i) for i in range(request.n)]
            completions = [Completion(text=text, n_tokens=5, finish_reason="stop", logprob_sum=None) for text in texts]
            yield GenerationResult(request=request, completions=completions, prompt_tokens=10)

    def close(self) -> None:
        pass


def test_math500_run_verifies_with_reasons_and_answers(shared_data, tmp_path):
    engine, model = "tests.integration.test_math_pipeline:ScriptedMathEngine", fake_model_dir(tmp_path)
    size = dict(problems=PROBLEMS, samples=SAMPLES, out=tmp_path / "run", progress="quiet")
    data, chat = str(shared_data / "math500_test.jsonl"), {"prompt_style": "chat"}
    run_dir = sample("math500", data=data, task_options=chat, model=model, engine=engine, **size).run_dir
    outcome = verify(run_dir, workers=2, progress="quiet")
    assert outcome["verified"] == PROBLEMS * SAMPLES
    assert outcome["reasons"] == {
        "correct": PROBLEMS * SAMPLES // 2,
        "wrong": PROBLEMS * SAMPLES // 4,
        "no_answer": PROBLEMS * SAMPLES // 4,
    }
    verdicts = RunStore.open(run_dir).read_verdicts(outcome["verdict_set"]).to_pylist()
    answers = {(row["problem_id"], row["sample_idx"] % 4): row["answer"] for row in verdicts}
    for problem_id in {row["problem_id"] for row in verdicts}:
        assert answers[(problem_id, 0)] == answers[(problem_id, 1)]  # two spellings, one answer to count
    summary = analyze(run_dir)
    assert summary["reasons"]["correct"] == PROBLEMS * SAMPLES // 2
    assert verify(run_dir, workers=2, progress="quiet")["verified"] == 0  # a rerun resumes: nothing left to judge
