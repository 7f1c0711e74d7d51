"""What a verifier is: a judge of completions against a problem's reference.

Verifiers are pure functions of (reference, completions): they know nothing of engines or run directories.
They judge all completions of one problem in one call, so that work shared between samples (an answer that
many samples give, a test harness) is done once per problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from harness.core.errors import VerifierError

# Reasons a verdict may carry. Verifiers use these where they apply and may add precise ones of their own.
CORRECT = "correct"
WRONG = "wrong"
NO_ANSWER = "no_answer"
# A reasoning model's completion whose thinking never closed (no closing think tag): never correct, whatever
# its thinking holds. The verify step gives it, before any verifier sees the completion.
TRUNCATED_THINKING = "truncated_thinking"
PARSE_ERROR = "parse_error"
TIMEOUT = "timeout"
SYNTAX_ERROR = "syntax_error"
EXCEPTION = "exception"
ASSERTION = "assertion"
EXITED = "exited_early"
MEMORY = "memory_limit"


@dataclass(frozen=True)
class Verdict:
    """The judgement of one completion.

    Attributes:
        correct: whether the completion solves the problem.
        reason: why, one of the reason constants above (``"correct"`` when correct).
        answer: the final answer extracted from the completion, normalised so that equal answers compare
            equal (what majority vote counts); None when no answer was found or the task has none (code).
        detail: a short human-readable note (an exception message, a timeout), kept for reports.
    """

    correct: bool
    reason: str
    answer: str | None = None
    detail: str = ""


class Verifier(Protocol):
    """Judges the completions of one problem. Implementations must be picklable (they run in worker processes)."""

    name: str

    def verify(self, reference: Mapping[str, Any], completions: Sequence[str]) -> list[Verdict]:
        """One verdict per completion, in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """Name and settings, recorded with the verdicts so a stale verdict set is never mixed with a new one."""
        ...


class ChecksReferences(Protocol):
    """A verifier that can tell, before anything is sampled, whether it can judge against a reference.

    ``check_reference(reference)`` raises ``VerifierError`` saying what is wrong with it (a field missing, of
    the wrong kind, empty, an answer that is not a number): the harness calls it on every problem when a run
    starts (and before ``ttc verify``), and names the problem's file and line. Optional: a verifier without it
    meets a bad reference when it judges.
    """

    def check_reference(self, reference: Mapping[str, Any]) -> None: ...


def reference_answer(reference: Mapping[str, Any], verifier: str) -> str | int | float:
    """``reference["answer"]`` for a verifier (named ``verifier`` in errors) that judges against one answer:
    present, a string or a number (not a bool), not empty; else a ``VerifierError`` saying which."""
    if "answer" not in reference:
        raise VerifierError(f"the {verifier} verifier needs reference['answer']; the reference has {sorted(reference)}")
    answer = reference["answer"]
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise VerifierError(f"reference['answer'] must be a string or number, got {answer!r}")
    if not str(answer).strip():
        raise VerifierError("reference['answer'] is empty")
    return answer
