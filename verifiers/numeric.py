"""Numeric answers (GSM8K and any task whose answer is a number).

Extraction: the number after the last ``####`` (GSM8K's answer format, which few-shot prompts teach), else
the last number in the completion. Numbers are compared exactly as rationals after removing thousands
separators, currency signs and units ("$1,234.50" == "1234.5"); fractions "3/4" are understood.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from harness.core.errors import VerifierError
from verifiers.base import CORRECT, NO_ANSWER, WRONG, Verdict, reference_answer

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d[\d,]*)?|-?\.\d+")
_MARKER = "####"


def extract_number(text: str) -> str | None:
    """The completion's final numeric answer as written, or None."""
    if _MARKER in text:
        tail = text.rsplit(_MARKER, 1)[1]
        match = _NUMBER.search(tail)
        if match:
            return match.group(0)
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def to_fraction(number: str) -> Fraction | None:
    """Parse "1,234.50", "-3/4", ".5" exactly; None if it is not a number."""
    cleaned = number.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None


def normalise(number: str) -> str | None:
    """Canonical text of a number (what majority vote counts): "1,234.50" -> "1234.5", "6/4" -> "3/2"."""
    value = to_fraction(number)
    if value is None:
        return None
    if value.denominator == 1:
        return str(value.numerator)
    decimal = float(value)
    return repr(decimal) if Fraction(repr(decimal)) == value else f"{value.numerator}/{value.denominator}"


class NumericVerifier:
    """Judges completions whose answer is a number, against ``reference["answer"]``."""

    name = "numeric"

    def check_reference(self, reference: Mapping[str, Any]) -> None:
        """A number, as a string or a JSON number, in ``reference["answer"]``."""
        _gold(reference)

    def verify(self, reference: Mapping[str, Any], completions: Sequence[str]) -> list[Verdict]:
        gold = _gold(reference)
        verdicts = []
        for completion in completions:
            raw = extract_number(completion)
            answer = normalise(raw) if raw is not None else None
            if answer is None:
                verdicts.append(Verdict(False, NO_ANSWER))
            elif to_fraction(answer) == gold:
                verdicts.append(Verdict(True, CORRECT, answer))
            else:
                verdicts.append(Verdict(False, WRONG, answer))
        return verdicts

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "extraction": "after-####-else-last-number", "comparison": "exact-rational"}


def _gold(reference: Mapping[str, Any]) -> Fraction:
    answer = reference_answer(reference, "numeric")
    gold = to_fraction(str(answer))
    if gold is None:
        raise VerifierError(f"reference['answer'] {answer!r} is not a number")
    return gold
