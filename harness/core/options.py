"""Typed options: what a parameter accepts is read from its type annotation.

Two kinds of option use it:

* **Options dataclasses** (``SampleOptions``, ``SamplingSettings``, ``ScaleOut``, ...) call ``check_fields(self)``
  first in ``__post_init__``: a value of the wrong type (a string for ``samples``, ``None`` for ``top_p``, a list
  for ``task_options``) is an ``OptionError`` naming the field, before any range check (``check_number``).
* **Engines and tasks** declare their options as their constructor's keyword parameters, as scikit-learn's
  estimators declare theirs: the name, the annotation (the type) and the default. ``DeclaresOptions`` reads
  them (``declared_options()``), checks options given as values (``check_options``, from the Python API) or
  as ``KEY=VALUE`` text (``parse_options``, from the CLI's ``--engine-option`` and ``--task-option``), and
  calls the class's own ``validate_options`` for what a type cannot say (ranges, combinations).

The annotations read are those an option can have: ``int``, ``float``, ``bool``, ``str``, ``Path``, ``None``,
unions of them, ``Literal[...]``, sequences and mappings of them; anything else is not checked. An ``int`` is
no ``float``'s stand-in the other way round: ``samples=2.0`` is refused, ``temperature=1`` is taken.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import json
import numbers
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from harness.core.errors import OptionError

_SEQUENCES = (list, tuple, collections.abc.Sequence)
_MAPPINGS = (dict, collections.abc.Mapping)
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null")


def _members(annotation: Any) -> tuple[Any, ...]:
    """The members of a union (``int | None`` -> ``(int, NoneType)``), or the annotation alone."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` is of the type ``annotation`` states (annotations it cannot read accept anything)."""
    if annotation in (Any, inspect.Parameter.empty):
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(accepts(member, value) for member in typing.get_args(annotation))
    if origin is typing.Literal:
        return any(type(value) is type(choice) and value == choice for choice in typing.get_args(annotation))
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if annotation in (Path, os.PathLike):
        return isinstance(value, (str, os.PathLike))
    if typing.is_typeddict(annotation):  # its keys are not checked here
        return isinstance(value, Mapping)
    container, arguments = origin or annotation, typing.get_args(annotation)
    if container in _MAPPINGS:
        if not isinstance(value, Mapping):
            return False
        key_type, value_type = arguments or (Any, Any)
        return all(accepts(key_type, key) and accepts(value_type, item) for key, item in value.items())
    if container in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        item_type = arguments[0] if arguments else Any
        return all(accepts(item_type, item) for item in value)
    if isinstance(container, type):
        return isinstance(value, container)
    return True


def describe(annotation: Any) -> str:
    """The type in words, for messages: ``an integer or None``, ``a list of strings``."""
    members = _members(annotation)
    if len(members) > 1:
        return " or ".join(describe(member) for member in members)
    if annotation is None or annotation is type(None):
        return "None"
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(annotation))
    named = {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path"}
    if annotation in named:
        return named[annotation]
    container, arguments = typing.get_origin(annotation) or annotation, typing.get_args(annotation)
    if container in _SEQUENCES:
        plural = {"a string": "strings", "an integer": "integers", "a number": "numbers"}
        item = describe(arguments[0]) if arguments else "values"
        return f"a list of {plural.get(item, item)}"
    if container in _MAPPINGS:
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))


