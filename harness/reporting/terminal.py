"""Human-facing output in the terminal: a run's compact table, a budget plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.forecasting.budget import BudgetPlan
from harness.forecasting.planner import LONGER_THINKING, MORE_SAMPLES, JointPlan, Marginal, PlanPoint
from harness.reporting.format import format_forecast, format_quantity


def print_summary(summary: Mapping[str, Any], console: Console | None = None) -> None:
    """Print pass@k with intervals, the fitted law and its forecast, as a compact table."""
    console = console or Console()
    confidence = round(100 * summary["confidence"])
    title = (
        f"{summary['task']} · {summary['model']} · {summary['problems']} problems × "
        f"{summary['samples_per_problem']['min']} samples · verifier {summary['verifier'].get('name')}"
    )
    console.print(title, markup=False)  # on its own line: a table's title wraps to the table's width
    table = Table()
    table.add_column("k", justify="right")
    table.add_column("pass@k", justify="right")
    table.add_column(f"{confidence}% interval", justify="right")
    reliability = {row["k"]: row for row in summary.get("pass_hat_k") or []}
    if reliability:
        table.add_column("pass^k", justify="right")
        table.add_column(f"{confidence}% interval", justify="right")
    for row in summary["pass_at_k"]:
        cells = [str(row["k"]), f"{row['coverage']:.3f}", f"[{row['low']:.3f}, {row['high']:.3f}]"]
        if reliability:
            hat = reliability[row["k"]]
            cells += [f"{hat['value']:.3f}", f"[{hat['low']:.3f}, {hat['high']:.3f}]"]
        table.add_row(*cells)
    console.print(table)
    lines = [
        (
            f"pass@1 = {summary['pass_at_1']:.3f}; problems solved at least once: "
            f"{summary['solved_problems']}/{summary['problems']}"
        )
    ]
    averaged = summary.get("avg_at_n")
    if averaged:
        lines.append(format_avg_at_n(averaged, summary["samples_per_problem"]))
    fit = summary.get("fit")
    if fit:
        lines.append(f"fit: log(coverage) = {fit['a']:.4g} * k^{fit['b']:.4g}  (R^2 on log coverage {fit['r2']:.3f})")
    forecast = summary.get("forecast")
    if forecast:
        if forecast["coverage"] is None:
            lines.append(f"no forecast: {forecast.get('note', 'too few successes for a law')}")
        lines.append(f"{'bound' if forecast['coverage'] is None else 'forecast'}: {format_forecast(forecast)}")
    elif summary.get("forecast_error"):
        lines.append(f"no forecast: {summary['forecast_error']}")
    reasons = ", ".join(f"{name} {count}" for name, count in sorted(summary["reasons"].items(), key=lambda x: -x[1]))
    lines.append(f"verdicts: {reasons}")
    if summary.get("reasoning"):
        lines.append(format_reasoning(summary["reasoning"]))
    if summary.get("budget_forcing"):
        lines.append(format_budget_forcing(summary["budget_forcing"]))
    if summary.get("surface"):
        lines.append(format_surface(summary["surface"]))
    usage = summary.get("usage") or {}
    if usage.get("output_tokens_per_sample") is not None:
        rate = usage.get("output_tokens_per_second")
        lines.append(
            f"tokens: {usage['output_tokens_per_sample']:.0f} per sample"
            + (f", {rate:.0f} tok/s measured" if rate else "")
        )
    for line in lines:
        console.print(line)
    if summary.get("corrected"):
        print_corrected(summary, console)
    note = (summary.get("completeness") or {}).get("note")
    if note:  # the summary covers part of the run: say so where its figures are read
        console.print(note, style="bold", markup=False)


def print_corrected(summary: Mapping[str, Any], console: Console | None = None) -> None:
    """pass@k corrected for the verifier's error rates beside the raw pass@k (``summary["corrected"]``)."""
    console = console or Console()
    corrected = summary["corrected"]
    confidence = round(100 * corrected["confidence"])
    fpr, fnr = corrected["false_positive_rate"], corrected["false_negative_rate"]

    exact = fpr["distribution"] == fnr["distribution"] == "known"
    console.print(
        f"pass@k corrected for verifier error: false-positive rate {fpr['value']:.3g}, false-negative rate "
        f"{fnr['value']:.3g} ({'taken as exact' if exact else 'with their uncertainty in the intervals'})",
        markup=False,
    )
    table = Table()
    for name in ("k", "raw pass@k", f"raw {confidence}%", "corrected", f"corrected {confidence}%"):
        table.add_column(name, justify="right")
    for row in corrected["pass_at_k"]:
        table.add_row(
            str(row["k"]),
            f"{row['raw']:.3f}",
            f"[{row['raw_low']:.3f}, {row['raw_high']:.3f}]",
            f"{row['corrected']:.3f}",
            f"[{row['low']:.3f}, {row['high']:.3f}]",
        )
    console.print(table)
    forecast = corrected.get("forecast")
    if forecast:
        console.print(
            f"corrected forecast at k = {forecast['k']:,}: {forecast['coverage']:.3f} "
            f"[{forecast['low']:.3f}, {forecast['high']:.3f}]"
        )
    notes = []
    if corrected["too_few_correct"]:
        notes.append(f"{corrected['too_few_correct']} problems have fewer correct samples than the FPR implies")
    if corrected["too_many_correct"]:
        notes.append(f"{corrected['too_many_correct']} problems have more correct samples than the FNR allows")
    for note in notes:
        console.print(f"note: {note}: are the rates right?", markup=False)


