"""The analyze step: a run's summary (coverage with intervals, law, forecast, groups, usage) written to
``summary.json``, and ``coverage.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.forecasting.forecast import fit_and_forecast
from harness.metrics.analysis import coverage_summary, group_summaries, groupable_fields, reasons_histogram
from harness.store import RunStore


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

