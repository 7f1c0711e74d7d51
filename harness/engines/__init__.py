"""Engines that sample completions: vLLM offline (default), OpenAI-compatible servers, and your own
``Engine`` subclasses, named by ``module:Class`` (see ``registry``)."""

from harness.core.records import SamplingSettings
from harness.engines.base import Completion, Engine, GenerationRequest, GenerationResult, request_seed
from harness.engines.registry import BUILTIN_ENGINES, build_engine, engine_class

__all__ = [
    "BUILTIN_ENGINES",
    "Completion",
    "Engine",
    "GenerationRequest",
    "GenerationResult",
    "SamplingSettings",
    "build_engine",
    "engine_class",
    "request_seed",
]