def format_avg_at_n(averaged: Mapping[str, Any], samples_per_problem: Mapping[str, int]) -> str:
    """avg@n in one line: the mean with its standard error over problems and samples."""
    low, high = samples_per_problem["min"], samples_per_problem["max"]
    n = str(low) if low == high else f"{low}-{high}"
    error = averaged["standard_error"]
    spread = "" if error is None else f" ± {error:.3f} (standard error over problems and samples)"
    return f"avg@{n} (pass@1 averaged over each problem's samples) = {averaged['mean']:.3f}{spread}"


def format_budget_forcing(forcing: Mapping[str, Any]) -> str:
    """A run's budget forcing in one line: its settings and the samples it forced."""
    parts = []
    if forcing.get("thinking_budget") is not None:
        parts.append(
            f"thinking capped at {forcing['thinking_budget']:,} tokens, answers within {forcing['answer_tokens']:,}"
        )
    if forcing.get("min_thinking"):
        parts.append(f"at least {forcing['min_thinking']:,} thinking tokens ({forcing['wait_word']!r})")
    return f"budget forcing: {'; '.join(parts)}: {forcing['forced']}/{forcing['samples']} samples forced"


def format_surface(surface: Mapping[str, Any]) -> str:
    """The summary's samples x thinking surface in one line: pass@1 and pass@n at each budget, the law in B."""
    n = surface["samples_per_problem"]
    cells = []
    for entry in surface["per_budget"]:
        first, last = entry["pass_at_k"][0], entry["pass_at_k"][-1]
        cells.append(f"B={entry['budget']:,}: {first['coverage']:.3f}/{last['coverage']:.3f}")
    law = surface.get("budget_law")
    fitted = f"; law in B: {law['law']} (held-out RMSE {law['rmse_mean']:.3f})" if law else ""
    return f"thinking budgets (pass@1/pass@{n}): " + ", ".join(cells) + fitted


def format_reasoning(reasoning: Mapping[str, Any]) -> str:
    """The summary's reasoning figures in one line."""
    if reasoning["mode"] != "on":
        return "reasoning: off (completions judged whole)"
    opening, closing = reasoning["think_tags"]
    cut = f"{reasoning['truncated']}/{reasoning['samples']} samples cut off in their thinking"
    parts = [f"reasoning: on ({opening}...{closing}); {cut} ({reasoning['truncated_share']:.0%})"]
    thinking = reasoning["thinking_tokens"]
    if thinking is not None:
        parts.append(f"thinking tokens per sample mean {thinking['mean']:,.0f}, p90 {thinking['p90']:,.0f}")
        parts.append(
            _thought_by_outcome(reasoning["mean_thinking_tokens_correct"], reasoning["mean_thinking_tokens_wrong"])
        )
    if reasoning.get("note"):
        parts.append(str(reasoning["note"]))
    return "; ".join(parts)


