"""Every reference checked by the verifier that will judge against it, before anything is sampled or judged.

A task checks its records when it loads them (fields present, of their kinds, not empty); whether a reference
is one the verifier can judge against (a number for ``numeric``, test code for ``python-tests``) is the
verifier's to say (``verifiers.base.ChecksReferences``). Tasks and verifiers know nothing of each other, so the
pipeline joins them here: a reference the verifier refuses is one error naming the problem's file and line,
before any engine starts, instead of a failure after the whole sampling budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.core.errors import VerifierError
from harness.core.records import Problem
from verifiers.base import Verifier


def check_references(
    verifier: Verifier,
    problems: Sequence[Problem],
    source: str | Callable[[int, Problem], str],
    named: str,
) -> None:
    """Refuse the first problem whose reference ``verifier`` (called ``named`` in the message) cannot judge
    against. ``source`` says where a problem comes from: a file whose line N holds problem N (a run's
    problems.jsonl), or a function of (position, problem) giving it (a task's ``source_of``)."""
    check = getattr(verifier, "check_reference", None)
    if check is None:
        return
    for position, problem in enumerate(problems):
        try:
            check(problem.reference)
        except VerifierError as error:
            where = source(position, problem) if callable(source) else f"{source}:{position + 1}"
            raise VerifierError(f"{where}: problem {problem.problem_id!r}: {error} (for verifier {named})") from None
