"""ttc's errors: one root, ``TTCError``, for everything a user can fix; the CLI prints it as one line.

Library code names the problem in the Python API's terms (a parameter name, a file and line), never a CLI
flag: ``OptionError("max_tokens", "must be at least 1, got 0")``. The CLI turns ``option`` into its flag
(``--max-tokens``) when it reports the error. Any other exception is a bug in ttc, and keeps its traceback.

Each class also derives from the built-in exception that code caught before the hierarchy existed
(``ValueError`` for bad input, ``RuntimeError`` for a resource that gave up), so ``except ValueError`` around a
call still works.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


class TTCError(Exception):
    """The root: an error in what ttc was given (an option, a file, a run directory, a server), not in ttc."""


class OptionError(TTCError, ValueError):
    """A bad value of a named option: ``option`` is the Python parameter name (``max_tokens``)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.message = message
        super().__init__(f"{option}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # pickled by worker processes and Ray
        return type(self), (self.option, self.message)


class DataError(TTCError, ValueError):
    """An input file or record that is not what it should be (malformed JSON, a missing field, a bad count); the
    message names the file and line, or the record."""


class TaskError(TTCError, ValueError):
    """A task cannot be built or cannot load its problems as asked (options, data, prompt templates)."""


class VerifierError(TTCError, ValueError):
    """A verifier cannot be built as asked, or is given a reference it cannot judge."""


class RunStoreError(TTCError, RuntimeError):
    """A run directory cannot be used as asked (wrong configuration, locked, not a run, damaged, ...)."""


class EngineError(TTCError, RuntimeError):
    """An engine cannot start, or gave up (a server that refuses, replicas that all failed, a model that cannot
    be loaded or converted)."""


class SandboxError(TTCError, RuntimeError):
    """The code sandbox itself failed (not the program it ran): a verdict cannot be given."""


class ReentryError(TTCError, RuntimeError):
    """A step of the Python API was called by a worker process that ttc started, while it imported the calling
    script (multiprocessing's spawn re-imports the main module): the script lacks ``if __name__ == "__main__":``."""


def check_number(
    option: str,
    value: float | None,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    integer: bool = False,
) -> None:
    """Raise ``OptionError(option, ...)`` unless ``value`` is a finite number in the range given (None passes:
    an option left unset). ``above``/``below`` are strict bounds, ``at_least``/``at_most`` inclusive;
    ``integer`` asks for a whole number of type ``int`` (a float such as 2.0 is refused, so is ``True``)."""
    if value is None:
        return
    if integer and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise OptionError(option, f"must be an integer, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionError(option, f"must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise OptionError(option, f"must be a finite number, got {value}")
    lower = ("(", above) if above is not None else ("[", at_least)
    upper = (")", below) if below is not None else ("]", at_most)
    inside = (above is None or value > above) and (at_least is None or value >= at_least)
    inside = inside and (below is None or value < below) and (at_most is None or value <= at_most)
    if inside:
        return
    if lower[1] is not None and upper[1] is not None:  # bounded on both sides: the interval
        interval = f"{lower[0]}{_shown(lower[1])}, {_shown(upper[1])}{upper[0]}"
        raise OptionError(option, f"must lie in {interval}, got {value}")
    if above is not None:
        raise OptionError(option, f"must be {'positive' if above == 0 else f'above {_shown(above)}'}, got {value}")
    if at_least is not None:
        raise OptionError(option, f"must be at least {_shown(at_least)}, got {value}")
    if below is not None:
        raise OptionError(option, f"must be below {_shown(below)}, got {value}")
    raise OptionError(option, f"must be at most {_shown(at_most)}, got {value}")


def check_choice(option: str, value: object, choices: Iterable[object]) -> None:
    """Raise ``OptionError(option, ...)`` unless ``value`` is one of ``choices`` (listed in the message)."""
    allowed = list(choices)
    if value not in allowed:
        raise OptionError(option, f"must be one of {', '.join(map(str, allowed))}, got {value!r}")


def _shown(bound: float) -> str:
    return f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"
