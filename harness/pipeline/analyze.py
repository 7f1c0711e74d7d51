"""The analyze step: a run's summary (coverage and pass^k with intervals, avg@n, law, forecast, budget, groups,
usage, reasoning, and after a sweep the samples x thinking surface) written to ``summary.json``, and
``coverage.png``.

Everything computed about a run is computed here, once: the power law and the forecasting model are each
fitted once (``fit_laws``), and the summary's ``fit``, ``forecast`` and ``budget`` and the figure all come from
those fits. Reports read the summary; they fit nothing.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from harness.forecasting.costs import Usage
from harness.forecasting.fitted import FittedLaws, fit_laws
from harness.metrics.analysis import coverage_summary, group_summaries, groupable_fields, reasons_histogram
from harness.metrics.counts import Counts
from harness.metrics.reasoning import reasoning_figures
from harness.metrics.verifier_error import ErrorRate, corrected_coverage
from harness.pipeline.results import REASONING_FIGURES, ReasoningSummary, Summary
from harness.pipeline.surface import run_surface, surface_summary
from harness.reporting.run_counts import judged_tokens, run_counts
from harness.store import RunStore
from harness.store.completeness import completeness
from verifiers.base import TRUNCATED_THINKING


def analyze_run(
    store: RunStore,
    verifier: str | None = None,
    error_rates: tuple[ErrorRate, ErrorRate] | None = None,
    write: bool = True,
) -> Summary:
    """Compute the run's summary, write ``summary.json`` and ``coverage.png``, holding the run's lock (refused
    while another process writes into the run). ``write=False`` computes it without writing anything (a run
    directory this process may not write into: an archived, read-only copy).

    The summary's ``completeness`` says what part of the run it covers: its ``note`` names what a summary of
    part of the run leaves out (samples without verdicts, problems without any), and is None otherwise. It
    records what it summarised (``run_id``, ``config_hash``, ``verdict_set`` and ``fingerprint``: the shards
    read, ``RunStore.content_fingerprint``), so a summary.json of another run or of another state is known.
    ``error_rates``: the verifier's (false-positive, false-negative) rates: the summary's ``corrected`` entry
    then holds pass@k corrected for them beside the raw curve (``corrected_summary``).
    """
    with store.locked() if write else store.locked_for_reading():
        return _analyze_locked(store, verifier, error_rates, write)


def corrected_summary(counts: Counts, error_rates: tuple[ErrorRate, ErrorRate]) -> dict[str, Any]:
    """pass@k at the summary's k corrected for the verifier's error rates (``harness.metrics.verifier_error``),
    with the raw curve beside it; its ``forecast`` is the corrected model's at the summary's forecast k."""
    corrected = corrected_coverage(counts.num_samples, counts.num_correct, *error_rates)
    entry = corrected.to_dict()
    k = 10 * int(np.min(counts.num_samples))
    low, high = corrected.curve_interval([k])
    entry["forecast"] = {
        "k": k,
        "coverage": float(corrected.curve([k])[0]),
        "low": float(low[0]),
        "high": float(high[0]),
    }
    entry["forecast"].update(method="corrected", confidence=corrected.confidence)
    return entry


def _analyze_locked(
    store: RunStore, verifier: str | None, error_rates: tuple[ErrorRate, ErrorRate] | None, write: bool
) -> Summary:
    from harness.reporting.figures import figure_png, plot_run_coverage  # matplotlib: imported when drawing

    key = store.resolve_verdict_key(verifier)
    counts = run_counts(store, key)
    verdicts = store.read_verdicts(key, columns=["reason"])
    manifest = store.manifest
    summary: dict[str, Any] = {
        "run": str(store.path),
        "task": manifest["config"]["task"],
        "model": manifest.get("model", {}).get("name"),
        "config_hash": manifest["config_hash"],
        "run_id": store.run_id,
        "fingerprint": store.content_fingerprint(key),
        "sampling": manifest["config"].get("sampling"),  # absent for imported samples
        "verifier": store.verdict_sets()[key],
        "verdict_set": key,
        "completeness": completeness(store, key).to_json(),
        "reasons": reasons_histogram(verdicts.column("reason").to_pylist()),
    }
    counts_summary, laws = summarize_counts(counts)
    summary.update(counts_summary)
    summary["usage"] = store.usage()
    summary["budget"] = laws.budget(Usage.from_mapping(summary["usage"]))
    summary["finish_reasons"] = finish_reasons(store)
    if error_rates is not None:
        summary["corrected"] = corrected_summary(counts, error_rates)
    summary["reasoning"] = reasoning_summary(store, key)
    summary["budget_forcing"] = budget_forcing_summary(store)
    measured = run_surface(store, key)
    summary["surface"] = None if measured is None else surface_summary(*measured)
    if "adaptive_pilot" in manifest:
        summary["adaptive_pilot"] = manifest["adaptive_pilot"]
    if write:
        store.write_json("summary.json", summary)
        title = f"{summary['task']} · {summary['model']}"
        store.write_file("coverage.png", figure_png(lambda path: plot_run_coverage(path, laws, title=title)))
    return cast(Summary, summary)


def summarize_counts(counts: Counts) -> tuple[Summary, FittedLaws]:
    """What counts alone determine of a summary (coverage with intervals, the law and the forecast, groups),
    and the fitted laws it came from."""
    laws = fit_laws(counts)
    groups = {name: group_summaries(counts, name) for name in groupable_fields(counts)}
    summary = {**coverage_summary(counts), **laws.summary(), "groups": groups}
    return cast(Summary, summary), laws


def reasoning_summary(store: RunStore, key: str) -> ReasoningSummary:
    """The ``reasoning`` object of a summary: how the verdict set judged (mode and tags, from its description),
    how the run decided when it sampled (the manifest's record), and with reasoning on what the thinking cost
    and bought (``harness.metrics.reasoning.reasoning_figures``; samples cut inside their thinking are the
    verdicts ``truncated_thinking``)."""
    judged = store.verdict_sets()[key].get("reasoning")
    tags = judged.get("think_tags") if isinstance(judged, dict) and judged.get("mode") == "on" else None
    mode = "off" if tags is None else "on"
    figures: dict[str, Any] = dict.fromkeys(REASONING_FIGURES)
    note: str | None = "completions judged whole (reasoning off)"
    if mode == "on":
        tokens = judged_tokens(store, key)
        figures = reasoning_figures(
            tokens.thinking, tokens.answer, tokens.correct, tokens.reasons == TRUNCATED_THINKING
        )
        known, samples = figures["split_known"], figures["samples"]
        note = None
        if known == 0:
            note = (
                "thinking and answer tokens unknown: the samples were stored before ttc counted them, or the "
                "engine could not count them"
            )
        elif known < samples:
            note = f"thinking and answer tokens known for {known} of {samples} samples"
    summary = {
        "mode": mode,
        "think_tags": tags,
        "sampled": store.manifest.get("reasoning"),
        **figures,
        "note": note,
    }
    return cast(ReasoningSummary, summary)


def budget_forcing_summary(store: RunStore) -> dict[str, Any] | None:
    """The run's budget forcing (``sample_defining.budget_forcing``) and how many samples it forced; None for a
    run sampled without it."""
    settings = (store.manifest["config"].get("sample_defining") or {}).get("budget_forcing")
    if not settings:
        return None
    forced = store.read_samples(columns=["forced"]).column("forced").to_pylist()
    return {**settings, "samples": len(forced), "forced": sum(bool(value) for value in forced)}


def finish_reasons(store: RunStore) -> dict[str, int]:
    """How the run's samples ended (stop, length, ...; unknown where not recorded), most frequent first."""
    finish = store.read_samples(columns=["finish_reason"]).column("finish_reason").to_pylist()
    tally = reasons_histogram(["unknown" if value is None else str(value) for value in finish])
    return dict(sorted(tally.items(), key=lambda item: -item[1]))
