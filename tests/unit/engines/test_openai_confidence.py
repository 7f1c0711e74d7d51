"""The OpenAI engine's confidence statistics: fed from the stream as events arrive (both variants), or from a
plain body, they equal a direct computation from the tokens' log-probabilities."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from harness.engines.confidence import ConfidenceSettings, ConfidenceStats
from harness.engines.openai_engine import OpenAIEngine, _choice_logprobs, _choice_top_logprobs, _StreamedAnswer
from tests.integration.test_confidence import direct_stats


def events(chat: bool, tokens: list[tuple[str, float, dict[str, float]]]) -> bytes:
    """Server-sent events of one choice, one token each, as vLLM streams them; then its finish."""
    lines = []
    for text, value, top in tokens:
        if chat:
            entry = {
                "token": text,
                "logprob": value,
                "top_logprobs": [{"token": t, "logprob": v} for t, v in top.items()],
            }
            choice = {"index": 0, "delta": {"content": text}, "logprobs": {"content": [entry]}}
        else:
            choice = {"index": 0, "text": text, "logprobs": {"token_logprobs": [value], "top_logprobs": [top]}}
        lines.append(b"data: " + json.dumps({"choices": [choice]}).encode())
    finish = {"index": 0, "finish_reason": "stop"} | ({"delta": {}} if chat else {"text": ""})
    lines += [b"data: " + json.dumps({"choices": [finish]}).encode(), b"data: [DONE]"]
    return b"\n\n".join(lines) + b"\n\n"


def random_tokens(rng: np.random.Generator, count: int) -> list[tuple[str, float, dict[str, float]]]:
    tokens = []
    for index in range(count):
        top = {f"t{j}": float(v) for j, v in enumerate(np.sort(-rng.exponential(1.0, 4))[::-1])}
        tokens.append((f" w{index}", float(-rng.exponential(0.7)), top))
    return tokens


@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize("top", [0, 3])
def test_streamed_statistics_equal_a_direct_computation(chat, top):
    rng = np.random.default_rng(7)
    tokens = random_tokens(rng, 23)
    settings = ConfidenceSettings(window=5, tail=4, top_logprobs=top)
    answer = _StreamedAnswer(chat, lambda count: None, settings)
    data = events(chat, tokens)
    for start in range(0, len(data), 97):  # bytes arrive in arbitrary pieces
        answer.feed(data[start : start + 97])
    body = answer.body()
    stats = body["choices"][0]["ttc_confidence"]
    assert isinstance(stats, ConfidenceStats) and stats.tokens == 23
    if top:  # DeepConf's token confidence: minus the mean of the top k log-probabilities
        values = [-np.mean(sorted(t.values(), reverse=True)[:top]) for _, _, t in tokens]
    else:
        values = [value for _, value, _ in tokens]
    expected = direct_stats(values, window=5, tail=4)
    assert stats.mean == pytest.approx(expected["conf_mean"])
    assert stats.min_window == pytest.approx(expected["conf_min_window"])
    assert stats.tail == pytest.approx(expected["conf_tail"])
    assert stats.bottom_window == pytest.approx(expected["conf_bottom_window"])
    # the same from a plain (non-streamed) body: the reassembled one, without the statistics riding along
    choice = {key: value for key, value in body["choices"][0].items() if key != "ttc_confidence"}
    engine = SimpleNamespace(confidence=settings)
    plain = OpenAIEngine._confidence_of(
        engine, choice, _choice_logprobs(choice, chat), _choice_top_logprobs(choice, chat)
    )
    assert plain is not None and plain.to_dict() == pytest.approx(stats.to_dict())


def test_a_server_without_the_top_logprobs_asked_for_gives_no_statistics():
    tokens = [(text, value, {}) for text, value, _ in random_tokens(np.random.default_rng(1), 5)]
    answer = _StreamedAnswer(False, lambda count: None, ConfidenceSettings(window=2, tail=2, top_logprobs=3))
    answer.feed(events(False, tokens).replace(b', "top_logprobs": [{}]', b""))
    assert "ttc_confidence" not in answer.body()["choices"][0]