def _thought_by_outcome(correct: float | None, wrong: float | None) -> str:
    """What correct and wrong samples thought, on average, in words."""
    if correct is not None and wrong is not None:
        return f"correct samples thought {correct:,.0f} tokens on average, wrong ones {wrong:,.0f}"
    if correct is not None:
        return f"correct samples thought {correct:,.0f} tokens on average (none wrong)"
    return f"wrong samples thought {wrong:,.0f} tokens on average (none correct)"


def _quantity(value: float | None) -> str:
    return format_quantity(value, missing="missing")


def format_plan(plan: BudgetPlan) -> str:
    """The budget plan as readable lines."""
    lines = [f"target coverage {plan.target:.0%} ({plan.method}, {plan.confidence:.0%} interval)"]
    if plan.method == "bound":  # no law: only the bound's top says anything (the fewest samples it allows)
        earliest = plan.costs.get("k_optimistic")
        lines.append(
            "  no forecast, so no budget; the samples allow the target "
            + ("beyond the k limit" if earliest is None else f"no earlier than k = {earliest.k:,}")
        )
        return "\n".join(lines + [f"note: {note}" for note in plan.notes])
    if plan.forecast is not None:
        f = plan.forecast
        lines.append(f"  k = {plan.k:,} samples per problem: coverage {f.coverage:.3f} [{f.low:.3f}, {f.high:.3f}]")
    labels = {
        "k_optimistic": "if the interval's top holds",
        "k": "forecast",
        "k_conservative": "if the interval's bottom holds",
    }
    for name in ("k_optimistic", "k", "k_conservative"):
        cost = plan.costs.get(name)
        if cost is None:
            lines.append(f"  {labels[name]}: not reached by k = {plan.k_limit:,}")
            continue
        hours = None if cost.seconds is None else cost.seconds / 3600
        lines.append(
            f"  {labels[name]}: k = {cost.k:,}: {_quantity(cost.samples)} samples "
            f"({_quantity(cost.additional_samples)} more), {_quantity(cost.generated_tokens)} tokens, "
            f"{_quantity(cost.flops)} FLOPs, {'missing' if hours is None else f'{hours:,.1f} h'}, "
            f"money {'missing' if cost.money is None else f'{cost.money:,.2f}'}"
        )
    if plan.eflops is not None:
        names = {"k_optimistic": "optimistic", "k": "forecast", "k_conservative": "conservative"}
        shown = ", ".join(f"{label} {plan.eflops[name]:.4g}" for name, label in names.items() if name in plan.eflops)
        lines.append(f"  eFLOPs on {plan.eflops['hardware']} ({plan.eflops['model']}): {shown}")
    missing = sorted({item for cost in plan.costs.values() for item in cost.missing})
    if missing:
        lines.append(f"  missing inputs: {', '.join(missing)}")
    allocation = plan.allocation
    if allocation.uniform_k is not None:
        lines.append(
            f"samples by pilot success rate (fresh run, expected coverage {allocation.target:.0%}): "
            f"{_quantity(allocation.allocated_samples)} allocated vs {_quantity(allocation.uniform_samples)} "
            f"with k = {allocation.uniform_k:,} for all"
        )
        for item in allocation.bins:
            lines.append(
                f"  {item.label:>16}: {item.problems:4d} problems, {item.samples_per_problem:>12,.0f} samples each, "
                f"coverage {item.coverage_allocated:.3f} (uniform: {item.coverage_uniform:.3f})"
            )
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)


