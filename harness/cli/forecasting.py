"""``ttc forecast``, ``ttc backtest``, ``ttc budget``: coverage beyond the sampled k, and what it costs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from harness.cli.app import (
    BytesPerSOption,
    CommandError,
    DtypeBytesOption,
    FlopsPerSOption,
    HardwareOption,
    JsonOption,
    Output,
    app,
    check_one_price,
)
from harness.core.errors import RunStoreError

if TYPE_CHECKING:
    from harness import Run

RunDirArgument = Annotated[
    Path | None, typer.Argument(help="Run directory (its verdicts give the counts); or use --counts.")
]
CountsOption = Annotated[
    Path | None,
    typer.Option("--counts", help="Counts JSONL: num_samples, num_correct and optional grouping fields per line."),
]
GroupByOption = Annotated[str | None, typer.Option("--group-by", help="Field to split problems by (e.g. model).")]
MethodOption = Annotated[
    str,
    typer.Option(
        "--method",
        help="auto, blend, powerlaw, powerlaw-log, beta, bayes or bayes-zi (see docs/forecasting.md).",
    ),
]
ConfidenceOption = Annotated[float, typer.Option("--confidence", help="Interval coverage.")]
# Seconds an analysis runs before it shows progress: a small input finishes first, and shows nothing.
SILENT_SECONDS = 3.0
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for pilots, sub-pilots and bootstraps.")]
CorrectedOption = Annotated[
    bool,
    typer.Option(
        "--corrected",
        help="Use pass@k corrected for the verifier's error rates (--verifier-error, --verifier-error-from, or "
        "those `ttc analyze --verifier-error` recorded); docs/verifiers.md.",
    ),
]
VerifierErrorOption = Annotated[
    str | None,
    typer.Option(
        "--verifier-error", help="The verifier's false-positive and false-negative rates, FPR,FNR (e.g. 0.05,0.1)."
    ),
]
VerifierErrorFromOption = Annotated[
    Path | None,
    typer.Option(
        "--verifier-error-from",
        help="An agreement's JSON (`ttc agreement` on an audited subset): its rates, with their uncertainty.",
    ),
]


def load_groups(
    run_dir: Path | None, counts_file: Path | None, group_by: str | None, output: Output, plot: Path | None = None
) -> tuple[Run, dict[str, Run]]:
    """The run (``harness.load_run``) from exactly one of RUN_DIR and --counts, and its groups by --group-by
    (``{"all": run}`` without). A run whose verdicts cover part of it is said to be so (``output.log``). With
    --plot, its path is checked first, and it draws one group."""
    import harness
    from harness.store.outputs import check_output_path

    if plot is not None:
        check_output_path(plot, "plot", inputs=[counts_file])
    source = run_dir or counts_file
    if source is None or (run_dir is not None and counts_file is not None):
        raise CommandError("give a run directory or --counts FILE (exactly one)")
    if run_dir is not None and not run_dir.is_dir():
        raise RunStoreError(f"{run_dir} is not a run directory")
    loaded = harness.load_run(source)
    note = loaded.completeness.note() if loaded.completeness is not None else None
    if note:
        output.log(note)
    groups = {"all": loaded} if group_by is None else loaded.groups(group_by)
    if plot is not None and len(groups) != 1:
        raise CommandError("--plot draws one group; drop --group-by or select a single group's counts")
    return loaded, groups


def completeness_fields(loaded: Run) -> dict[str, Any]:
    """A run directory's ``completeness`` for the JSON result (nothing for counts)."""
    return {} if loaded.completeness is None else {"completeness": loaded.completeness.to_json()}


@app.command()
def forecast(
    run_dir: RunDirArgument = None,
    counts_file: CountsOption = None,
    group_by: GroupByOption = None,
    k: Annotated[int, typer.Option("--k", help="Samples per problem to forecast coverage at.")] = 10_000,
    method: MethodOption = "auto",
    confidence: ConfidenceOption = 0.9,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a coverage-vs-k figure (PNG); one group.")] = None,
    seed: SeedOption = 0,
    corrected: CorrectedOption = False,
    verifier_error: VerifierErrorOption = None,
    verifier_error_from: VerifierErrorFromOption = None,
    json_output: JsonOption = False,
) -> None:
    """Forecast coverage at --k samples per problem, with an interval, per group."""
    output = Output("forecast", json_output)
    with output.errors():
        if corrected and plot is not None:
            raise CommandError("--plot draws the uncorrected forecast; leave it out with --corrected")
        loaded, groups = load_groups(run_dir, counts_file, group_by, output, plot)
        results = {
            name: group.forecast(
                k,
                method,
                confidence,
                seed,
                corrected=corrected,
                verifier_error=verifier_error,
                verifier_error_from=verifier_error_from,
            )
            for name, group in groups.items()
        }
    from harness.reporting.format import format_forecast

    width = max(len(name) for name in results)
    for name, result in results.items():
        output.echo(f"{name:<{width}}  {format_forecast({'k': k, **result.to_json(), 'confidence': confidence})}")
        if result.note:
            output.echo(f"{'':<{width}}  ({result.note})")
    if plot is not None:
        from harness.reporting.figures import law_curves, observed_curve, plot_coverage

        counts = next(iter(groups.values())).to_counts()
        methods = list(dict.fromkeys([method, "powerlaw", "bayes"]))
        laws = law_curves(counts, methods, k, confidence)
        plot_coverage(plot, *observed_curve(counts, confidence), laws=laws, forecast_k=k)
    output.result(
        k=k,
        confidence=confidence,
        forecasts={name: result.to_json() for name, result in results.items()},
        **completeness_fields(loaded),
    )


