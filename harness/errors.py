"""Errors that every layer may raise, and the CLI renders.

Library code names the problem in the Python API's terms (a parameter name, a file and line), never a CLI
flag: ``OptionError("max_tokens", "must be at least 1, got 0")``. The CLI turns ``option`` into its flag
(``--max-tokens``) when it reports the error.
"""

from __future__ import annotations


class OptionError(ValueError):
    """A bad value of a named option: ``option`` is the Python parameter name (``max_tokens``)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.message = message
        super().__init__(f"{option}: {message}")