def format_sweep(report: Mapping[str, Any]) -> str:
    """A sweep's budgets, and what it generated beside what sampling each budget afresh would, as lines."""
    header = f"{'budget':>8} {'samples':>8} {'forced':>7} {'generated':>10} {'afresh tokens':>14} {'pass@1':>7}"
    lines = [header]
    for entry in report["budgets"]:
        accuracy = "—" if entry["pass_at_1"] is None else f"{entry['pass_at_1']:.3f}"
        lines.append(
            f"{entry['budget']:>8,} {entry['samples']:>8,} {entry['forced']:>7,} {entry['generated_tokens']:>10,} "
            f"{entry['afresh_tokens']:>14,} {accuracy:>7}"
        )
    rate = report["sampling_tokens_per_second"]
    afresh = f"{report['afresh_tokens']:,} tokens"
    if report["afresh_seconds"] is not None and rate:
        afresh += f" (about {report['afresh_seconds']:,.0f} s at the run's {rate:,.0f} tok/s)"
    start = report["engine_start_seconds"]
    started = "" if start is None else f" (after the engine's start, {start:,.0f} s)"
    lines.append(
        f"this sweep generated {report['generated_tokens']:,} tokens in {report['seconds']:,.1f} s{started}; "
        f"{report['stored_generated_tokens']:,} over all its calls, where sampling each budget afresh would "
        f"generate {afresh}"
    )
    return "\n".join(lines)


def _cost_text(value: float, unit: str) -> str:
    return f"{value:.4g} {unit}"


def format_joint_plan(plan: JointPlan) -> str:
    """The joint plan over samples and thinking: the target's answer, the spend's, and the frontier table."""
    unit = plan.unit
    shown = ", ".join(f"{budget:,}" for budget in plan.budgets)
    heading = f"planning k (1..{plan.k_max:,}; measured up to {plan.measured_k}) and thinking budget B ({shown})"
    lines = [f"{heading}, cost in {unit}"]

    def describe(point: PlanPoint) -> str:
        where = "measured" if point.measured else "forecast"
        return (
            f"k = {point.k:,}, B = {point.budget:,}: coverage {point.coverage:.3f} "
            f"[{point.low:.3f}, {point.high:.3f}] ({where}), cost {_cost_text(point.cost, unit)}"
        )

    def marginal_text(marginal: Marginal | None) -> str | None:
        if marginal is None:
            return None
        rates = []
        for name, rate in ((MORE_SAMPLES, marginal.more_samples), (LONGER_THINKING, marginal.longer_thinking)):
            if rate is None:
                rates.append(f"{name}: not available")
            else:
                rates.append(f"{name}: {'free' if rate == float('inf') else f'{rate:.3g}'} coverage per {unit}")
        return f"  more samples or longer thinking? {marginal.answer} ({'; '.join(rates)})"

    if plan.target is not None:
        answer = plan.target
        if answer.reached and answer.point is not None:
            lines.append(f"target {answer.target:g}: {describe(answer.point)}")
            for name, point in (("conservative", answer.conservative), ("optimistic", answer.optimistic)):
                ends = "bottom" if name == "conservative" else "top"
                text = describe(point) if point is not None else f"no (k, B) has an interval {ends} that reaches it"
                lines.append(f"  {name} ({ends} of the {plan.confidence:.0%} interval): {text}")
        else:
            lines.append(f"target {answer.target:g} not reached: {answer.note}")
        extra = marginal_text(answer.marginal)
        if extra:
            lines.append(extra)
    if plan.spend is not None:
        spent = plan.spend
        if spent.point is None:
            lines.append(f"spend {_cost_text(spent.spend, unit)}: {spent.note}")
        else:
            lines.append(f"spend {_cost_text(spent.spend, unit)}: best {describe(spent.point)}")
        extra = marginal_text(spent.marginal)
        if extra:
            lines.append(extra)
    table = plan.frontier_table()
    if table:
        lines.append(f"frontier ({len(plan.frontier)} points; spend -> best k, B, coverage):")
        lines.append(f"{'spend (' + unit + ')':>22} {'k':>7} {'B':>8} {'coverage':>9}")
        for point in table:
            lines.append(f"{point.cost:>22.4g} {point.k:>7,} {point.budget:>8,} {point.coverage:>9.3f}")
    return "\n".join(lines)