@app.command()
def backtest(
    counts_file: Annotated[Path, typer.Option("--counts", help="Counts JSONL with the full samples per problem.")],
    pilot: Annotated[int, typer.Option("--pilot", help="Pilot samples per problem, drawn without replacement.")],
    k: Annotated[int, typer.Option("--k", help="Samples per problem whose coverage is forecast (<= n).")],
    group_by: GroupByOption = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Pilots per group.")] = 20,
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated methods to compare.")
    ] = "auto,blend,powerlaw,powerlaw-log,beta,bayes,bayes-zi",
    confidence: ConfidenceOption = 0.9,
    adaptive_extra: Annotated[
        int,
        typer.Option(
            "--adaptive-extra", help="Also test the adaptive pilot: this many extra samples per problem on average."
        ),
    ] = 0,
    seed: SeedOption = 0,
    json_output: JsonOption = False,
) -> None:
    """How far can a forecast from a --pilot be trusted? Error and interval hit rate per method and group."""
    from harness.forecasting.backtest import backtest as run_backtest
    from harness.forecasting.backtest import (
        backtest_adaptive,
        check_adaptive_backtest,
        format_adaptive_markdown,
        format_markdown,
        rows_to_json,
    )
    from harness.pipeline.counts_file import read_counts
    from harness.reporting.progress import Progress

    output = Output("backtest", json_output)
    with output.errors():
        counts = read_counts(counts_file)
        if adaptive_extra != 0:  # checked before the backtest runs, not after it
            check_adaptive_backtest(counts, group_by, pilot, adaptive_extra, repeats, confidence)
        groups = 1 if group_by is None else len(counts.group_by(group_by))
        pilots = groups * repeats * (2 if adaptive_extra else 1)
        # shown once it takes a few seconds (a million problems): a line every few seconds, pilots done
        bar = Progress("backtesting", pilots, unit="pilots", mode=output.progress_mode, silent_for=SILENT_SECONDS)
        rows = run_backtest(
            counts, group_by, pilot, k, repeats, seed, tuple(methods.split(",")), confidence, progress=bar.update
        )
        adaptive = (
            backtest_adaptive(
                counts, group_by, pilot, adaptive_extra, k, repeats, seed, confidence, progress=bar.update
            )
            if adaptive_extra != 0
            else []
        )
        bar.close()
    output.echo(format_markdown(rows))
    if adaptive:
        output.echo("\n" + format_adaptive_markdown(adaptive))
    payload = rows_to_json(rows)
    if adaptive:
        payload["adaptive"] = [vars(row) for row in adaptive]
    output.result(**payload)


