"""Reasoning models through the pipeline, on a fake engine whose completions think and then answer: every
verifier judges the answer segment only, a thinking that never closed is ``truncated_thinking``, the mode is
decided, recorded and part of the verdict set's identity, and the token split is stored per sample."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import harness
from harness.core.errors import OptionError, RunStoreError
from harness.core.reasoning import ThinkTags
from harness.pipeline.verify import judge_texts
from harness.store import RunStore
from tests.support.helpers import fake_model_dir
from tests.support.thinking_engine import SHAPES, expected_reason, shape_text, word_thinking_tokens
from verifiers import load_verifier
from verifiers.base import CORRECT, Verdict

THINKING_ENGINE = "tests.support.thinking_engine:ThinkingFakeEngine"
PROBLEMS, SAMPLES = 5, 12
TAGS = ThinkTags()


def thinking_run(shared_data: Path, root: Path, **overrides: Any) -> harness.RunResult:
    arguments: dict[str, Any] = dict(
        data=str(shared_data / "gsm8k_test.jsonl"),
        model=str(fake_model_dir(root)),
        engine=THINKING_ENGINE,
        problems=PROBLEMS,
        samples=SAMPLES,
        out=root / "run",
        workers=1,
        progress="quiet",
    )
    return harness.run("gsm8k", **{**arguments, **overrides})


def reasons_by_sample(run_dir: Path, verifier: str | None = None) -> dict[tuple[str, int], str]:
    table = RunStore.open(run_dir).read_verdicts(verifier, columns=["reason"]).to_pylist()
    return {(row["problem_id"], row["sample_idx"]): row["reason"] for row in table}


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_verdicts_judge_the_answer_after_the_thinking(shared_data, tmp_path, mode):
    result = thinking_run(shared_data, tmp_path, reasoning=mode)
    reasons = reasons_by_sample(result.run_dir)
    assert len(reasons) == PROBLEMS * SAMPLES
    for (problem_id, index), reason in reasons.items():
        assert reason == expected_reason(index, reasoning=True), (problem_id, index, shape_text(0, index, TAGS))
    manifest = RunStore.open(result.run_dir).manifest
    record = manifest["reasoning"]
    assert record["mode"] == "on" and record["requested"] == mode and record["think_tags"] == TAGS.to_list()
    texts = RunStore.open(result.run_dir).read_samples(["text"]).column("text").to_pylist()
    if mode == "on":  # GSM8K's prompts are text, which no chat template opens: they end with the opening tag
        assert record["response_prefix"] == "<think>" and manifest["config"]["sample_defining"]["response_prefix"]
        assert not any(text.startswith("<think>") for text in texts)  # the engine was given the prompt's ending
    else:  # auto with text prompts: off until the samples showed thinking, the prompts untouched
        assert record["response_prefix"] == "" and "response_prefix" not in manifest["config"]["sample_defining"]
        assert "samples hold the think tags" in record["decided_by"]
        opened = sum(text.startswith("{open}") for text, _, _ in SHAPES)
        assert sum(text.startswith("<think>") for text in texts) == PROBLEMS * SAMPLES * opened // len(SHAPES)
    summary = result.summary
    truncated = sum(expected_reason(index, True) == "truncated_thinking" for index in range(SAMPLES)) * PROBLEMS
    assert summary["reasons"]["truncated_thinking"] == truncated == summary["reasoning"]["truncated"]
    assert summary["verifier"]["reasoning"] == {"mode": "on", "think_tags": ["<think>", "</think>"]}


def test_the_token_split_is_stored_with_every_sample(shared_data, tmp_path):
    result = thinking_run(shared_data, tmp_path, reasoning="on")
    rows = RunStore.open(result.run_dir).read_samples().to_pylist()
    for row in rows:
        thinking = word_thinking_tokens(row["text"], TAGS)
        assert (row["thinking_tokens"], row["answer_tokens"]) == (thinking, row["n_tokens"] - thinking), row
    figures = result.summary["reasoning"]
    assert figures["split_known"] == len(rows) and figures["thinking_tokens"]["max"] == max(
        row["thinking_tokens"] for row in rows
    )
    correct = [row["thinking_tokens"] for row in rows if expected_reason(row["sample_idx"], True) == CORRECT]
    assert figures["mean_thinking_tokens_correct"] == pytest.approx(sum(correct) / len(correct))
    assert sum(bin["samples"] for bin in figures["accuracy_by_thinking"]) == len(rows)


def test_off_judges_the_whole_completion_and_keeps_the_verdict_set_of_old(shared_data, tmp_path):
    result = thinking_run(shared_data, tmp_path, reasoning="off")
    reasons = reasons_by_sample(result.run_dir)
    assert all(reason == expected_reason(index, reasoning=False) for (_, index), reason in reasons.items())
    store = RunStore.open(result.run_dir)
    # keyed by the verifier's own description, as before reasoning support: old runs keep their verdict sets
    assert result.verification["verdict_set"] == store.verdict_key(load_verifier("numeric").describe())
    assert "reasoning" not in result.summary["verifier"]
    assert result.summary["reasoning"]["mode"] == "off" and result.summary["reasoning"]["truncated"] is None


def test_a_run_re_verified_with_another_mode_gets_its_own_verdict_set(shared_data, tmp_path):
    result = thinking_run(shared_data, tmp_path, reasoning="auto")
    judged_on = result.verification["verdict_set"]
    off = harness.verify(result.run_dir, reasoning="off", workers=1, progress="quiet")
    assert off["verdict_set"] != judged_on and off["verified"] == PROBLEMS * SAMPLES
    other_tags = harness.verify(result.run_dir, reasoning="on", think_tags="<t>,</t>", workers=1, progress="quiet")
    assert other_tags["verdict_set"] not in (judged_on, off["verdict_set"])
    # no sample closes a thinking in <t>...</t>: every one is cut off under those tags
    assert other_tags["reasons"] == {"truncated_thinking": PROBLEMS * SAMPLES}
    again = harness.verify(result.run_dir, workers=1, progress="quiet")  # auto: as sampled, nothing new to judge
    assert again["verdict_set"] == judged_on and again["verified"] == 0
    store = RunStore.open(result.run_dir)
    assert len(store.verdict_sets()) == 3
    off_reasons = reasons_by_sample(result.run_dir, off["verdict_set"])
    assert all(reason == expected_reason(index, reasoning=False) for (_, index), reason in off_reasons.items())


def test_resuming_with_another_prompt_ending_is_refused(shared_data, tmp_path):
    """``on`` ends GSM8K's text prompts with the opening tag; ``off`` would sample other prompts into the run."""
    thinking_run(shared_data, tmp_path, reasoning="on", samples=2)
    with pytest.raises(RunStoreError, match=r"sample_defining.response_prefix: stored '<think>', requested None"):
        thinking_run(shared_data, tmp_path, reasoning="off", samples=4)
    resumed = thinking_run(shared_data, tmp_path, reasoning="on", samples=4)  # the same ending resumes
    assert resumed.sampling["already_stored"] == PROBLEMS * 2


