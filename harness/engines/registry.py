"""Engines by name: the built-in ones, or any ``Engine`` subclass named ``package.module:ClassName``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.core.classes import resolve_subclass
from harness.engines.base import Engine
from harness.engines.models import ModelRef

# name -> "module:Class"; imported on first use, so naming an engine never imports another one's dependencies.
BUILTIN_ENGINES: dict[str, str] = {
    "vllm": "harness.engines.vllm_engine:VLLMEngine",
    "openai": "harness.engines.openai_engine:OpenAIEngine",
}


def engine_class(kind: str) -> type[Engine]:
    """The engine class ``kind`` names: a built-in name (``BUILTIN_ENGINES``) or ``module:Class``.

    Raises ``OptionError("engine", ...)`` when it cannot be imported or is not an ``Engine`` subclass.
    """
    described = "harness.engines.Engine (subclass it and implement generate, describe and close)"
    return resolve_subclass(kind, BUILTIN_ENGINES, "engine", Engine, described)


def build_engine(kind: str, model: ModelRef, engine_options: Mapping[str, Any], session_seed: int) -> Engine:
    """Start an engine: ``Class(model.path, **engine_options)`` once its options are checked
    (``Engine.check_options``), plus ``seed=session_seed`` where the class declares ``takes_session_seed`` (one
    engine-wide random stream, which must differ between the sampling sessions of a run)."""
    cls = engine_class(kind)
    cls.check_options(engine_options, "engine_options", f"engine {kind!r}")
    options = dict(engine_options)
    if cls.takes_session_seed:
        options["seed"] = session_seed
    build: Callable[..., Engine] = cls  # a subclass's constructor takes the model and its options
    return build(model.path, **options)
