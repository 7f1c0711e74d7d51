"""The engine protocol's declared hooks and the registry that names engines (no real engine is started)."""

from __future__ import annotations

from typing import Any

import pytest

import harness.engines.models
from harness.core.errors import OptionError
from harness.engines import BUILTIN_ENGINES, Engine, build_engine, engine_class
from harness.engines.models import ModelRef
from harness.engines.openai_engine import OpenAIEngine
from harness.engines.vllm_engine import VLLMEngine
from tests.support.fake_engine import EngineSeededFakeEngine, FakeEngine

MODEL = ModelRef(path="/models/m", identity="m@1", name="m")


def not_an_engine(model: str) -> None:
    """A function where a class is expected."""


class Unrelated:
    """A class with an engine's methods that does not subclass Engine."""

    def generate(self, requests, settings):
        return iter(())

    def describe(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def test_builtin_names_and_module_class_resolve_to_engine_classes():
    assert set(BUILTIN_ENGINES) == {"vllm", "openai"}
    assert engine_class("vllm") is VLLMEngine and engine_class("openai") is OpenAIEngine
    assert engine_class("tests.support.fake_engine:FakeEngine") is FakeEngine


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (
            "tests.unit.engines.test_engine_registry:not_an_engine",
            "is the function tests.unit.engines.test_engine_registry.not_an_engine, not a subclass",
        ),
        (
            "tests.unit.engines.test_engine_registry:Unrelated",
            "is the class tests.unit.engines.test_engine_registry.Unrelated, not a subclass",
        ),
        (
            "tests.unit.engines.test_engine_registry:MODEL",
            "is a ModelRef object, not a subclass of harness.engines.Engine",
        ),
        ("tests.unit.engines.test_engine_registry:Absent", "has no engine class 'Absent'"),
        ("nope", "unknown engine 'nope'; built-in: openai, vllm, or module:Class"),
    ],
)
def test_what_is_not_an_engine_is_named(kind, message):
    with pytest.raises(OptionError, match=message) as error:
        engine_class(kind)
    assert error.value.option == "engine"


def test_default_hooks_resolve_a_local_model_and_hash_the_dtype(monkeypatch):
    resolved = []
    monkeypatch.setattr(harness.engines.models, "resolve_model", lambda spec: resolved.append(spec) or MODEL)
    assert FakeEngine.resolve_model("some/model", {"dtype": "float16"}) is MODEL and resolved == ["some/model"]
    assert FakeEngine.resolve_sample_defining({}) == {"dtype": "auto"}
    assert FakeEngine.resolve_sample_defining({"dtype": "float16", "max_num_seqs": 4}) == {"dtype": "float16"}
    assert OpenAIEngine.resolve_sample_defining({"base_url": "http://x/v1", "concurrency": 2}) == {}


def test_only_engines_that_declare_it_get_the_session_seed():
    assert not FakeEngine.takes_session_seed and not OpenAIEngine.takes_session_seed
    assert EngineSeededFakeEngine.takes_session_seed and VLLMEngine.takes_session_seed
    seeded = build_engine("tests.support.fake_engine:EngineSeededFakeEngine", MODEL, {}, session_seed=1234)
    assert seeded.seed == 1234 and seeded.model == MODEL.path
    # a seed handed to an engine that takes none would be a TypeError
    assert (
        build_engine("tests.unit.engines.test_engine_registry:StrictEngine", MODEL, {}, session_seed=1).model
        == MODEL.path
    )


class StrictEngine(Engine):
    """Takes no options at all: a session seed handed to it would fail."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.closed = False

    def generate(self, requests, settings):
        return iter(())

    def describe(self) -> dict[str, Any]:
        return {"engine": "strict"}

    def close(self) -> None:
        self.closed = True


def test_an_engine_must_implement_the_protocol_and_closes_as_a_context_manager():
    class Incomplete(Engine):
        def describe(self) -> dict[str, Any]:
            return {}

    with pytest.raises(TypeError, match="abstract method"):
        Incomplete()
    with StrictEngine("m") as engine:
        assert not engine.closed
    assert engine.closed


def test_a_local_model_without_config_is_named_as_the_model_option(tmp_path):
    missing = r"has no config\.json: a local model must be a checkpoint directory"
    with pytest.raises(OptionError, match=missing) as error:
        harness.engines.models.resolve_model(str(tmp_path))
    assert error.value.option == "model"
