"""A run's configuration, and which parts of it define the samples.

Fields that change what a sample *is* (task and prompts, model, sampling parameters, seed) form the
configuration hash: a run directory only ever holds samples of one hash, and a command with another is
refused. The budget (how many problems, how many samples each) and engine performance knobs are not hashed,
so re-running with a larger budget extends a run instead of starting over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.core.records import SamplingSettings


@dataclass(frozen=True)
class RunConfig:
    """Everything a sampling run needs.

    Attributes:
        task: task name or ``module:Class``.
        task_description: the task's ``describe()`` (data source, prompt hash, options).
        model: identity of the weights (see ``harness.engines.models.ModelRef.identity``).
        engine: engine kind ("vllm", ...).
        sampling: sampling parameters, including the base seed.
        sample_defining: engine settings that change samples (e.g. dtype, as the engine resolves it on this
            machine).
        problems: how many problems (the first N of the task), None for all.
        samples: samples per problem.
    """

    task: str
    task_description: Mapping[str, Any]
    model: str
    engine: str
    sampling: SamplingSettings
    sample_defining: Mapping[str, Any] = field(default_factory=dict)
    problems: int | None = None
    samples: int = 32

    def identity(self) -> dict[str, Any]:
        """The hashed part: what defines the distribution of a stored sample."""
        return {
            "task": self.task,
            "task_description": dict(self.task_description),
            "model": self.model,
            "engine": self.engine,
            "sampling": self.sampling.to_dict(),
            "sample_defining": dict(self.sample_defining),
        }

    def config_hash(self) -> str:
        return config_hash(self.identity())

    def budget(self) -> dict[str, Any]:
        return {"problems": self.problems, "samples": self.samples}


def config_hash(identity: Mapping[str, Any]) -> str:
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def identity_differences(stored: Mapping[str, Any], requested: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Human-readable list of the fields where two identities differ (nested keys joined with dots)."""
    differences = []
    for key in sorted(set(stored) | set(requested)):
        name = f"{prefix}{key}"
        old, new = stored.get(key), requested.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            differences.extend(identity_differences(old, new, prefix=f"{name}."))
        elif old != new:
            differences.append(f"{name}: stored {old!r}, requested {new!r}")
    return differences
