"""``ttc forecast``, ``ttc backtest``, ``ttc budget``: coverage beyond the sampled k, and what it costs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from typing_extensions import Annotated

from harness.cli.app import app
from harness.store.counts import Counts, read_counts_jsonl

RunDirArgument = Annotated[
    Optional[Path], typer.Argument(help="Run directory (its verdicts give the counts); or use --counts.")
]
CountsOption = Annotated[
    Optional[Path],
    typer.Option("--counts", help="Counts JSONL: num_samples, num_correct and optional grouping fields per line."),
]
GroupByOption = Annotated[Optional[str], typer.Option("--group-by", help="Field to split problems by (e.g. model).")]
MethodOption = Annotated[
    str,
    typer.Option(
        "--method",
        help="auto, blend, powerlaw, powerlaw-log, beta, bayes or bayes-zi (see docs/forecasting.md).",
    ),
]
ConfidenceOption = Annotated[float, typer.Option("--confidence", help="Interval coverage.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for pilots, sub-pilots and bootstraps.")]


def fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=2)


def load_counts(run_dir: Path | None, counts_file: Path | None) -> tuple[Counts, dict[str, Any] | None]:
    """Counts (and measured usage, for a run directory) from exactly one of RUN_DIR and --counts."""
    if (run_dir is None) == (counts_file is None):
        raise ValueError("give a run directory or --counts FILE (exactly one)")
    if counts_file is not None:
        return read_counts_jsonl(counts_file), None
    from harness.store import RunStore, RunStoreError

    try:
        store = RunStore.open(run_dir)
        return store.counts(), store.usage()
    except RunStoreError as error:  # reported like any other bad input
        raise ValueError(str(error)) from None


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")


@app.command()
def forecast(
    run_dir: RunDirArgument = None,
    counts_file: CountsOption = None,
    group_by: GroupByOption = None,
    k: Annotated[int, typer.Option("--k", help="Samples per problem to forecast coverage at.")] = 10_000,
    method: MethodOption = "auto",
    confidence: ConfidenceOption = 0.9,
    json_path: Annotated[
        Optional[Path], typer.Option("--json", help="Write {group: {coverage, low, high, method}}.")
    ] = None,
    plot: Annotated[
        Optional[Path], typer.Option("--plot", help="Write a coverage-vs-k figure (PNG); one group.")
    ] = None,
    seed: SeedOption = 0,
) -> None:
    """Forecast coverage at --k samples per problem, with an interval, per group."""
    from harness.forecasting.forecast import forecast as run_forecast

    try:
        counts, _ = load_counts(run_dir, counts_file)
        groups = counts.group_by(group_by)
        if plot is not None and len(groups) != 1:
            raise ValueError("--plot draws one group; drop --group-by or select a single group's counts")
        results = {name: run_forecast(group, k, method, confidence, seed) for name, group in groups.items()}
    except (ValueError, FileNotFoundError) as error:
        fail(error)
    from harness.reporting.format import format_forecast

    width = max(len(name) for name in results)
    for name, result in results.items():
        typer.echo(f"{name:<{width}}  {format_forecast({'k': k, **result.to_json(), 'confidence': confidence})}")
        if result.note:
            typer.echo(f"{'':<{width}}  ({result.note})")
    if json_path is not None:
        _write_json(json_path, {name: result.to_json() for name, result in results.items()})
    if plot is not None:
        from harness.reporting.figures import law_curves, observed_curve, plot_coverage

        group = next(iter(groups.values()))
        methods = list(dict.fromkeys([method, "powerlaw", "bayes"]))
        laws = law_curves(group, methods, k, confidence)
        plot_coverage(plot, *observed_curve(group, confidence), laws=laws, forecast_k=k)


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
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write rows and summary as JSON.")] = None,
    adaptive_extra: Annotated[
        int,
        typer.Option(
            "--adaptive-extra", help="Also test the adaptive pilot: this many extra samples per problem on average."
        ),
    ] = 0,
    seed: SeedOption = 0,
) -> None:
    """How far can a forecast from a --pilot be trusted? Error and interval hit rate per method and group."""
    from harness.forecasting.backtest import backtest as run_backtest
    from harness.forecasting.backtest import backtest_adaptive, format_adaptive_markdown, format_markdown, rows_to_json

    try:
        counts = read_counts_jsonl(counts_file)
        rows = run_backtest(counts, group_by, pilot, k, repeats, seed, tuple(methods.split(",")), confidence)
        adaptive = (
            backtest_adaptive(counts, group_by, pilot, adaptive_extra, k, repeats, seed, confidence)
            if adaptive_extra > 0
            else []
        )
    except (ValueError, FileNotFoundError) as error:
        fail(error)
    typer.echo(format_markdown(rows))
    if adaptive:
        typer.echo("\n" + format_adaptive_markdown(adaptive))
    if json_path is not None:
        payload = rows_to_json(rows)
        if adaptive:
            payload["adaptive"] = [vars(row) for row in adaptive]
        _write_json(json_path, payload)


@app.command()
def budget(
    run_dir: RunDirArgument = None,
    counts_file: CountsOption = None,
    group_by: GroupByOption = None,
    target: Annotated[float, typer.Option("--target", help="Coverage to reach, e.g. 0.8.")] = 0.8,
    method: MethodOption = "auto",
    confidence: ConfidenceOption = 0.9,
    price_per_mtok: Annotated[
        Optional[float], typer.Option("--price-per-mtok", help="Money per million tokens.")
    ] = None,
    gpu_hour_price: Annotated[Optional[float], typer.Option("--gpu-hour-price", help="Money per GPU hour.")] = None,
    tokens_per_sample: Annotated[
        Optional[float], typer.Option(help="Generated tokens per sample (--counts input).")
    ] = None,
    prompt_tokens: Annotated[Optional[float], typer.Option(help="Prompt tokens per problem (--counts input).")] = None,
    params: Annotated[Optional[float], typer.Option(help="Model parameters, e.g. 7e9 (--counts input).")] = None,
    tokens_per_second: Annotated[Optional[float], typer.Option(help="Generation throughput (--counts input).")] = None,
    adaptive_extra: Annotated[
        int,
        typer.Option(
            "--adaptive-extra", help="Plan this many extra pilot samples (total) where they narrow the forecast most."
        ),
    ] = 0,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write {group: plan} as JSON.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the budget curve (PNG); one group.")] = None,
    seed: SeedOption = 0,
) -> None:
    """The smallest k whose forecast reaches --target, what it costs, and samples by difficulty."""
    from harness.forecasting.budget import Prices, Usage, plan_adaptive_pilot, plan_budget
    from harness.reporting.terminal import format_plan

    try:
        if price_per_mtok is not None and gpu_hour_price is not None:
            raise ValueError("give --price-per-mtok or --gpu-hour-price, not both")
        counts, measured = load_counts(run_dir, counts_file)
        groups = counts.group_by(group_by)
        if plot is not None and len(groups) != 1:
            raise ValueError("--plot draws one group; drop --group-by or select a single group's counts")
        usage = Usage.from_mapping(measured) if measured else Usage()
        overrides = {
            "output_tokens_per_sample": tokens_per_sample,
            "prompt_tokens_per_problem": prompt_tokens,
            "output_tokens_per_second": tokens_per_second,
            "model_parameters": None if params is None else int(params),
        }
        usage = Usage(**{name: getattr(usage, name) if value is None else value for name, value in overrides.items()})
        prices = Prices(per_million_tokens=price_per_mtok, gpu_hour=gpu_hour_price)
        plans = {
            name: plan_budget(group, target, method, confidence, usage, prices, seed=seed)
            for name, group in groups.items()
        }
        adaptive = {
            name: plan_adaptive_pilot(groups[name], adaptive_extra, plan.k or plan.k_limit, confidence, seed=seed)
            for name, plan in plans.items()
            if adaptive_extra
        }
    except (ValueError, FileNotFoundError) as error:
        fail(error)
    payload = {}
    for name, plan in plans.items():
        if len(plans) > 1:
            typer.echo(f"\n== {name}")
        typer.echo(format_plan(plan))
        payload[name] = plan.to_json()
        if name in adaptive:
            extra = adaptive[name]
            coverage, low, high = extra.before
            typer.echo(
                f"adaptive pilot: {adaptive_extra} extra samples over {len(extra.extra)} problems ({extra.strategy}); "
                f"interval at k = {extra.k:,}: now [{low:.3f}, {high:.3f}] (width {high - low:.3f}), "
                f"expected width after {extra.expected_width_after:.3f}"
            )
            payload[name]["adaptive_pilot"] = extra.to_json()
    if json_path is not None:
        _write_json(json_path, payload)
    if plot is not None:
        from harness.forecasting.forecast import forecast_curve
        from harness.reporting.figures import forecast_ks, plot_budget

        (group,), (plan,) = groups.values(), plans.values()
        top = plan.k_conservative or plan.k or plan.k_limit
        ks = forecast_ks(int(group.num_samples.min()), int(min(top * 2, plan.k_limit)))
        plot_budget(plot, forecast_curve(group, ks, method, confidence, seed), group, usage, prices, target)