@app.command()
def budget(
    run_dir: RunDirArgument = None,
    counts_file: CountsOption = None,
    group_by: GroupByOption = None,
    target: Annotated[float, typer.Option("--target", help="Coverage to reach, e.g. 0.8.")] = 0.8,
    method: MethodOption = "auto",
    confidence: ConfidenceOption = 0.9,
    price_per_mtok: Annotated[float | None, typer.Option("--price-per-mtok", help="Money per million tokens.")] = None,
    gpu_hour_price: Annotated[float | None, typer.Option("--gpu-hour-price", help="Money per GPU hour.")] = None,
    tokens_per_sample: Annotated[
        float | None, typer.Option(help="Generated tokens per sample (--counts input).")
    ] = None,
    prompt_tokens: Annotated[float | None, typer.Option(help="Prompt tokens per problem (--counts input).")] = None,
    params: Annotated[float | None, typer.Option(help="Model parameters, e.g. 7e9 (--counts input).")] = None,
    tokens_per_second: Annotated[float | None, typer.Option(help="Generation throughput (--counts input).")] = None,
    adaptive_extra: Annotated[
        int,
        typer.Option(
            "--adaptive-extra", help="Plan this many extra pilot samples (total) where they narrow the forecast most."
        ),
    ] = 0,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the budget curve (PNG); one group.")] = None,
    seed: SeedOption = 0,
    corrected: CorrectedOption = False,
    verifier_error: VerifierErrorOption = None,
    verifier_error_from: VerifierErrorFromOption = None,
    over: Annotated[
        str,
        typer.Option(
            "--over",
            help="samples, or samples,thinking: plan k and the thinking budget together over the run's sweep "
            "(ttc sweep; docs/thinking.md).",
        ),
    ] = "samples",
    cost: Annotated[
        str,
        typer.Option(
            "--cost", help="--over samples,thinking: tokens, flops, eflops (memory-aware) or money (needs a price)."
        ),
    ] = "tokens",
    spend: Annotated[
        float | None,
        typer.Option("--spend", help="--over samples,thinking: the best (k, B) for this spend, in the cost's unit."),
    ] = None,
    model_config: Annotated[
        Path | None,
        typer.Option("--model-config", help="The model's config.json for flops/eflops (default: the run's model's)."),
    ] = None,
    dtype_bytes: DtypeBytesOption = None,
    hardware: HardwareOption = None,
    flops_per_s: FlopsPerSOption = None,
    bytes_per_s: BytesPerSOption = None,
    k_max: Annotated[
        int | None,
        typer.Option("--k-max", help="--over samples,thinking: the largest k considered (default 10 x the samples)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """The smallest k whose forecast reaches --target, what it costs, and samples by difficulty; with --over
    samples,thinking the cheapest (k, thinking budget), the best for --spend, and the frontier."""
    from harness.forecasting.budget import BudgetPlan, plan_adaptive_pilot
    from harness.forecasting.planner import JointPlan
    from harness.pipeline.surface import parse_axes
    from harness.reporting.terminal import format_joint_plan, format_plan

    output = Output("budget", json_output)
    check_one_price(output, price_per_mtok, gpu_hour_price)
    with output.errors():
        axes = parse_axes(over)
    # the options of both plannings: each refuses, naming it, an option that applies to the other only
    joint_options: dict[str, Any] = dict(
        cost=cost,
        spend=spend,
        model_config=model_config,
        dtype_bytes=dtype_bytes,
        hardware=hardware,
        flops_per_s=flops_per_s,
        bytes_per_s=bytes_per_s,
        k_max=k_max,
        price_per_mtok=price_per_mtok,
        gpu_hour_price=gpu_hour_price,
        corrected=corrected,
        verifier_error=verifier_error,
        verifier_error_from=verifier_error_from,
    )
    if axes != ("samples",):
        with output.errors():
            if counts_file is not None or group_by is not None or plot is not None or adaptive_extra:
                raise CommandError(
                    "--over samples,thinking plans over a run directory's sweep: drop --counts, --group-by, --plot "
                    "and --adaptive-extra"
                )
            loaded, _ = load_groups(run_dir, None, None, output)
            joint = loaded.budget(target, over=axes, **joint_options)
            assert isinstance(joint, JointPlan)
        output.echo(format_joint_plan(joint))
        output.result(target=target, over=list(axes), joint_plan=joint.to_json())
        return
    with output.errors():
        loaded, groups = load_groups(run_dir, counts_file, group_by, output, plot)
        usage = {
            "output_tokens_per_sample": tokens_per_sample,
            "prompt_tokens_per_problem": prompt_tokens,
            "output_tokens_per_second": tokens_per_second,
            "model_parameters": None if params is None else int(params),
        }
        plans: dict[str, BudgetPlan] = {}
        for name, group in groups.items():
            plan = group.budget(
                target, method=method, confidence=confidence, usage=usage, seed=seed, plot=plot, **joint_options
            )
            assert isinstance(plan, BudgetPlan)
            plans[name] = plan
        adaptive = {
            name: plan_adaptive_pilot(
                groups[name].to_counts(), adaptive_extra, plan.k or plan.k_limit, confidence, seed=seed
            )
            for name, plan in plans.items()
            if adaptive_extra
        }
    payload = {}
    for name, plan in plans.items():
        if len(plans) > 1:
            output.echo(f"\n== {name}")
        output.echo(format_plan(plan))
        payload[name] = plan.to_json()
        if name in adaptive:
            extra = adaptive[name]
            _, low, high = extra.before
            output.echo(
                f"adaptive pilot: {adaptive_extra} extra samples over {len(extra.extra)} problems ({extra.strategy}); "
                f"interval at k = {extra.k:,}: now [{low:.3f}, {high:.3f}] (width {high - low:.3f}), "
                f"expected width after {extra.expected_width_after:.3f}"
            )
            payload[name]["adaptive_pilot"] = extra.to_json()
    output.result(target=target, plans=payload, **completeness_fields(loaded))
