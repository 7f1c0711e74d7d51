"""Errors that every layer may raise, and the CLI renders.

Library code names the problem in the Python API's terms (a parameter name, a file and line), never a CLI
flag: ``OptionError("max_tokens", "must be at least 1, got 0")``. The CLI turns ``option`` into its flag
(``--max-tokens``) when it reports the error.
"""

from __future__ import annotations

import math
import numbers


class OptionError(ValueError):
    """A bad value of a named option: ``option`` is the Python parameter name (``max_tokens``)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.message = message
        super().__init__(f"{option}: {message}")


def check_number(
    option: str,
    value: float | None,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> None:
    """Raise ``OptionError(option, ...)`` unless ``value`` is a finite number in the range given (None passes:
    an option left unset). ``above``/``below`` are strict bounds, ``at_least``/``at_most`` inclusive."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionError(option, f"must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise OptionError(option, f"must be a finite number, got {value}")
    if above is not None and below is not None and not above < value < below:
        raise OptionError(option, f"must lie in ({_shown(above)}, {_shown(below)}), got {value}")
    if above is not None and not value > above:
        bound = "positive" if above == 0 else f"above {_shown(above)}"
        raise OptionError(option, f"must be {bound}, got {value}")
    if at_least is not None and not value >= at_least:
        raise OptionError(option, f"must be at least {_shown(at_least)}, got {value}")
    if below is not None and not value < below:
        raise OptionError(option, f"must be below {_shown(below)}, got {value}")
    if at_most is not None and not value <= at_most:
        raise OptionError(option, f"must be at most {_shown(at_most)}, got {value}")


def _shown(bound: float) -> str:
    return f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"
