"""The shapes of what the Python API returns, as typed dictionaries: ``Summary`` is ``summary.json`` (and what
``ttc analyze --json`` prints), ``SamplingReport`` and ``Verification`` what the sample and verify steps did.

They are plain dicts at run time (JSON in, JSON out); the types document every key and let a type checker
follow ``summary["forecast"]["high"]``. Keys a summary of counts (rather than of a run directory) lacks, and
keys present only sometimes, are in the ``total=False`` parts.
"""

from __future__ import annotations

from typing import Any, TypedDict

# ---------------------------------------------------------------------------------------------------------
# summary.json
# ---------------------------------------------------------------------------------------------------------


class SamplesPerProblem(TypedDict):
    min: int
    max: int


class CoverageAtK(TypedDict):
    """pass@k at one k, with its bootstrap interval over problems."""

    k: int
    coverage: float
    low: float
    high: float


class LawFit(TypedDict):
    """The power law fitted to pass@k: ``log(coverage) = a * k^b``."""

    law: str
    a: float
    b: float
    r2: float
    ks: list[int]


class _ForecastRequired(TypedDict):
    k: int
    coverage: float | None  # None where the counts support only bounds (``note`` says why)
    low: float
    high: float
    method: str
    confidence: float


class ForecastAt(_ForecastRequired, total=False):
    """Coverage forecast at k samples per problem, with its interval."""

    note: str


class GroupSummary(TypedDict):
    """One group of problems (a value of a metadata field): pass@1 and coverage at its largest common k."""

    problems: int
    pass_at_1: float
    k: int
    coverage: float


class Interval(TypedDict):
    coverage: float | None
    low: float
    high: float


class BudgetTarget(TypedDict):
    """Where the forecast reaches one target coverage, and what bringing every problem to that k costs."""

    target: float
    k: int | None
    k_optimistic: int | None
    k_conservative: int | None
    measured: bool
    forecast: Interval | None
    cost: dict[str, Any] | None  # harness.forecasting.costs.Cost.to_json()


class _BudgetRequired(TypedDict):
    method: str
    confidence: float
    k_limit: int
    targets: list[BudgetTarget]


class BudgetTable(_BudgetRequired, total=False):
    note: str


class UsageFigures(TypedDict):
    """Measured cost figures of a run (None where unknown)."""

    samples: int
    output_tokens: int | None
    output_tokens_per_sample: float | None
    prompt_tokens_per_problem: float | None
    output_tokens_per_second: float | None
    model_parameters: int | None


class SamplingRecord(TypedDict):
    """The sampling settings of the run (``harness.core.records.SamplingSettings``)."""

    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    stop: list[str]
    seed: int


class AdaptivePilotReport(TypedDict, total=False):
    """The adaptive pilot's plan (``harness.forecasting.budget.AdaptivePlan.to_json()``), the interval at
    ``k`` before and after its extra samples, and the widths."""

    extra_samples: int
    k: int
    extra: dict[str, int]
    before: dict[str, float]
    after: dict[str, float]
    expected_width_after: float
    strategy: str
    widths_by_strategy: dict[str, float]
    width_before: float
    width_after: float


class PassHatKAt(TypedDict):
    """pass^k (all of k samples correct) at one k, with its bootstrap interval over problems."""

    k: int
    value: float
    low: float
    high: float


class AvgAtNFigures(TypedDict):
    """avg@n: pass@1 averaged over each problem's samples, then over problems, with its standard errors
    (``harness.metrics.estimators.AvgAtN``; None where undefined, e.g. one problem)."""

    mean: float
    standard_error: float | None
    standard_error_samples: float | None
    between_problem_variance: float | None
    within_problem_variance: float | None
    problems: int
    samples: int


class TokenStatistics(TypedDict):
    mean: float
    median: float
    p90: float
    max: float


class ThinkingBin(TypedDict):
    """Samples whose thinking took ``low`` to ``high`` tokens, and how many of them were correct."""

    low: int
    high: int
    samples: int
    correct: int
    accuracy: float


# The figures of a ReasoningSummary (None with reasoning off): harness.metrics.reasoning.reasoning_figures
REASONING_FIGURES = (
    "samples",
    "truncated",
    "truncated_share",
    "split_known",
    "thinking_tokens",
    "answer_tokens",
    "mean_thinking_tokens_correct",
    "mean_thinking_tokens_wrong",
    "accuracy_by_thinking",
)


class ReasoningSummary(TypedDict):
    """How the verdict set judged reasoning models' completions, and what their thinking cost and bought.

    ``mode`` ``on`` (verifiers judged the answer after the thinking) or ``off``; ``think_tags`` (with ``on``);
    ``sampled``, the manifest's record of how the run decided when it sampled (None for runs made before);
    ``truncated``, the samples cut inside their thinking (``truncated_thinking``) and ``truncated_share``;
    ``split_known``, how many samples have a known thinking/answer token split; ``thinking_tokens`` and
    ``answer_tokens`` (mean, median, p90, max; None when unknown); the mean thinking tokens of correct and of
    wrong samples; ``accuracy_by_thinking``, accuracy in bins of thinking length; ``note``, what the figures
    leave out. With reasoning off every figure is None."""

    mode: str
    think_tags: list[str] | None
    sampled: dict[str, Any] | None
    samples: int | None
    truncated: int | None
    truncated_share: float | None
    split_known: int | None
    thinking_tokens: TokenStatistics | None
    answer_tokens: TokenStatistics | None
    mean_thinking_tokens_correct: float | None
    mean_thinking_tokens_wrong: float | None
    accuracy_by_thinking: list[ThinkingBin] | None
    note: str | None


