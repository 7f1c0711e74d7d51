"""Selectors next to coverage, for people: the ``compare_verifiers`` result as a terminal table, a figure
(``verifiers.png``) and ``verifiers.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.store import RunStore


def write_comparison(result: dict[str, Any], store: RunStore) -> tuple[Path, Path]:
    """Write ``verifiers.json`` and ``verifiers.png`` into the run directory (under its writer lock)."""
    from harness.reporting.figures import figure_png  # matplotlib: imported when a figure is drawn

    with store.locked():
        json_path = store.write_json("verifiers.json", result)
        png_path = store.write_file("verifiers.png", figure_png(lambda path: plot_comparison(result, path)))
    return json_path, png_path


def plot_comparison(result: dict[str, Any], path: Path) -> None:
    """Coverage and each selector's accuracy@k with interval bands, on a log-k axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ks = np.asarray(result["ks"])
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for entry in result["selectors"]:
        coverage = entry["kind"] == "coverage"
        style = {"color": "black", "linestyle": "--", "linewidth": 2} if coverage else {"linewidth": 1.6}
        label = "coverage (pass@k)" if coverage else entry["selector"]
        (line,) = axes.plot(ks, entry["accuracy"], marker="o", markersize=3, label=label, **style)
        axes.fill_between(ks, entry["low"], entry["high"], color=line.get_color(), alpha=0.15, linewidth=0)
    axes.set_xscale("log", base=2)
    if len(ks) <= 16:
        axes.set_xticks(ks)
    axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xlabel("samples per problem k")
    axes.set_ylabel("accuracy@k (coverage: pass@k)")
    lowest = min(min(entry["low"]) for entry in result["selectors"])
    axes.set_ylim(max(0.0, np.floor(10 * lowest - 0.5) / 10), 1.0)
    axes.grid(True, which="major", alpha=0.3)
    percent = round(100 * result["confidence"])
    axes.set_title(
        f"{result.get('model') or result['run']}\n{result['problems']} problems, "
        f"{result['samples_per_problem']['min']} samples each; bands: {percent}% intervals over problems",
        fontsize=9,
    )
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    plt.close(figure)


def print_comparison(result: dict[str, Any], console: Any = None) -> None:
    """Rows k, columns selectors; cells 'value [low, high]'."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    percent = round(100 * result["confidence"])
    table = Table(
        title=f"{result['run']} · {result['problems']} problems · accuracy@k [{percent}% interval over problems]",
        title_justify="left",
    )
    table.add_column("k", justify="right")
    for entry in result["selectors"]:
        table.add_column(entry["selector"], justify="right")
    for row, k in enumerate(result["ks"]):
        cells = [f"{e['accuracy'][row]:.3f} [{e['low'][row]:.3f}, {e['high'][row]:.3f}]" for e in result["selectors"]]
        table.add_row(str(k), *cells)
    console.print(table)
    for entry in result["selectors"]:
        notes = [entry["description"]]
        if entry.get("score_set"):
            notes.append(
                f"scores {entry['score_set']}" + (f" ({entry['aggregate']} of steps)" if entry.get("aggregate") else "")
            )
        if entry.get("judge_tokens"):
            tokens = entry["judge_tokens"]
            notes.append(
                f"judge {entry['judge']}: {tokens['calls']} calls, {tokens['prompt_tokens']} prompt and "
                f"{tokens['output_tokens']} reply tokens, {entry['unparsed_picks']} picks unparsed"
            )
        if entry.get("confidence"):
            notes.append(f"confidence: {entry['confidence']}")
        notes.append(entry["method"])
        if entry["subsets"]:
            notes.append(
                f"{entry['subsets']} random subsets per problem, Monte-Carlo s.e. <= {max(entry['monte_carlo_se']):.4f}"
            )
        console.print(f"{entry['selector']}: " + "; ".join(notes))
