"""A reasoning model behind an OpenAI-compatible server (a local scripted one): thinking returned apart
(``reasoning_content``, ``reasoning``), an answer that is null after a cut-off, inline ``<think>``, an empty answer
and ``reasoning_tokens`` in usage. The run completes (it used to stop after five retries on ``content: null``),
each verdict is the one the answer segment deserves, cut-off samples are ``truncated_thinking``, nothing of the
thinking is lost and the token split is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness
from harness.store import RunStore
from tasks import load_task
from tests.support.scripted_openai_server import MODEL, Call, Fault, Reasoning, ScriptedServer

PROBLEMS, SAMPLES = 5, 3
FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "request_timeout": 5.0, "max_retries": 2, "concurrency": 2}

# GSM8K's first five answers are 18, 3, 70000, 540 and 20. Per problem: what the server answers, the verdict
# it deserves, the stored text, and its thinking tokens (the words of the thinking and the closing tag).
ANSWERS: dict[int, Fault] = {
    # the thinking holds a wrong answer, the answer the right one: correct; usage gives the thinking tokens
    0: Fault("reasoning", reasoning=Reasoning("Let me add. #### 999 hmm", "#### 18", reasoning_tokens=7)),
    # cut off while thinking (content null, finish length), the right answer in its thinking: never correct
    1: Fault("reasoning", reasoning=Reasoning("I compute #### 3 and keep", None, "length")),
    # no reasoning parser: inline thinking, the right answer while thinking, a wrong one after: wrong
    2: Fault("text", text="<think> Work: #### 70000 </think>\n#### 12"),
    # thinking in the field `reasoning`, then an empty answer: no answer
    3: Fault("reasoning", reasoning=Reasoning("All done", "", field="reasoning")),
    # an empty answer with finish length: cut off at the closing tag, never correct
    4: Fault("reasoning", reasoning=Reasoning("Nearly #### 20", "", "length")),
}
REASONS = {0: "correct", 1: "truncated_thinking", 2: "wrong", 3: "no_answer", 4: "truncated_thinking"}
TEXTS = {
    0: "<think>Let me add. #### 999 hmm</think>#### 18",
    1: "<think>I compute #### 3 and keep",
    2: "<think> Work: #### 70000 </think>\n#### 12",
    3: "<think>All done</think>",
    4: "<think>Nearly #### 20",
}
# (thinking, answer) tokens: problem 0 from usage, the others from the sampled tokens' texts (a word each, and
# the closing tag); a thinking that never closed is all thinking
SPLITS = {0: (7, 2), 1: (6, 0), 2: (5, 2), 3: (3, 0), 4: (3, 0)}


@pytest.fixture(autouse=True)
def no_ambient_openai_settings(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def script(shared_data):
    task = load_task("gsm8k", data=str(shared_data / "gsm8k_test.jsonl"), prompt_style="chat")
    index = {str(problem.prompt): number for number, problem in enumerate(task.problems()[:PROBLEMS])}
    return lambda call: ANSWERS[index[str(call.prompt)]]


def reasoning_run(shared_data: Path, out: Path, server: ScriptedServer, **engine_options) -> harness.RunResult:
    return harness.run(
        "gsm8k",
        data=str(shared_data / "gsm8k_test.jsonl"),
        task_options={"prompt_style": "chat"},
        model=MODEL,
        engine="openai",
        engine_options={"base_url": server.base_url, **FAST, **engine_options},
        problems=PROBLEMS,
        samples=SAMPLES,
        max_tokens=64,
        out=out,
        workers=1,
        progress="quiet",
    )


def by_problem(rows: list[dict]) -> dict[int, list[dict]]:
    grouped: dict[int, list[dict]] = {}
    for row in rows:
        grouped.setdefault(int(row["problem_id"].rsplit("/", 1)[1]), []).append(row)
    return grouped


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_reasoning_answers_are_stored_whole_and_judged_on_the_answer(shared_data, tmp_path, script, stream):
    def answer(call: Call) -> Fault:
        if not stream and call.payload.get("stream"):
            return Fault("status", 400, "stream is not supported")
        return script(call)

    with ScriptedServer(answer) as server:
        result = reasoning_run(shared_data, tmp_path / "run", server, max_n_per_request=1)
    store = RunStore.open(tmp_path / "run")
    manifest = store.manifest
    assert manifest["reasoning"]["requested"] == "auto" and manifest["reasoning"]["mode"] == "on"
    assert "think tags" in manifest["reasoning"]["decided_by"], manifest["reasoning"]
    samples = by_problem(store.read_samples().to_pylist())
    verdicts = by_problem(store.read_verdicts().to_pylist())
    for problem in range(PROBLEMS):
        assert [row["text"] for row in samples[problem]] == [TEXTS[problem]] * SAMPLES, problem
        assert [row["reason"] for row in verdicts[problem]] == [REASONS[problem]] * SAMPLES, problem
        splits = [(row["thinking_tokens"], row["answer_tokens"]) for row in samples[problem]]
        assert splits == [SPLITS[problem]] * SAMPLES, problem
        assert all(row["n_tokens"] == sum(SPLITS[problem]) for row in samples[problem]), problem
    assert result.verification["reasoning"] == {"mode": "on", "think_tags": ["<think>", "</think>"]}
    reasoning = result.summary["reasoning"]
    assert reasoning["mode"] == "on" and reasoning["truncated"] == 2 * SAMPLES and reasoning["samples"] == 15
    assert reasoning["split_known"] == 15 and reasoning["mean_thinking_tokens_correct"] == 7.0
    assert result.summary["pass_at_1"] == pytest.approx(0.2)
    engine = manifest["engine"]
    assert set(engine["thinking_tokens_from"]) == {
        "usage reasoning_tokens",
        "sampled tokens",
        "no closing tag: all thinking",
    }


def test_without_token_texts_reasoning_tokens_are_split_and_the_rest_unknown(shared_data, tmp_path, script):
    """Log-probabilities refused and n samples per request: the usage's reasoning tokens (the request's total)
    are split over its choices by thinking length; thinking without that figure, token texts or a local
    tokenizer is stored as unknown (null), and the summary says so."""

    def answer(call: Call) -> Fault:
        if call.payload.get("logprobs"):
            return Fault("status", 400, "logprobs are not supported")
        return script(call)

    with ScriptedServer(answer) as server:
        result = reasoning_run(shared_data, tmp_path / "run", server)
    samples = by_problem(RunStore.open(tmp_path / "run").read_samples().to_pylist())
    assert [row["thinking_tokens"] for row in samples[0]] == [7] * SAMPLES  # 3 x 7 split over 3 equal choices
    assert [row["thinking_tokens"] for row in samples[2]] == [None] * SAMPLES  # inline, nothing to count with
    assert [row["answer_tokens"] for row in samples[2]] == [None] * SAMPLES
    assert [row["thinking_tokens"] for row in samples[3]] == [None] * SAMPLES  # closed, no usage figure
    engine = RunStore.open(tmp_path / "run").manifest["engine"]
    assert "usage reasoning_tokens split by thinking length" in engine["thinking_tokens_from"]
    assert "unknown (stored null)" in engine["thinking_tokens_from"]
    reasoning = result.summary["reasoning"]
    assert reasoning["split_known"] == 9 and reasoning["note"] == "thinking and answer tokens known for 9 of 15 samples"


@pytest.mark.slow  # needs the embedded model's tokenizer (converted on first use)
def test_a_local_tokenizer_counts_inline_thinking(shared_data, tmp_path, script):
    """With neither the server's figure nor the tokens' texts, the tokenizer given counts the thinking."""
    from transformers import AutoTokenizer

    from harness.engines.models import embedded_model

    tokenizer_dir = embedded_model().path
    inline = "<think> a b c d e f </think> #### 12"  # more words (tokens, to the server) than real tokens

    def answer(call: Call) -> Fault:
        if call.payload.get("logprobs"):
            return Fault("status", 400, "logprobs are not supported")
        scripted = script(call)
        return Fault("text", text=inline) if scripted.kind == "text" else scripted

    with ScriptedServer(answer) as server:
        reasoning_run(shared_data, tmp_path / "run", server, tokenizer=tokenizer_dir)
    store = RunStore.open(tmp_path / "run")
    thought = len(
        AutoTokenizer.from_pretrained(tokenizer_dir).encode(" a b c d e f </think>", add_special_tokens=False)
    )
    assert thought != 8  # the words up to the closing tag: the count is the tokenizer's, not the words'
    samples = by_problem(store.read_samples().to_pylist())
    assert [(row["thinking_tokens"], row["answer_tokens"]) for row in samples[2]] == [(thought, 10 - thought)] * SAMPLES
    assert "tokenizer" in store.manifest["engine"]["thinking_tokens_from"]