def test_auto_stays_on_when_a_run_resumes(shared_data, tmp_path):
    thinking_run(shared_data, tmp_path, reasoning="auto", samples=2)
    resumed = thinking_run(shared_data, tmp_path, reasoning="auto", samples=4)
    record = RunStore.open(resumed.run_dir).manifest["reasoning"]
    assert record["mode"] == "on" and not record["awaiting_evidence"]
    assert resumed.summary["reasoning"]["mode"] == "on"


# -- every verifier judges the answer segment only ------------------------------------------------------------


class SeesEverything:
    """A verifier of one's own, which knows nothing of reasoning: correct when the text ends with 'yes'."""

    name = "ends-with-yes"

    def verify(self, reference: Mapping[str, Any], completions: Sequence[str]) -> list[Verdict]:
        return [
            Verdict(text.strip().endswith("yes"), CORRECT if text.strip().endswith("yes") else "wrong", None)
            for text in completions
        ]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


CASES = {
    "math": ({"answer": "\\frac{1}{2}"}, "\\boxed{\\frac{1}{2}}", "\\boxed{3}"),
    "numeric": ({"answer": "42"}, "#### 42", "#### 41"),
    "exact": ({"answer": "Paris"}, "Paris", "Lyon"),
    "choice": ({"answer": "C", "letters": "ABCD"}, "Answer: C", "Answer: B"),
    "python-tests": (
        {"prefix": "", "test": "assert double(3) == 6", "code_block": True},
        "```python\ndef double(x):\n    return 2 * x\n```",
        "```python\ndef double(x):\n    return x + 1\n```",
    ),
}


@pytest.mark.parametrize("name", [*CASES, "custom"])
def test_every_verifier_judges_the_answer_segment_only(name):
    reference, right, wrong = CASES.get(name, ({}, "yes", "no"))
    verifier = SeesEverything() if name == "custom" else load_verifier(name)
    texts = [
        f"<think>I will say {right}\n</think>\n{wrong}",  # right while thinking, wrong after: wrong
        f"<think>Not {wrong}\n</think>\n{right}",  # wrong while thinking, right after: right
        f"<think>{right}",  # right, but the thinking never closed
        f"<think>{right}</think>   \n",  # nothing after the thinking
        f"thinking opened by the template {wrong}</think>{right}",
    ]
    verdicts = judge_texts(verifier, reference, texts, TAGS)
    assert not verdicts[0].correct and verdicts[0].reason != CORRECT
    assert [(verdict.correct, verdict.reason) for verdict in verdicts[1:]] == [
        (True, CORRECT),
        (False, "truncated_thinking"),
        (False, "no_answer"),
        (True, CORRECT),
    ]


def test_bad_reasoning_options_are_refused_before_anything_is_written(shared_data, tmp_path):
    with pytest.raises(OptionError, match="must be one of auto, on, off") as caught:
        thinking_run(shared_data, tmp_path, reasoning="yes")
    assert caught.value.option == "reasoning"
    with pytest.raises(OptionError, match="takes two tags") as caught:
        thinking_run(shared_data, tmp_path, think_tags="<think>")
    assert caught.value.option == "think_tags"
    assert not (tmp_path / "run").exists()


