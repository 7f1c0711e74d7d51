"""``exact``: the completion's answer equals the reference string, after whitespace (and optionally case) is
normalised. For custom tasks whose answers are labels, names or fixed strings."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.core.errors import VerifierError
from verifiers.base import CORRECT, NO_ANSWER, WRONG, Verdict


class ExactMatchVerifier:
    """Compares one extracted string with the reference answer(s).

    Args:
        pattern: a regular expression locating the answer in a completion; its last match is taken (group 1
            if it has groups, else the whole match). None: the whole completion is the answer.
        ignore_case: compare case-insensitively.

    ``reference["answer"]`` is a string, or a list of acceptable strings. Both sides are stripped and their
    runs of whitespace made single spaces. ``Verdict.answer`` is the normalised extracted string.
    """

    name = "exact"

    def __init__(self, pattern: str | None = None, ignore_case: bool = False) -> None:
        try:
            self._regex = re.compile(pattern) if pattern is not None else None
        except re.error as error:
            raise VerifierError(f"invalid answer pattern {pattern!r}: {error}") from None
        self.pattern = pattern
        self.ignore_case = ignore_case

    def check_reference(self, reference: Mapping[str, Any]) -> None:
        """A non-empty string, or a non-empty list of them, in ``reference["answer"]``."""
        _reference_answers(reference)

    def verify(self, reference: Mapping[str, Any], completions: Sequence[str]) -> list[Verdict]:
        accepted = {self._normalize(answer) for answer in _reference_answers(reference)}
        verdicts = []
        for completion in completions:
            answer = self._extract(completion)
            if answer is None:
                verdicts.append(Verdict(False, NO_ANSWER, None, "no answer found"))
            elif answer in accepted:
                verdicts.append(Verdict(True, CORRECT, answer))
            else:
                verdicts.append(Verdict(False, WRONG, answer))
        return verdicts

    def _extract(self, completion: str) -> str | None:
        if self._regex is None:
            text = completion
        else:
            matches = list(self._regex.finditer(completion))
            if not matches:
                return None
            last = matches[-1]
            text = last.group(1) if self._regex.groups else last.group(0)
            text = text or ""
        return self._normalize(text) or None

    def _normalize(self, text: str) -> str:
        text = " ".join(text.split())
        return text.casefold() if self.ignore_case else text

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "pattern": self.pattern, "ignore_case": self.ignore_case}


def _reference_answers(reference: Mapping[str, Any]) -> list[str]:
    if "answer" not in reference:
        raise VerifierError(f"the exact verifier needs reference['answer']; the reference has {sorted(reference)}")
    answer = reference["answer"]
    answers = answer if isinstance(answer, list) else [answer]
    if not answers or not all(isinstance(item, str) and item.strip() for item in answers):
        raise VerifierError(
            f"reference['answer'] must be a non-empty string or a non-empty list of them, got {answer!r}"
        )
    return answers
