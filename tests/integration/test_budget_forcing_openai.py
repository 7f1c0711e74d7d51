"""Budget forcing against an OpenAI-compatible server (a local scripted one): ttc applies the model's chat template
itself and drives the server through ``/completions``: the first request samples at most B tokens, a sample whose
thinking did not close is continued by a second request whose prompt is the rendered prompt, the thinking so far,
the closing tag and the answer cue, for at most A tokens; the stored sample is the whole trace, forced."""

from __future__ import annotations

import pytest

import harness
from harness.core.forcing import DEFAULT_ANSWER_CUE
from harness.engines.models import embedded_model
from harness.store import RunStore
from tests.support.scripted_openai_server import MODEL, Call, Fault, ScriptedServer

PROBLEMS, SAMPLES, BUDGET, ANSWER = 2, 2, 6, 3
# The model opens its thinking itself (the template does not): a thought of 20 words, cut at B = 6 tokens (the
# opening tag is one of them), or a short one that closes within the budget
LONG = ["<think>"] + [f"w{index}" for index in range(1, 21)]
SHORT = ["<think>", "s1", "s2", "</think>", "####", "18"]
FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "request_timeout": 5.0, "max_retries": 2, "concurrency": 2}


@pytest.fixture(autouse=True)
def no_ambient_openai_settings(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def words_after_think(prompt: str) -> list[str]:
    """What the model generated so far: its words from its opening tag on (none before it opened it)."""
    return ["<think>", *prompt.rsplit("<think>", 1)[1].split()] if "<think>" in prompt else []


def answer(call: Call) -> Fault:
    """A model that continues its own trace: ``LONG`` (or ``SHORT`` for seed-odd samples), and after an inserted
    closing tag and cue, an answer. Words are tokens; each completion honours ``max_tokens``."""
    prompt = call.payload["prompt"]
    assert isinstance(prompt, str), "budget forcing sends text prompts to /completions"
    so_far = words_after_think(prompt)
    if "</think>" in prompt:
        words = ["####", "18", "more", "words"]
    else:
        trace = SHORT if call.payload["seed"] % 2 else LONG
        words = trace[len(so_far) :]
    kept = words[: call.payload["max_tokens"]]
    return Fault("text", text="".join(" " + word for word in kept))


def test_forcing_through_completions_with_the_chat_template_applied_by_ttc(shared_data, tmp_path):
    tokenizer = embedded_model().path
    with ScriptedServer(answer) as server:
        result = harness.run(
            "gsm8k",
            data=str(shared_data / "gsm8k_test.jsonl"),
            task_options={"prompt_style": "chat"},
            model=MODEL,
            engine="openai",
            engine_options={"base_url": server.base_url, "tokenizer": str(tokenizer), "max_n_per_request": 1, **FAST},
            problems=PROBLEMS,
            samples=SAMPLES,
            max_tokens=64,
            reasoning="on",
            thinking_budget=BUDGET,
            answer_tokens=ANSWER,
            out=tmp_path / "run",
            workers=1,
            progress="quiet",
        )
        calls = server.sampling_calls()
    assert calls and all(call.path == "/v1/completions" for call in calls)
    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(tokenizer)
    rendered = {
        problem.problem_id: template.apply_chat_template(
            list(problem.prompt), tokenize=False, add_generation_prompt=True
        )
        for problem in RunStore.open(result.run_dir).problems()
    }
    firsts = [call for call in calls if "</think>" not in call.payload["prompt"]]
    seconds = [call for call in calls if "</think>" in call.payload["prompt"]]
    assert all(call.payload["max_tokens"] == BUDGET for call in firsts)
    assert all(call.payload["max_tokens"] == ANSWER for call in seconds)
    for call in firsts:  # ttc rendered the chat template
        assert call.payload["prompt"] in set(rendered.values())
    for call in seconds:  # the rendered prompt, the thinking as cut, the tag and the cue
        thinking, _, cue = call.payload["prompt"].rpartition("</think>")
        assert any(thinking == text + " <think> w1 w2 w3 w4 w5" for text in rendered.values()), thinking
        assert cue == DEFAULT_ANSWER_CUE
    rows = RunStore.open(result.run_dir).read_samples().to_pylist()
    assert len(rows) == PROBLEMS * SAMPLES and len(seconds) == sum(bool(row["forced"]) for row in rows) > 0
    for row in rows:
        if row["forced"]:
            assert row["text"] == " <think> w1 w2 w3 w4 w5</think>" + DEFAULT_ANSWER_CUE + " #### 18 more", row
            assert (row["thinking_tokens"], row["answer_tokens"], row["n_tokens"]) == (BUDGET, ANSWER, BUDGET + ANSWER)
        else:
            assert row["text"] == " <think> s1 s2 </think> #### 18" and row["forced"] is False, row
