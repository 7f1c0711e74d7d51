"""Reasoning on, mechanically, with the embedded model through real vLLM: its chat template lacks the think tags,
so every prompt ends with the opening tag; completions are split, thinking tokens counted on the token ids,
verdicts given on the answer segment, and a thinking that never closed is ``truncated_thinking``. (SmolLM2 does
not reason: given few tokens, it rarely closes the thinking; the test checks the mechanics.)"""

from __future__ import annotations

import pytest

import harness
from harness.core.reasoning import ThinkTags, split_completion, thinking_token_count
from harness.engines.models import embedded_model
from harness.pipeline.verify import judge_texts
from harness.store import RunStore
from verifiers import load_verifier

pytestmark = pytest.mark.slow

PROBLEMS, SAMPLES, MAX_TOKENS = 3, 4, 48
TAGS = ThinkTags()


def test_reasoning_on_with_the_embedded_model(shared_data, tmp_path):
    result = harness.run(
        "aime",
        data=str(shared_data / "aime_2024_2025.jsonl"),
        problems=PROBLEMS,
        samples=SAMPLES,
        max_tokens=MAX_TOKENS,
        temperature=1.0,
        reasoning="on",
        out=tmp_path / "run",
        workers=1,
        progress="quiet",
    )
    store = RunStore.open(result.run_dir)
    manifest = store.manifest
    assert manifest["reasoning"]["mode"] == "on" and manifest["reasoning"]["response_prefix"] == "<think>"
    assert "lacks <think>" in manifest["reasoning"]["decided_by"]
    assert manifest["config"]["sample_defining"]["response_prefix"] == "<think>"

    # the prompt the engine ran ends with the opening tag: its length is the rendered template's and the tag's
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_model().path)
    problems = {problem.problem_id: problem for problem in store.problems()}
    samples = store.read_samples().to_pylist()
    assert len(samples) == PROBLEMS * SAMPLES
    for row in samples:
        rendered = tokenizer.apply_chat_template(
            list(problems[row["problem_id"]].prompt), tokenize=False, add_generation_prompt=True
        )
        assert row["prompt_tokens"] == len(tokenizer(rendered + "<think>").input_ids), row["problem_id"]
        assert row["prompt_tokens"] == len(tokenizer(rendered).input_ids) + 3  # '<', 'think', '>'

    # the split of each text, and its thinking tokens counted on the token ids
    verdicts = {(row["problem_id"], row["sample_idx"]): row for row in store.read_verdicts().to_pylist()}
    math = load_verifier("math")
    for row in samples:
        segments = split_completion(row["text"], TAGS)
        verdict = verdicts[(row["problem_id"], row["sample_idx"])]
        ids = tokenizer(row["text"], add_special_tokens=False).input_ids
        if not segments.closed:
            assert verdict["reason"] == "truncated_thinking" and not verdict["correct"]
            assert (row["thinking_tokens"], row["answer_tokens"]) == (row["n_tokens"], 0)
        else:
            counted = thinking_token_count(ids, tokenizer.decode, TAGS)
            assert counted is not None and abs(row["thinking_tokens"] - counted) <= 1  # retokenised text: near
            assert row["thinking_tokens"] + row["answer_tokens"] == row["n_tokens"]
            (expected,) = judge_texts(math, problems[row["problem_id"]].reference, [row["text"]], TAGS)
            assert (verdict["reason"], verdict["correct"]) == (expected.reason, expected.correct)
    reasons = result.summary["reasons"]
    assert reasons.get("truncated_thinking", 0) == sum(not split_completion(r["text"], TAGS).closed for r in samples)
    assert result.summary["reasoning"]["mode"] == "on"
    assert result.summary["reasoning"]["split_known"] == PROBLEMS * SAMPLES

    # the same samples judged whole: a verdict set of its own, no truncated_thinking
    whole = harness.verify(result.run_dir, reasoning="off", workers=1, progress="quiet")
    assert whole["verdict_set"] != result.verification["verdict_set"]
    assert "truncated_thinking" not in whole["reasons"] and whole["verified"] == PROBLEMS * SAMPLES
