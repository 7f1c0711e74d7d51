"""``ttc forecast``, ``ttc backtest``, ``ttc budget``: coverage beyond the sampled k, and what it costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.app import CommandError, JsonOption, Output, app
from harness.core.errors import RunStoreError

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
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for pilots, sub-pilots and bootstraps.")]


def load_groups(
    run_dir: Path | None, counts_file: Path | None, group_by: str | None, output: Output
) -> tuple[Any, dict[str, Any]]:
    """The run (``harness.load_run``) from exactly one of RUN_DIR and --counts, and its groups by --group-by
    (``{"all": run}`` without). A run whose verdicts cover part of it is said to be so (``output.log``)."""
    from harness.pipeline.api import load_run

    if (run_dir is None) == (counts_file is None):
        raise CommandError("give a run directory or --counts FILE (exactly one)")
    if run_dir is not None and not run_dir.is_dir():
        raise RunStoreError(f"{run_dir} is not a run directory")
    loaded = load_run(run_dir if run_dir is not None else counts_file)
    note = loaded.completeness.note() if loaded.is_run_directory else None
    if note:
        output.log(note)
    return loaded, ({"all": loaded} if group_by is None else loaded.groups(group_by))


def completeness_fields(loaded: Any) -> dict[str, Any]:
    """A run directory's ``completeness`` for the JSON result (nothing for counts)."""
    return {"completeness": loaded.completeness.to_json()} if loaded.is_run_directory else {}


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
    json_output: JsonOption = False,
) -> None:
    """Forecast coverage at --k samples per problem, with an interval, per group."""
    from harness.store.outputs import check_output_path

    output = Output("forecast", json_output)
    with output.errors():
        if plot is not None:
            check_output_path(plot, "plot", inputs=[counts_file])
        loaded, groups = load_groups(run_dir, counts_file, group_by, output)
        if plot is not None and len(groups) != 1:
            raise CommandError("--plot draws one group; drop --group-by or select a single group's counts")
        results = {name: group.forecast(k, method, confidence, seed) for name, group in groups.items()}
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
    from harness.forecasting.backtest import backtest_adaptive, format_adaptive_markdown, format_markdown, rows_to_json
    from harness.metrics.counts import read_counts_jsonl

    output = Output("backtest", json_output)
    with output.errors():
        counts = read_counts_jsonl(counts_file)
        rows = run_backtest(counts, group_by, pilot, k, repeats, seed, tuple(methods.split(",")), confidence)
        adaptive = (
            backtest_adaptive(counts, group_by, pilot, adaptive_extra, k, repeats, seed, confidence)
            if adaptive_extra != 0
            else []
        )
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
    json_output: JsonOption = False,
) -> None:
    """The smallest k whose forecast reaches --target, what it costs, and samples by difficulty."""
    from harness.forecasting.budget import plan_adaptive_pilot, plan_budget
    from harness.forecasting.costs import Prices, Usage
    from harness.reporting.terminal import format_plan
    from harness.store.outputs import check_output_path

    output = Output("budget", json_output)
    if price_per_mtok is not None and gpu_hour_price is not None:
        output.fail(CommandError("give --price-per-mtok or --gpu-hour-price, not both"))
    with output.errors():
        if plot is not None:
            check_output_path(plot, "plot", inputs=[counts_file])
        loaded, groups = load_groups(run_dir, counts_file, group_by, output)
        if plot is not None and len(groups) != 1:
            raise CommandError("--plot draws one group; drop --group-by or select a single group's counts")
        measured = loaded.usage
        usage = Usage.from_mapping(measured) if measured else Usage()
        overrides = {
            "output_tokens_per_sample": tokens_per_sample,
            "prompt_tokens_per_problem": prompt_tokens,
            "output_tokens_per_second": tokens_per_second,
            "model_parameters": None if params is None else int(params),
        }
        usage = Usage(**{name: getattr(usage, name) if value is None else value for name, value in overrides.items()})
        prices = Prices(per_million_tokens=price_per_mtok, gpu_hour=gpu_hour_price)
        counts = {name: group.to_counts() for name, group in groups.items()}
        plans = {
            name: plan_budget(group, target, method, confidence, usage, prices, seed=seed)
            for name, group in counts.items()
        }
        adaptive = {
            name: plan_adaptive_pilot(counts[name], adaptive_extra, plan.k or plan.k_limit, confidence, seed=seed)
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
            coverage, low, high = extra.before
            output.echo(
                f"adaptive pilot: {adaptive_extra} extra samples over {len(extra.extra)} problems ({extra.strategy}); "
                f"interval at k = {extra.k:,}: now [{low:.3f}, {high:.3f}] (width {high - low:.3f}), "
                f"expected width after {extra.expected_width_after:.3f}"
            )
            payload[name]["adaptive_pilot"] = extra.to_json()
    if plot is not None:
        from harness.forecasting.forecast import forecast_curve
        from harness.reporting.figures import forecast_ks, plot_budget

        (group,), (plan,) = counts.values(), plans.values()
        top = plan.k_conservative or plan.k or plan.k_limit
        ks = forecast_ks(int(group.num_samples.min()), int(min(top * 2, plan.k_limit)))
        plot_budget(plot, forecast_curve(group, ks, method, confidence, seed), group, usage, prices, target)
    output.result(target=target, plans=payload, **completeness_fields(loaded))
