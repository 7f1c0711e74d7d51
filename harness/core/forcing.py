"""Budget forcing (s1, Muennighoff et al. 2025): a reasoning model's thinking capped at a token budget, and
extended when it stops too early.

* ``thinking_budget`` B: a sample whose thinking does not close on its own within B generated tokens (it reaches
  B, or ends without the closing tag) gets the closing tag and an answer cue appended, and continues for at
  most ``answer_tokens`` A tokens: every budget-forced sample has an answer segment.
* ``min_thinking`` M: a sample that closes its thinking before M thinking tokens has the closing tag replaced by
  ``wait_word`` (``Wait``) and thinks on.

This module holds the settings and their checks (``BudgetForcing``, ``check_budget_forcing``, ``check_budgets``
for a sweep's list of budgets) and the text the forcing appends (``forced_thinking``), shared by the engines
(which force at sampling time), the sweep (which forces stored traces at several budgets) and the analysis.
It imports nothing of ttc but the core.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.core.errors import OptionError, check_number
from harness.core.reasoning import ThinkTags

DEFAULT_ANSWER_CUE = "\n\nFinal answer:"
DEFAULT_ANSWER_TOKENS = 512
DEFAULT_WAIT_WORD = "Wait"


def _whole(option: str, value: object) -> int:
    """``value`` as an int if it is a whole number (``2048`` or ``2048.0``), else ``OptionError(option, ...)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise OptionError(option, f"must be a whole number of tokens, got {value!r}")
    return int(float(value))


def check_budgets(budgets: Sequence[Any], option: str = "budgets") -> list[int]:
    """Thinking budgets as ints: at least one, each a whole number >= 1, strictly increasing (so none repeats).
    Raises ``OptionError(option, ...)`` naming the first that is not."""
    if isinstance(budgets, str | bytes) or not isinstance(budgets, Sequence) or not budgets:
        raise OptionError(option, "must be a non-empty list of thinking budgets (tokens)")
    values = []
    for value in budgets:
        if isinstance(value, Sequence):
            raise OptionError(option, "must be a non-empty list of thinking budgets (tokens)")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
            raise OptionError(option, f"must be whole numbers of tokens, got {value!r}")
        whole = int(float(value))
        if whole < 1:
            raise OptionError(option, f"each budget must be at least 1 token, got {value:g}")
        values.append(whole)
    for previous, value in itertools.pairwise(values):
        if value == previous:
            raise OptionError(option, f"budget {value} is repeated; give each budget once")
        if value < previous:
            raise OptionError(option, f"must be increasing, got {value} after {previous}")
    return values


def check_budget_forcing(thinking_budget: int | None, answer_tokens: int, min_thinking: int | None = None) -> None:
    """Budget forcing's settings (s1): thinking capped at ``thinking_budget`` tokens, then at most
    ``answer_tokens`` for the forced answer; ``min_thinking`` extends a thought closed too early. Raises
    ``OptionError`` naming the setting: B or A below 1, M below 0 or above B."""
    for option, value in (("thinking_budget", thinking_budget), ("answer_tokens", answer_tokens)):
        if value is not None:
            check_number(option, value, at_least=1)
            _whole(option, value)
    if min_thinking is not None:
        check_number("min_thinking", min_thinking, at_least=0)
        _whole("min_thinking", min_thinking)
        if thinking_budget is not None and min_thinking > thinking_budget:
            raise OptionError(
                "min_thinking", f"must be at most the thinking budget ({thinking_budget}), got {min_thinking}"
            )


@dataclass(frozen=True)
class BudgetForcing:
    """How samples are budget-forced (see the module's rules); checked when made.

    Attributes:
        thinking_budget: most generated thinking tokens (None: no cap).
        answer_tokens: most tokens of a forced answer.
        answer_cue: text put after the closing tag of a forced sample, before its answer.
        min_thinking: fewest thinking tokens before the thinking may close (None: no floor).
        wait_word: what replaces the closing tag of a thought closed before ``min_thinking``.
    """

    thinking_budget: int | None = None
    answer_tokens: int = DEFAULT_ANSWER_TOKENS
    answer_cue: str = DEFAULT_ANSWER_CUE
    min_thinking: int | None = None
    wait_word: str = DEFAULT_WAIT_WORD

    def __post_init__(self) -> None:
        check_budget_forcing(self.thinking_budget, self.answer_tokens, self.min_thinking)
        for option in ("answer_cue", "wait_word"):
            if not isinstance(getattr(self, option), str):
                raise OptionError(option, f"must be a text, got {getattr(self, option)!r}")
        if not self.wait_word.strip():
            raise OptionError("wait_word", "must hold a word (it replaces the closing tag and the model thinks on)")

    @property
    def active(self) -> bool:
        """Whether anything is forced: a budget or a minimum."""
        return self.thinking_budget is not None or bool(self.min_thinking)

    def record(self) -> dict[str, Any]:
        """What enters the configuration hash (``sample_defining.budget_forcing``): the settings in force (the
        answer's settings only with a budget, the wait word only with a minimum)."""
        fields = asdict(self)
        if self.thinking_budget is None:
            for name in ("thinking_budget", "answer_tokens", "answer_cue"):
                del fields[name]
        if not self.min_thinking:
            del fields["min_thinking"], fields["wait_word"]
        return fields

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> BudgetForcing:
        """The settings a run was sampled with, from its ``sample_defining.budget_forcing`` (None: none)."""
        return cls(**(record or {}))


def without_partial_tag(text: str, tag: str) -> str:
    """``text`` without a beginning of ``tag`` at its end (a thought cut while it wrote its closing tag)."""
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:length]):
            return text[:-length]
    return text


def forced_thinking(thinking: str, tags: ThinkTags, answer_cue: str) -> str:
    """What a forced sample's text holds before its answer: its thinking as cut (without a half-written
    closing tag), the closing tag, the answer cue."""
    return without_partial_tag(thinking, tags.close) + tags.close + answer_cue
