"""``choice``: the letter of a multiple-choice answer (the ``mcq`` task's verifier).

The letter is read from, in this order of preference (the last of each kind counts):

1. ``Answer: C`` (any case of "answer", also "The answer is C", "**Answer:** (C)", "Answer: $\\boxed{C}$");
2. ``\\boxed{C}`` (also ``\\boxed{\\text{C}}``, ``\\boxed{(C)}``);
3. ``(C)``.

With reasoning on, the verify step hands this verifier the answer segment only, so a letter written while
thinking is never the answer. ``reference["answer"]`` is the correct letter and ``reference["letters"]`` the
letters offered (``"ABCD"``); a letter outside them is wrong, not no answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.core.errors import VerifierError
from verifiers.base import CORRECT, NO_ANSWER, WRONG, Verdict

# Markup around a letter that says nothing about which letter it is: bold, math, \text{...}, brackets.
_MARKUP = re.compile(r"\*\*|__|\$|\\text(?:bf|rm)?\{|\\mathrm\{|\\textbf\{")
_STATED = re.compile(r"(?i:answer)(?:\s+(?i:is))?\s*[:：]?\s*[({\[]?\s*([A-Z])(?![A-Za-z0-9])")
_BOXED = re.compile(r"\\boxed\s*\{\s*[({\[]?\s*([A-Z])\s*[)}\]]?\s*\}")
_PARENTHESISED = re.compile(r"\(([A-Z])\)")


def extract_letter(text: str) -> str | None:
    """The choice a completion gives (see the module's order of preference), or None."""
    plain = _MARKUP.sub("", text)
    for pattern in (_STATED, _BOXED, _PARENTHESISED):
        matches = pattern.findall(plain)
        if matches:
            return str(matches[-1])
    return None


class ChoiceVerifier:
    """Judges multiple-choice completions by the letter they give."""

    name = "choice"

    def check_reference(self, reference: Mapping[str, Any]) -> None:
        """``reference["answer"]``: one letter, among ``reference["letters"]`` when they are given."""
        correct = reference.get("answer")
        letters = str(reference.get("letters") or "")
        if not isinstance(correct, str) or len(correct) != 1 or (letters and correct not in letters):
            raise VerifierError(
                f"the choice verifier needs reference['answer'], a letter among reference['letters']; got {reference}"
            )

    def verify(self, reference: Mapping[str, Any], completions: Sequence[str]) -> list[Verdict]:
        self.check_reference(reference)
        correct = reference["answer"]
        letters = str(reference.get("letters") or "")
        verdicts = []
        for completion in completions:
            letter = extract_letter(completion)
            if letter is None:
                verdicts.append(Verdict(False, NO_ANSWER, None, "no 'Answer: X', \\boxed{X} or (X)"))
            elif letter == correct:
                verdicts.append(Verdict(True, CORRECT, letter))
            else:
                detail = f"not one of the choices {letters}" if letters and letter not in letters else ""
                verdicts.append(Verdict(False, WRONG, letter, detail))
        return verdicts

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "extraction": "answer-colon, else boxed, else parenthesised letter (last of each)"}
