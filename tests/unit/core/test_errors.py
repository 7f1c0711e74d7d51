"""One error hierarchy: every error ttc reports is a ``TTCError`` and also the built-in error callers caught
before; ``OptionError`` keeps its option and survives pickling (worker processes, Ray)."""

from __future__ import annotations

import pickle

import pytest

from harness.core import errors
from harness.core.errors import (
    DataError,
    EngineError,
    OptionError,
    RunStoreError,
    SandboxError,
    TaskError,
    TTCError,
    VerifierError,
    check_number,
)
from harness.engines.openai_engine import OpenAIEngineError


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (OptionError("k", "must be at least 1"), ValueError),
        (DataError("x.jsonl:3: not valid JSON"), ValueError),
        (TaskError("no records"), ValueError),
        (VerifierError("no reference answer"), ValueError),
        (RunStoreError("locked"), RuntimeError),
        (EngineError("gave up"), RuntimeError),
        (OpenAIEngineError("server refused"), RuntimeError),
        (SandboxError("no isolation"), RuntimeError),
    ],
)
def test_every_error_is_a_ttc_error_and_its_builtin(error, builtin):
    assert isinstance(error, TTCError) and isinstance(error, builtin)


def test_every_error_class_of_the_core_derives_from_the_root():
    classes = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert {cls.__name__ for cls in classes} >= {"TTCError", "OptionError", "RunStoreError", "EngineError", "TaskError"}
    assert all(issubclass(cls, TTCError) for cls in classes)


def test_an_openai_engine_error_is_an_engine_error():
    assert issubclass(OpenAIEngineError, EngineError)


def test_option_error_keeps_its_option_and_message_through_pickling():
    error = pickle.loads(pickle.dumps(OptionError("max_tokens", "must be at least 1, got 0")))
    assert (error.option, error.message, str(error)) == (
        "max_tokens",
        "must be at least 1, got 0",
        "max_tokens: must be at least 1, got 0",
    )


def test_check_number_names_the_option():
    check_number("top_p", None, above=0)  # unset passes
    with pytest.raises(OptionError, match="must lie in \\(0, 1\\), got 1") as refused:
        check_number("top_p", 1, above=0, below=1)
    assert refused.value.option == "top_p"
    with pytest.raises(OptionError, match="must be a number"):
        check_number("k", "ten", at_least=1)