class _CountsSummary(TypedDict):
    problems: int
    samples_per_problem: SamplesPerProblem
    samples: int
    correct: int
    solved_problems: int
    confidence: float
    pass_at_1: float
    pass_at_k: list[CoverageAtK]
    coverage_all_k: list[float]
    pass_hat_k: list[PassHatKAt]
    avg_at_n: AvgAtNFigures
    fit: LawFit | None
    forecast: ForecastAt | None
    groups: dict[str, dict[str, GroupSummary]]


class Summary(_CountsSummary, total=False):
    """``summary.json``: pass@k for every k with intervals, pass^k and avg@n, the law, the forecast, groups;
    for a run directory also what it ran (task, model, configuration, verifier), what the summary covers,
    verdict reasons, usage, budget rows, how samples finished and the reasoning figures. ``fit_error`` and
    ``forecast_error`` say why ``fit`` or ``forecast`` is None."""

    fit_error: str
    forecast_error: str
    run: str
    task: str
    model: str | None
    config_hash: str
    run_id: str  # the run summarised (harness.store.RunStore.run_id)
    fingerprint: str  # of the shards summarised (RunStore.content_fingerprint): another state makes it stale
    sampling: SamplingRecord | None  # None for imported samples
    verifier: dict[str, Any]
    verdict_set: str
    completeness: dict[str, Any]  # harness.store.completeness.Completeness.to_json(): what the summary covers
    reasons: dict[str, int]
    usage: UsageFigures
    budget: BudgetTable | None
    finish_reasons: dict[str, int]
    reasoning: ReasoningSummary
    # a run sampled with --thinking-budget or --min-thinking: its settings, samples and how many were forced
    budget_forcing: dict[str, Any] | None
    # after ``ttc sweep``: the samples x thinking surface (harness.pipeline.surface.surface_summary); None before
    surface: dict[str, Any] | None
    adaptive_pilot: AdaptivePilotReport
    corrected: dict[str, Any]  # harness.metrics.verifier_error.CorrectedCoverage.to_dict() and its forecast


# ---------------------------------------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------------------------------------


class SessionRecord(TypedDict):
    """One sampling session, as the manifest keeps it (``harness.store.manifest.Session``)."""

    id: str
    started: str
    samples: int
    output_tokens: int
    prompt_tokens: int
    requests: int
    seconds: float
    finished: str | None
    status: str  # running, complete, interrupted (Ctrl-C, SIGTERM, SIGHUP), failed, killed (found running later)
    engine_figures: dict[str, Any]


class SamplingReport(TypedDict):
    """What the sample step did: samples wanted and already stored, and the session run (None when nothing
    was missing)."""

    wanted: int
    already_stored: int
    session: SessionRecord | None


class _VerificationRequired(TypedDict):
    verdict_set: str
    verified: int
    reasons: dict[str, int]
    seconds: float
    reasoning: dict[str, Any] | None


class Verification(_VerificationRequired, total=False):
    """What the verify step did: the verdict set written to, the samples judged now, their verdicts' reasons,
    the seconds it took, and how it judged reasoning (``mode`` and ``think_tags``); for an LLM judge also the
    distinct answers it was asked about and what it spent (``judge``: calls, prompt and reply tokens, seconds)."""

    distinct_answers: int
    judge: dict[str, Any]


class _ScoringRequired(TypedDict):
    score_set: str
    backend: str | None
    scored: int
    truncated: int
    seconds: float


class Scoring(_ScoringRequired, total=False):
    """What the score step did: the score set written to, the backend that ran the reward model, the samples
    scored now, how many inputs were cut to ``max_length`` (keeping their end), and the seconds it took; for a
    judge's scores also what the judge spent (``judge``)."""

    judge: dict[str, Any]


class SweepBudget(TypedDict):
    """One thinking budget of a sweep: its samples (and how many were forced there), the tokens the sweep
    generated for them, what sampling the budget afresh would generate (every sample's tokens there), its
    verdicts' count, pass@1 and reasons."""

    budget: int
    samples: int
    forced: int
    generated_tokens: int
    afresh_tokens: int
    verified: int
    pass_at_1: float | None
    reasons: dict[str, int]


class SweepReport(TypedDict):
    """What ``ttc sweep`` holds and did: the sweep's key and settings (``description``), the verdict set its
    verdicts follow, each budget, the tokens this call generated and the seconds that took (its engine's start
    apart: ``engine_start_seconds``, None when no engine started), the verdicts it made, and beside them what
    sampling every budget afresh would generate (``afresh_tokens``) and take at the run's measured throughput
    (``afresh_seconds``; None when unknown)."""

    run: str
    sweep: str
    verdict_set: str
    description: dict[str, Any]
    budgets: list[SweepBudget]
    generated_tokens: int
    seconds: float
    engine_start_seconds: float | None
    verified: int
    stored_generated_tokens: int
    afresh_tokens: int
    afresh_seconds: float | None
    sampling_tokens_per_second: float | None


class ImportedRun(TypedDict):
    """What ``import_samples`` created: the run directory, its problems and samples, and its score sets."""

    run: str
    problems: int
    samples: int
    score_sets: list[str]
