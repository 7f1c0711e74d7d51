"""Figures: coverage against k with each law's fit and forecast band; the budget curve (coverage vs cost); a
reasoning model's thinking (tokens of correct vs wrong samples, accuracy against thinking length)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from harness.forecasting.costs import Cost, Prices, Usage, cost_of
from harness.forecasting.fitted import FORECAST_FACTOR, FittedLaws
from harness.forecasting.forecast import CurveForecast, forecast_curve
from harness.forecasting.laws import PowerLaw
from harness.metrics.analysis import MeasuredCoverage, measured_coverage
from harness.metrics.counts import Counts
from harness.metrics.estimators import log_spaced_ks

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def figure_png(draw: Callable[[Path], Any]) -> bytes:
    """The PNG that ``draw(path)`` saves, as bytes (drawn into a temporary folder), for the run store to write
    atomically or a report to embed."""
    with tempfile.TemporaryDirectory(prefix="ttc-figure-") as folder:
        path = Path(folder) / "figure.png"
        draw(path)
        return path.read_bytes()


def observed_curve(counts: Counts, confidence: float = 0.9) -> MeasuredCoverage:
    """(ks, coverage, low, high) of the sampled range for a figure: measured coverage on a log grid of 8 k
    per decade (denser than the summary's powers of two, so the points trace the curve)."""
    return measured_coverage(counts, log_spaced_ks(int(counts.num_samples.min()), points_per_decade=8), confidence)


def forecast_ks(sampled_k: int, forecast_k: int, points_per_decade: int = 12) -> np.ndarray:
    """A log grid from 1 to ``forecast_k`` that includes the sampled k."""
    ks = log_spaced_ks(max(forecast_k, sampled_k), points_per_decade)
    return np.unique(np.append(ks, sampled_k))


def law_curves(
    counts: Counts, methods: Sequence[str], forecast_k: int, confidence: float = 0.9
) -> dict[str, CurveForecast]:
    """Each method's forecast over a log grid up to ``forecast_k`` (methods that cannot fit are left out)."""
    ks = forecast_ks(int(counts.num_samples.min()), forecast_k)
    curves = {}
    for method in methods:
        try:
            curves[method] = forecast_curve(counts, ks, method, confidence)
        except ValueError:
            continue
    return curves


def plot_coverage(
    path: str | Path,
    ks: Sequence[float] | np.ndarray,
    mean: Sequence[float] | np.ndarray,
    low: Sequence[float] | np.ndarray,
    high: Sequence[float] | np.ndarray,
    laws: Mapping[str, CurveForecast | PowerLaw] | None = None,
    forecast_k: int | None = None,
    title: str | None = None,
) -> Path:
    """Coverage against k (log axis): measured points with interval bars, each law's curve, forecast bands.

    ``laws`` maps a label to a fitted ``PowerLaw`` (its curve is drawn from k = 1 to ``forecast_k``) or to a
    ``CurveForecast`` (its curve, dashed and with a shaded interval band beyond the sampled k; for counts too
    few for a law, method ``bound``, only the band: what the samples alone allow, hatched, with no curve).
    """
    ks = np.asarray(ks, dtype=np.float64)
    mean, low, high = (np.asarray(values, dtype=np.float64) for values in (mean, low, high))
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.errorbar(
        ks,
        mean,
        yerr=[mean - low, high - mean],
        fmt="o",
        color="black",
        markersize=3,
        capsize=2,
        label="measured pass@k",
        zorder=3,
    )
    right = max(float(ks.max()), float(forecast_k or 0))
    for index, (label, law) in enumerate((laws or {}).items()):
        color = f"C{index}"
        if isinstance(law, PowerLaw):
            grid = np.logspace(0, np.log10(right), 200)
            axes.plot(grid, law.predict(grid), color=color, label=f"{label} (a={law.a_:.3g}, b={law.b_:.3g})")
            continue
        inside = law.ks <= law.sampled_k
        beyond = law.ks >= law.sampled_k
        if law.method == "bound":  # from the first k beyond the samples: at n itself the points are measured
            bounded = law.ks > law.sampled_k
            axes.fill_between(
                law.ks[bounded],
                law.low[bounded],
                law.high[bounded],
                facecolor="none",
                edgecolor=color,
                hatch="//",
                linewidth=0,
                label="no forecast (too few successes for a law): bounds",
            )
            axes.plot(law.ks[bounded], law.high[bounded], color=color, linewidth=1)
            continue
        if law.method != label:
            label = f"{label}: {law.method}"
        axes.plot(law.ks[inside], law.coverage[inside], color=color, label=label)
        axes.plot(law.ks[beyond], law.coverage[beyond], color=color, linestyle="--")
        axes.fill_between(law.ks[beyond], law.low[beyond], law.high[beyond], color=color, alpha=0.15)
    if forecast_k:
        axes.axvline(forecast_k, color="grey", linestyle=":", linewidth=1)
    axes.set_xlim(0.8, right * 1.2)
    return _save(
        figure,
        axes,
        path,
        "samples per problem k",
        "coverage (pass@k)",
        title or "coverage vs samples; bands: forecast intervals",
    )


def plot_run_coverage(path: str | Path, fitted: FittedLaws, title: str, forecast_factor: int = FORECAST_FACTOR) -> Path:
    """coverage.png of a run: measured pass@k with 95% intervals, the fitted power law (the summary's ``fit``)
    and the fitted forecast model with its band up to ``forecast_factor`` x the sampled k."""
    forecast_k = forecast_factor * fitted.sampled_k
    laws: dict[str, CurveForecast | PowerLaw] = {}
    if fitted.power_law is not None:
        laws["power law"] = fitted.power_law
    curve = fitted.curve(forecast_ks(fitted.sampled_k, forecast_k))
    if curve is not None:
        laws[fitted.method] = curve
    return plot_coverage(path, *observed_curve(fitted.counts, 0.95), laws=laws, forecast_k=forecast_k, title=title)


def plot_budget(
    path: str | Path,
    curve: CurveForecast,
    counts: Counts,
    usage: Usage | None = None,
    prices: Prices | None = None,
    target: float | None = None,
    title: str | None = None,
) -> Path:
    """Coverage (with its forecast band) against the cost of k samples per problem: money when a price and
    the token figures are known, else generated tokens, else samples."""
    usage, prices = usage or Usage(), prices or Prices()
    unit, x = _cost_axis([cost_of(int(k), counts, usage, prices) for k in curve.ks])
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(x, curve.coverage, color="C0", label=f"forecast ({curve.method})")
    axes.fill_between(x, curve.low, curve.high, color="C0", alpha=0.2, label="interval")
    if target is not None:
        axes.axhline(target, color="grey", linestyle=":", linewidth=1, label=f"target {target:.0%}")
    return _save(figure, axes, path, unit, "coverage", title or "budget curve: coverage vs cost")


def _cost_axis(costs: Sequence[Cost]) -> tuple[str, np.ndarray]:
    """The first cost every k has a figure for, and those figures: money, else generated tokens, else samples."""
    for unit, attribute in (("money", "money"), ("generated tokens", "generated_tokens")):
        values = [getattr(cost, attribute) for cost in costs]
        if all(value is not None for value in values):
            return unit, np.array(values, dtype=np.float64)
    return "samples", np.array([cost.samples for cost in costs], dtype=np.float64)


def _save(figure: Figure, axes: Axes, path: str | Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Shared finish of both figures: log x axis, coverage y axis, grid, legend, PNG."""
    axes.set_xscale("log")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8, loc="best")
    return _written(figure, path)


def _written(figure: Figure, path: str | Path) -> Path:
    """Lay ``figure`` out, save it as a PNG at ``path`` and close it."""
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_compared_coverage(
    path: str | Path,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    xlabel: str,
    title: str,
    laws: Mapping[str, PowerLaw] | None = None,
    right: float | None = None,
) -> Path:
    """Several runs' measured coverage on one figure: label -> (x, coverage, low, high), each a line with
    its interval band; ``laws`` adds a run's fitted power law (x = k) as a dotted line up to ``right``."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for index, (label, (x, mean, low, high)) in enumerate(curves.items()):
        color = f"C{index}"
        axes.plot(x, mean, marker="o", markersize=3, color=color, label=label)
        axes.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
        law = (laws or {}).get(label)
        if law is not None:
            grid = np.logspace(0, np.log10(right or float(np.max(x))), 200)
            axes.plot(
                grid,
                law.predict(grid),
                color=color,
                linestyle=":",
                linewidth=1,
                label=f"{label}: power law (a={law.a_:.3g}, b={law.b_:.3g})",
            )
    return _save(figure, axes, path, xlabel, "coverage (pass@k)", title)


def plot_reasoning(
    path: str | Path,
    thinking: np.ndarray,
    correct: np.ndarray,
    bins: Sequence[Mapping[str, Any]],
    truncated_share: float | None,
) -> Path:
    """A reasoning model's thinking: on the left the thinking tokens of correct and of wrong samples (two
    histograms over the same bins; samples cut off in their thinking are among the wrong ones), on the right
    accuracy in bins of thinking length (``accuracy_by_thinking`` of the summary)."""
    thinking = np.asarray(thinking, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    known = np.isfinite(thinking)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    edges = np.histogram_bin_edges(thinking[known], bins=30) if known.any() else np.array([0.0, 1.0])
    for selected, label, color in ((correct, "correct", "C2"), (~correct, "wrong", "C3")):
        values = thinking[known & selected]
        left.hist(values, bins=edges, color=color, alpha=0.55, label=f"{label} ({values.size})")
    cut = "" if truncated_share is None else f"; {truncated_share:.0%} cut off in their thinking"
    left.set_title(f"thinking tokens of correct vs wrong samples{cut}", fontsize=10)
    left.set_xlabel("thinking tokens")
    left.set_ylabel("samples")
    left.legend(fontsize=8)
    middles = [(row["low"] + row["high"]) / 2 for row in bins]
    right.plot(middles, [row["accuracy"] for row in bins], marker="o", color="C0")
    for row, middle in zip(bins, middles):
        right.hlines(row["accuracy"], row["low"], row["high"], color="C0", alpha=0.4)
        right.annotate(
            str(row["samples"]),
            (middle, row["accuracy"]),
            fontsize=7,
            xytext=(0, 4),
            ha="center",
            textcoords="offset points",
        )
    right.set_ylim(0, 1.02)
    right.set_xlabel("thinking tokens (bins of about equal samples; labels: samples)")
    right.set_ylabel("accuracy")
    right.set_title("accuracy against thinking length", fontsize=10)
    for axes in (left, right):
        axes.grid(alpha=0.3)
    return _written(figure, path)


def plot_surface(path: str | Path, surface: Mapping[str, Any]) -> Path:
    """The samples x thinking surface (``summary.json["surface"]``): on the left coverage against k, one curve
    per thinking budget with its interval; on the right coverage against generated tokens per problem (k x the
    budget's tokens per sample), the same curves, with the frontier (the best (k, B) for each spend) marked."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.9, len(surface["per_budget"])))
    for entry, color in zip(surface["per_budget"], colors):
        rows = entry["pass_at_k"]
        ks = np.array([row["k"] for row in rows], dtype=np.float64)
        coverage = np.array([row["coverage"] for row in rows])
        label = f"B = {entry['budget']:,}"
        left.plot(ks, coverage, marker="o", markersize=3, color=color, label=label)
        left.fill_between(ks, [row["low"] for row in rows], [row["high"] for row in rows], color=color, alpha=0.15)
        if entry["tokens_per_sample"]:
            right.plot(ks * entry["tokens_per_sample"], coverage, marker="o", markersize=3, color=color, label=label)
    frontier = surface.get("frontier") or []
    if frontier:
        right.step(
            [point["cost"] for point in frontier],
            [point["coverage"] for point in frontier],
            where="post",
            color="black",
            linewidth=1,
            label="frontier",
        )
        right.scatter([p["cost"] for p in frontier], [p["coverage"] for p in frontier], color="black", s=10, zorder=3)
    left.set_xlabel("samples per problem (k)")
    right.set_xlabel("generated tokens per problem (k x tokens per sample at B)")
    left.set_title("coverage against k, one curve per thinking budget", fontsize=10)
    right.set_title("coverage against tokens; the frontier marked", fontsize=10)
    for axes in (left, right):
        axes.set_xscale("log")
        axes.set_ylim(0, 1.02)
        axes.set_ylabel("coverage (pass@k)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    return _written(figure, path)
