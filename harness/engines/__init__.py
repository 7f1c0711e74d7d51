"""Engines that sample completions: vLLM offline (default) and others behind the same protocol."""

from harness.engines.base import (
    Completion,
    Engine,
    GenerationRequest,
    GenerationResult,
    SamplingSettings,
    request_seed,
)

__all__ = [
    "Completion",
    "Engine",
    "GenerationRequest",
    "GenerationResult",
    "SamplingSettings",
    "request_seed",
]
