"""Correctness checkers and selectors. ``load_verifier`` builds a checker by name or ``module:Class``."""

from __future__ import annotations

from typing import Any

from harness.core.classes import resolve_class
from harness.core.errors import VerifierError
from verifiers.base import Verdict, Verifier

# name -> "module:Class"; imported lazily (math-verify and the sandbox are not needed to list commands).
BUILTIN_VERIFIERS: dict[str, str] = {
    "numeric": "verifiers.numeric:NumericVerifier",
    "math": "verifiers.math:MathVerifier",
    "python-tests": "verifiers.code:PythonTestsVerifier",
    "exact": "verifiers.exact:ExactMatchVerifier",
    "choice": "verifiers.choice:ChoiceVerifier",
}


def load_verifier(name: str, **options: Any) -> Verifier:
    """Build a verifier: a built-in name (see ``BUILTIN_VERIFIERS``) or ``module:Class``."""
    cls = resolve_class(name, BUILTIN_VERIFIERS, "verifier")
    try:
        return cls(**options)
    except TypeError as error:
        raise VerifierError(f"verifier {name!r} does not accept these options {sorted(options)}: {error}") from None


__all__ = ["BUILTIN_VERIFIERS", "Verdict", "Verifier", "load_verifier"]
