"""Reasoning models: a completion is a thinking segment, closed by a tag, then an answer segment.

This module is the one splitter of a completion into its thinking and its answer, shared by every layer that
needs it: the verify step (verifiers judge the answer segment only), the engines (how many of a completion's
tokens were thinking), the analysis, and budget forcing (which cuts a thinking segment at a token budget).
It knows only text and token ids, never a tokenizer or a model: callers pass a ``decode`` function.

The rules, for tags ``<think>`` and ``</think>`` (``ThinkTags``):

* the thinking runs up to the first closing tag; an opening tag at its start is optional (a chat template that
  opens the thinking puts it in the prompt, where the completion never shows it);
* the answer is everything after that closing tag;
* a completion without the closing tag never finished thinking: its answer is empty and it is ``closed=False``
  (judged ``truncated_thinking``, never correct, whatever its thinking holds).

A server with a reasoning parser returns the thinking apart from the answer (``reasoning_content``); the engine
stores it as ``OPEN + thinking + CLOSE + answer`` (without ``CLOSE`` when the server says the thinking never
closed), so the stored text splits by these same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.core.errors import OptionError

#: ``--reasoning``: ``on`` (split every completion), ``off`` (judge it whole), ``auto`` (on when the model's chat
#: template holds the tags or the samples show thinking; see ``harness.pipeline.reasoning``).
REASONING_MODES = ("auto", "on", "off")
DEFAULT_OPEN_TAG = "<think>"
DEFAULT_CLOSE_TAG = "</think>"


def check_reasoning_mode(value: object, option: str = "reasoning") -> str:
    """``value`` if it is a reasoning mode, else ``OptionError(option, ...)`` listing them."""
    if value not in REASONING_MODES:
        raise OptionError(option, f"must be one of {', '.join(REASONING_MODES)}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class ThinkTags:
    """The tags around a completion's thinking: ``open`` (optional at the start of a completion) and ``close``."""

    open: str = DEFAULT_OPEN_TAG
    close: str = DEFAULT_CLOSE_TAG

    def __post_init__(self) -> None:
        for tag in (self.open, self.close):
            if not isinstance(tag, str) or not tag.strip():
                raise OptionError("think_tags", f"each tag must be a non-empty text, got {tag!r}")
        if self.open == self.close:
            raise OptionError("think_tags", f"the opening and closing tags must differ, got {self.open!r} twice")

    @classmethod
    def parse(cls, value: str | Sequence[str] | ThinkTags) -> ThinkTags:
        """Tags from ``"OPEN,CLOSE"`` (the CLI's ``--think-tags``), a pair of texts, or tags; ``OptionError``
        naming ``think_tags`` for one tag, three, an empty one or the same one twice."""
        if isinstance(value, ThinkTags):
            return value
        if isinstance(value, str):
            parts: Sequence[object] = value.split(",")
            shown = repr(value)
        elif isinstance(value, list | tuple):
            parts, shown = value, repr(list(value))
        else:
            raise OptionError("think_tags", f"must be 'OPEN,CLOSE' or a pair of tags, got {value!r}")
        if len(parts) != 2:
            raise OptionError("think_tags", f"takes two tags, OPEN,CLOSE (e.g. <think>,</think>), got {shown}")
        opening, closing = parts
        if not isinstance(opening, str) or not isinstance(closing, str):
            raise OptionError("think_tags", f"tags must be texts, got {shown}")
        return cls(opening.strip(), closing.strip())

    def to_list(self) -> list[str]:
        return [self.open, self.close]


@dataclass(frozen=True)
class Segments:
    """A completion split into its thinking and its answer (``split_completion``).

    Attributes:
        thinking: the text before the closing tag, without an opening tag at its start (the whole completion
            when the thinking never closed).
        answer: the text after the closing tag ("" when the thinking never closed).
        closed: whether the closing tag appears.
        answer_start: where the answer begins in the completion's text (its length when never closed).
    """

    thinking: str
    answer: str
    closed: bool
    answer_start: int


def split_completion(text: str, tags: ThinkTags) -> Segments:
    """Split ``text`` into thinking and answer at the first closing tag (see the module's rules)."""
    stripped = text.lstrip()
    start = len(text) - len(stripped) + len(tags.open) if stripped.startswith(tags.open) else 0
    end = text.find(tags.close, start)
    if end < 0:
        return Segments(thinking=text[start:], answer="", closed=False, answer_start=len(text))
    answer_start = end + len(tags.close)
    return Segments(thinking=text[start:end], answer=text[answer_start:], closed=True, answer_start=answer_start)


def joined_completion(thinking: str | None, answer: str | None, tags: ThinkTags, closed: bool) -> str:
    """The stored text of a completion whose thinking came apart from its answer (a server's
    ``reasoning_content``): ``OPEN + thinking + CLOSE + answer``, without the closing tag when the thinking never
    closed. ``split_completion`` gives the two back."""
    if not closed:
        return tags.open + (thinking or "")
    return tags.open + (thinking or "") + tags.close + (answer or "")


def thinking_token_count(
    token_ids: Sequence[int],
    decode: Callable[[Sequence[int]], str],
    tags: ThinkTags,
    close_token_id: int | None = None,
) -> int | None:
    """How many of ``token_ids`` are thinking: those up to and including the token that completes the first
    closing tag; None when the tokens never close the thinking.

    ``close_token_id``: the closing tag's id when the tag is one token of its own (a special token, as in Qwen3
    or DeepSeek-R1): found by id, without decoding. Otherwise the tag is several ordinary tokens, tokenised
    differently next to different text, so it is found in the decoded text: a binary search over prefixes,
    ``O(log n)`` calls of ``decode(ids)`` (a tokenizer's ``decode``).
    """
    if close_token_id is not None:
        ids = list(token_ids)
        return ids.index(close_token_id) + 1 if close_token_id in ids else None
    if tags.close not in decode(token_ids):
        return None
    low, high = 1, len(token_ids)  # the shortest prefix whose text holds the tag lies in [low, high]
    while low < high:
        middle = (low + high) // 2
        if tags.close in decode(token_ids[:middle]):
            high = middle
        else:
            low = middle + 1
    return low
