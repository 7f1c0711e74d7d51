"""``module:Class`` lookup: how tasks, verifiers and engines of your own are named."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Mapping
from typing import Any

from harness.core.errors import OptionError


def resolve_class(spec: str, builtins: Mapping[str, str], kind: str) -> Any:
    """Import ``builtins[spec]``, or ``spec`` itself when it has the form ``package.module:ClassName``.

    Raises ``OptionError(kind, ...)`` for an unknown name, a module that cannot be imported, or a missing class.
    """
    return _import(spec, builtins, kind)


def resolve_subclass(spec: str, builtins: Mapping[str, str], kind: str, base: type, base_described: str) -> Any:
    """``resolve_class``, refused unless what ``spec`` names is a subclass of ``base``: ``OptionError(kind,
    "<spec> is <what it is>, not a subclass of <base_described>")``."""
    found = _import(spec, builtins, kind)
    if not (inspect.isclass(found) and issubclass(found, base)):
        raise OptionError(kind, f"{spec} is {_what_it_is(found)}, not a subclass of {base_described}")
    return found


def _what_it_is(value: Any) -> str:
    if inspect.isclass(value):
        return f"the class {value.__module__}.{value.__qualname__}"
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return f"the function {value.__module__}.{value.__qualname__}"
    if inspect.ismodule(value):
        return f"the module {value.__name__}"
    return f"a {type(value).__name__} object"


def _import(spec: str, builtins: Mapping[str, str], kind: str) -> Any:
    target = builtins.get(spec, spec)
    if ":" not in target:
        raise OptionError(kind, f"unknown {kind} {spec!r}; built-in: {', '.join(sorted(builtins))}, or module:Class")
    module_name, _, class_name = target.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # as `python -m` does: your module beside you imports from the `ttc` script too
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise OptionError(kind, f"cannot import {kind} module {module_name!r}: {error}") from error
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise OptionError(kind, f"module {module_name!r} has no {kind} class {class_name!r}") from None