def check_value(option: str, value: Any, annotation: Any) -> None:
    """Raise ``OptionError(option, ...)`` unless ``value`` is of the type ``annotation`` states."""
    if not accepts(annotation, value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise OptionError(option, f"must be {describe(annotation)}, got {shown}")


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def check_fields(instance: Any) -> None:
    """Check every field of a dataclass instance against its annotation (``OptionError`` naming the field)."""
    cls = type(instance)
    types_ = _FIELD_TYPES.get(cls) or _FIELD_TYPES.setdefault(cls, typing.get_type_hints(cls))
    for field in dataclasses.fields(instance):
        check_value(field.name, getattr(instance, field.name), types_.get(field.name, Any))


def parse_text(option: str, text: str, annotation: Any) -> Any:
    """The value of type ``annotation`` that ``text`` (from a command line) spells; ``OptionError`` if none.

    Numbers and booleans (true/false, yes/no, on/off, 1/0) as usual; ``none`` for None where allowed; a list
    as a JSON list or comma-separated items; a mapping as a JSON object; anything else as the text itself.
    """
    members = _members(annotation)
    if type(None) in members and text.strip().lower() in _NONE:
        return None
    for member in members:
        if member is type(None):
            continue
        try:
            value = _parse_one(text, member)
        except (ValueError, TypeError):
            continue
        if accepts(member, value):
            return value
    raise OptionError(option, f"must be {describe(annotation)}, got {text!r}")


def _parse_one(text: str, annotation: Any) -> Any:
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (Any, inspect.Parameter.empty, str):
        return text
    if annotation is bool:
        word = text.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ValueError(text)
        return word in _TRUE
    if annotation in (int, float):
        return annotation(text.strip())
    if annotation in (Path, os.PathLike):
        return text
    if origin is typing.Literal:
        matching = [choice for choice in arguments if str(choice) == text.strip()]
        if not matching:
            raise ValueError(text)
        return matching[0]
    container = origin or annotation
    if container in _SEQUENCES:
        items = json.loads(text) if text.lstrip().startswith("[") else [part.strip() for part in text.split(",")]
        item_type = arguments[0] if arguments else Any
        parsed = [item if not isinstance(item, str) else _parse_one(item, item_type) for item in items]
        return tuple(parsed) if container is tuple else parsed
    if container in _MAPPINGS:
        return json.loads(text)
    raise ValueError(f"no text form for {annotation!r}")


# ---------------------------------------------------------------------------------------------------------
# Options declared by a constructor
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DeclaredOption:
    """One keyword parameter of a constructor: its name, type (``Any`` when unannotated and without a
    default) and default (``inspect.Parameter.empty`` when it must be given)."""

    name: str
    annotation: Any
    default: Any

    def __str__(self) -> str:
        default = "" if self.default is inspect.Parameter.empty else f" = {self.default!r}"
        return f"{self.name} ({describe(self.annotation)}{default})"


class DeclaresOptions:
    """A class whose options are its constructor's keyword parameters (engines, tasks).

    ``Cls(given..., **options)``: the parameters named in ``given_by_harness`` (the model, the data, the
    session seed) are not options. A constructor that takes ``**kwargs`` also accepts options it does not
    name; they are passed as given (from the CLI: as text). Override ``validate_options`` to check values
    beyond their types; ``check_options`` calls it before any instance is made.
    """

    #: Constructor parameters the harness passes itself; they are not options.
    given_by_harness: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def declared_options(cls) -> dict[str, DeclaredOption]:
        """The options the constructor names, in its order."""
        if cls not in _DECLARED:
            _DECLARED[cls] = _declared(cls)
        return _DECLARED[cls]

    @classmethod
    def takes_any_option(cls) -> bool:
        """Whether the constructor takes ``**kwargs``: options it does not name are passed on."""
        parameters = inspect.signature(cls).parameters.values()
        return any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters)

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        """Check option values beyond their declared types (ranges, combinations): raise
        ``OptionError(name, ...)``. ``options`` holds the options given, not the defaults. Default: nothing."""

    @classmethod
    def check_options(cls, options: Mapping[str, Any], parameter: str | None = None, named: str = "") -> None:
        """Refuse options the class does not take, values not of their declared type, and what
        ``validate_options`` refuses. Errors name the option as ``parameter.name`` (``engine_options.dtype``)
        when ``parameter`` is given; ``named`` names the class in them (``engine 'vllm'``)."""
        if not isinstance(options, Mapping):
            raise OptionError(parameter or "options", f"must be a mapping of option names to values, got {options!r}")
        declared = cls.declared_options()
        qualified = functools.partial(_qualified, parameter)
        for name, value in options.items():
            if name in declared:
                check_value(qualified(name), value, declared[name].annotation)
            elif not cls.takes_any_option():
                raise OptionError(qualified(name), cls._unknown(named))
        try:
            cls.validate_options(options)
        except OptionError as error:
            raise OptionError(qualified(error.option), error.message) from None

    @classmethod
    def parse_options(cls, assignments: Iterable[str], parameter: str, named: str = "") -> dict[str, Any]:
        """``KEY=VALUE`` texts (a CLI's repeated ``--engine-option``) as options, each value of its declared
        type (options the class does not name, but accepts, keep their text). Unknown keys, bad values and
        keys given twice raise ``OptionError("parameter.KEY", ...)``."""
        declared = cls.declared_options()
        options: dict[str, Any] = {}
        for assignment in assignments:
            key, equals, text = assignment.partition("=")
            key = key.strip()
            if not equals or not key:
                raise OptionError(parameter, f"expected KEY=VALUE, got {assignment!r}")
            if key in options:
                raise OptionError(_qualified(parameter, key), "given twice")
            if key in declared:
                options[key] = parse_text(_qualified(parameter, key), text, declared[key].annotation)
            elif cls.takes_any_option():
                options[key] = text
            else:
                raise OptionError(_qualified(parameter, key), cls._unknown(named))
        return options

    @classmethod
    def _unknown(cls, named: str) -> str:
        known = ", ".join(cls.declared_options()) or "none"
        return f"{named or cls.__name__} does not accept this option; its options: {known}"


def _qualified(parameter: str | None, name: str) -> str:
    return f"{parameter}.{name}" if parameter else name


_DECLARED: dict[type, dict[str, DeclaredOption]] = {}


def _declared(cls: type) -> dict[str, DeclaredOption]:
    signature = inspect.signature(cls)
    constructor = next(base.__dict__["__init__"] for base in cls.__mro__ if "__init__" in base.__dict__)
    try:
        hints = typing.get_type_hints(constructor)
    except (NameError, TypeError, AttributeError):  # an annotation that names what is not importable here
        hints = {}
    skipped = set(getattr(cls, "given_by_harness", ()))
    declared = {}
    for name, parameter in signature.parameters.items():
        if name in skipped or parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, parameter.annotation)
        if annotation is inspect.Parameter.empty and parameter.default not in (inspect.Parameter.empty, None):
            annotation = type(parameter.default)
        declared[name] = DeclaredOption(name, annotation, parameter.default)
    return declared