def test_the_summary_json_and_the_api_expose_pass_hat_k_avg_at_n_and_reasoning(shared_data, tmp_path):
    result = thinking_run(shared_data, tmp_path, reasoning="on")
    on_disk = json.loads((result.run_dir / "summary.json").read_text())
    stored = harness.load_run(result.run_dir)
    assert on_disk["pass_hat_k"] == result.summary["pass_hat_k"]
    assert stored.pass_hat_k().to_dict("records") == on_disk["pass_hat_k"]
    assert stored.avg_at_n == on_disk["avg_at_n"] and stored.reasoning == on_disk["reasoning"]
    assert stored.pass_hat_k(ks=[3])["k"].tolist() == [3]  # a k the summary lacks: estimated from the counts
    html = (result.run_dir / "report.html").read_text()
    assert "pass^k" in html and "avg@n" in html and 'id="reasoning"' in html and "cut off in their thinking" in html


# -- how the mode is decided ----------------------------------------------------------------------------------------


def engine_with_template(template: str | None) -> type:
    """An engine class whose chat template is ``template`` (None: not known before it starts, as a server's)."""
    from tests.support.thinking_engine import ThinkingFakeEngine

    class Templated(ThinkingFakeEngine):
        @classmethod
        def chat_template(cls, model, engine_options):
            return template

    return Templated


QWEN3_LIKE = "{% for m in messages %}...{% endfor %}<|im_start|>assistant\n<think>\n\n</think>\n\n"
SMOLLM_LIKE = "{% for m in messages %}<|im_start|>{{ m.role }}...{% endfor %}<|im_start|>assistant\n"
CLOSE_ONLY = "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"


@pytest.mark.parametrize(
    ("requested", "template", "chat", "mode", "prefix", "waiting"),
    [
        ("auto", QWEN3_LIKE, True, "on", "", False),  # the template holds the tags
        ("auto", CLOSE_ONLY, True, "on", "", False),  # DeepSeek-R1's: the closing tag only
        ("auto", SMOLLM_LIKE, True, "off", "", False),  # known, and without them: off for good
        ("auto", None, True, "off", "", True),  # a server's: the samples will tell
        ("auto", QWEN3_LIKE, False, "off", "", True),  # text prompts: no template renders them
        ("on", SMOLLM_LIKE, True, "on", "<think>", False),  # the template does not open the thinking: ttc does
        ("on", QWEN3_LIKE, True, "on", "", False),
        ("on", CLOSE_ONLY, True, "on", "<think>", False),
        ("on", None, True, "on", "", False),  # a server's template decides
        ("on", None, False, "on", "<think>", False),  # text prompts end with the opening tag
        ("off", QWEN3_LIKE, True, "off", "", False),
    ],
)
def test_the_reasoning_mode_is_decided_before_sampling(requested, template, chat, mode, prefix, waiting):
    from harness.core.records import Problem
    from harness.engines.models import ModelRef
    from harness.pipeline.reasoning import resolve_sampling_reasoning

    prompt = [{"role": "user", "content": "2+2?"}] if chat else "2+2?"
    decided = resolve_sampling_reasoning(
        requested, TAGS, engine_with_template(template), ModelRef("m", "m", "m"), {}, [Problem("p", prompt, {})]
    )
    assert (decided.mode, decided.response_prefix, decided.awaiting_evidence) == (mode, prefix, waiting)
    assert decided.requested == requested and decided.decided_by
    shown = decided.after_samples(["<think>hmm</think> 4"])
    assert shown.mode == ("on" if waiting else mode) and not shown.awaiting_evidence
    assert decided.after_samples(["4"]) == decided  # no sign of thinking: nothing changes


def test_pass_hat_k_and_avg_at_n_in_the_summary_are_those_of_the_verdicts(make_fake_run):
    """Counted straight from the stored verdicts: pass^k by enumerating C(c,k)/C(n,k), avg@n and its standard
    error over problems by their definitions."""
    from math import comb
    from statistics import mean, stdev

    run_dir = make_fake_run(problems=PROBLEMS, samples=7)  # the fake engine's answers differ between problems
    summary = harness.load_run(run_dir).summary
    verdicts = RunStore.open(run_dir).read_verdicts(columns=["correct"]).to_pylist()
    per_problem: dict[str, list[bool]] = {}
    for row in verdicts:
        per_problem.setdefault(row["problem_id"], []).append(row["correct"])
    counts = [(len(marks), sum(marks)) for marks in per_problem.values()]
    assert len({c for _, c in counts}) > 1, counts
    for row in summary["pass_hat_k"]:
        k = row["k"]
        assert row["value"] == pytest.approx(mean(comb(c, k) / comb(n, k) for n, c in counts), abs=1e-12), k
        assert row["low"] <= row["value"] <= row["high"]
    shares = [c / n for n, c in counts]
    averaged = summary["avg_at_n"]
    assert averaged["mean"] == pytest.approx(mean(shares)) and averaged["problems"] == PROBLEMS
    assert averaged["standard_error"] == pytest.approx(stdev(shares) / len(shares) ** 0.5)
    assert averaged["samples"] == PROBLEMS * 7
