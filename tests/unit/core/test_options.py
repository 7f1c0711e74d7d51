"""Typed options: values checked against annotations, command-line text parsed by them, options declared by a
constructor, and the numeric checks (``check_number``, ``check_choice``) every options class uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from harness.core.errors import OptionError, check_choice, check_number
from harness.core.options import DeclaresOptions, accepts, check_fields, describe, parse_text
from harness.core.records import SamplingSettings


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [
        (int, [0, -3, 10**12], [True, 2.0, "2", None]),
        (float, [0.5, 1, -2], [True, "0.5", None]),
        (bool, [True, False], [0, 1, "true"]),
        (str, ["x", ""], [1, None, b"x"]),
        (Path, ["a/b", Path("a")], [5, None]),
        (int | None, [None, 3], [3.0, "3"]),
        (Sequence[str], [["a"], ("a", "b"), []], ["ab", [1], None]),
        (Mapping[str, Any], [{}, {"a": [1]}], [[("a", 1)], None, "a"]),
        (dict[str, int], [{"a": 1}], [{"a": "1"}, {1: 1}]),
        (Literal["a", "b"], ["a", "b"], ["c", None]),
    ],
)
def test_accepts_what_the_annotation_states(annotation, good, bad):
    assert all(accepts(annotation, value) for value in good), good
    assert not any(accepts(annotation, value) for value in bad), bad


def test_types_in_words():
    assert describe(int | None) == "an integer or None"
    assert describe(Sequence[str]) == "a list of strings"
    assert describe(Literal["a", "b"]) == "one of 'a', 'b'"
    assert describe(float) == "a number" and describe(bool) == "true or false"


@pytest.mark.parametrize(
    ("text", "annotation", "value"),
    [
        ("4", int, 4),
        ("0.5", float, 0.5),
        ("4", float, 4.0),
        ("yes", bool, True),
        ("off", bool, False),
        ("none", int | None, None),
        ("4096", int | None, 4096),
        ("a, b", Sequence[str], ["a", "b"]),
        ('["a,b", "c"]', list[str], ["a,b", "c"]),
        ('{"k": 1}', dict[str, Any], {"k": 1}),
        ("chat", str, "chat"),
        ("none", str, "none"),  # a string option takes the text as it is
        ("b", Literal["a", "b"], "b"),
    ],
)
def test_command_line_text_is_read_as_the_declared_type(text, annotation, value):
    assert parse_text("opt", text, annotation) == value


@pytest.mark.parametrize(
    ("text", "annotation", "message"),
    [
        ("4.5", int, "must be an integer, got '4.5'"),
        ("maybe", bool, "must be true or false, got 'maybe'"),
        ("none", int, "must be an integer, got 'none'"),
        ("c", Literal["a", "b"], "must be one of 'a', 'b', got 'c'"),
        ("{", dict[str, Any], "must be a mapping, got '{'"),
    ],
)
def test_text_that_is_not_of_the_type_is_refused_by_name(text, annotation, message):
    with pytest.raises(OptionError, match=f"^opt: {message}$".replace("(", r"\(").replace(")", r"\)")) as refused:
        parse_text("opt", text, annotation)
    assert refused.value.option == "opt"


@dataclass
class Knobs:
    count: int = 1
    rate: float | None = None
    names: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)


def test_an_options_dataclass_refuses_a_field_of_another_type_by_name():
    Knobs(count=3, rate=1, names=["a"], extra={"k": 1})
    for fields, name in [
        ({"count": "3"}, "count"),
        ({"count": 3.0}, "count"),
        ({"rate": "fast"}, "rate"),
        ({"names": "ab"}, "names"),
        ({"extra": ["k"]}, "extra"),
    ]:
        with pytest.raises(OptionError) as refused:
            Knobs(**fields)
        assert refused.value.option == name


def test_sampling_settings_check_themselves():
    assert SamplingSettings(stop=["a"]).stop == ("a",)  # kept as the tuple it hashes as
    for fields, name, message in [
        ({"temperature": -0.1}, "temperature", "must be at least 0, got -0.1"),
        ({"top_p": 0.0}, "top_p", "must lie in (0, 1], got 0.0"),
        ({"top_p": None}, "top_p", "must be a number, got None"),
        ({"top_k": 0}, "top_k", "must be -1 (off) or at least 1, got 0"),
        ({"max_tokens": 0}, "max_tokens", "must be at least 1, got 0"),
        ({"seed": "0"}, "seed", "must be an integer, got '0'"),
        ({"stop": "\n"}, "stop", "must be a list of strings, got '\\n'"),
    ]:
        with pytest.raises(OptionError) as refused:
            SamplingSettings(**fields)
        assert (refused.value.option, refused.value.message) == (name, message)


def test_check_number_integers_intervals_and_choices():
    check_number("n", 3, at_least=1, integer=True)
    with pytest.raises(OptionError, match=r"must be an integer, got 3\.0"):
        check_number("n", 3.0, at_least=1, integer=True)
    with pytest.raises(OptionError, match="must be an integer, got True"):
        check_number("n", True, integer=True)
    with pytest.raises(OptionError, match=r"must lie in \(0, 1\], got 2"):
        check_number("share", 2, above=0, at_most=1)
    with pytest.raises(OptionError, match=r"must lie in \[0, 1\), got 1"):
        check_number("prior", 1, at_least=0, below=1)
    with pytest.raises(OptionError, match="must be positive, got 0"):
        check_number("rate", 0, above=0)
    check_choice("kind", "orm", ("orm", "prm"))
    with pytest.raises(OptionError, match="must be one of orm, prm, got 'grm'") as refused:
        check_choice("kind", "grm", ("orm", "prm"))
    assert refused.value.option == "kind"


class Backend(DeclaresOptions):
    given_by_harness = ("model", "seed")

    def __init__(self, model: str, *, size: int = 4, share: float | None = None, mode: str = "a", seed: int = 0):
        pass

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        check_number("size", options.get("size"), at_least=1)


class OpenBackend(Backend):
    def __init__(self, model: str, *, size: int = 4, **options: Any) -> None:
        pass


def test_a_constructor_declares_the_options_and_the_class_checks_them():
    declared = Backend.declared_options()
    assert list(declared) == ["size", "share", "mode"]  # model and seed are the harness's to give
    assert (declared["size"].annotation, declared["size"].default) == (int, 4)
    assert str(declared["share"]) == "share (a number or None = None)"
    assert not Backend.takes_any_option() and OpenBackend.takes_any_option()

    assert Backend.parse_options(["size=8", "share=0.5", "mode=b"], "engine_options") == {
        "size": 8,
        "share": 0.5,
        "mode": "b",
    }
    assert OpenBackend.parse_options(["size=2", "colour=red"], "engine_options") == {"size": 2, "colour": "red"}
    Backend.check_options({"size": 2, "share": None}, "engine_options")
    OpenBackend.check_options({"anything": object()}, "engine_options")
    for options, option, message in [
        ({"size": "8"}, "engine_options.size", "must be an integer, got '8'"),
        ({"size": 0}, "engine_options.size", "must be at least 1, got 0"),
        ({"colour": "red"}, "engine_options.colour", "engine 'x' does not accept this option; its options: size, "),
    ]:
        with pytest.raises(OptionError) as refused:
            Backend.check_options(options, "engine_options", "engine 'x'")
        assert refused.value.option == option and refused.value.message.startswith(message)
    with pytest.raises(OptionError) as refused:
        OpenBackend.check_options({"size": 0}, "engine_options")
    assert refused.value.option == "engine_options.size", "a class that takes any option still checks its own"
    with pytest.raises(OptionError) as refused:
        Backend.check_options(["size"], "engine_options")
    assert refused.value.option == "engine_options"
    for texts, option in [(["size"], "engine_options"), (["size=1", "size=2"], "engine_options.size")]:
        with pytest.raises(OptionError) as refused:
            Backend.parse_options(texts, "engine_options")
        assert refused.value.option == option
