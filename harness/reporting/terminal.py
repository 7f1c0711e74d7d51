"""Human-facing output of a run: the compact terminal table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """Print pass@k with intervals, the fitted law and its forecast, as a compact table."""
    console = console or Console()
    confidence = int(round(100 * summary["confidence"]))
    title = (
        f"{summary['task']} · {summary['model']} · {summary['problems']} problems × "
        f"{summary['samples_per_problem']['min']} samples · verifier {summary['verifier'].get('name')}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("k", justify="right")
    table.add_column("pass@k", justify="right")
    table.add_column(f"{confidence}% interval", justify="right")
    for row in summary["pass_at_k"]:
        table.add_row(str(row["k"]), f"{row['coverage']:.3f}", f"[{row['low']:.3f}, {row['high']:.3f}]")
    console.print(table)
    lines = [
        f"pass@1 = {summary['pass_at_1']:.3f}; problems solved at least once: "
        f"{summary['solved_problems']}/{summary['problems']}"
    ]
    fit = summary.get("fit")
    if fit:
        lines.append(
            f"fit: log(coverage) = {fit['a']:.4g} * k^{fit['b']:.4g}  (R^2 on log coverage {fit['r2']:.3f})"
        )
    forecast = summary.get("forecast")
    if forecast:
        lines.append(
            f"forecast: coverage@{forecast['k']} = {forecast['coverage']:.3f} "
            f"[{forecast['low']:.3f}, {forecast['high']:.3f}] ({forecast['method']})"
        )
    reasons = ", ".join(f"{name} {count}" for name, count in sorted(summary["reasons"].items(), key=lambda x: -x[1]))
    lines.append(f"verdicts: {reasons}")
    usage = summary.get("usage") or {}
    if usage.get("output_tokens_per_sample") is not None:
        rate = usage.get("output_tokens_per_second")
        lines.append(
            f"tokens: {usage['output_tokens_per_sample']:.0f} per sample"
            + (f", {rate:.0f} tok/s measured" if rate else "")
        )
    for line in lines:
        console.print(line)
