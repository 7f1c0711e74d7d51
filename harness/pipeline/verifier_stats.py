"""The steps that measure and combine verifiers on a stored run: their agreement (``ttc agreement``), the error
rates that correct pass@k (``--verifier-error``, ``--verifier-error-from``) and ensembles of score sets
(``ttc ensemble``). The statistics are ``harness.metrics``' (agreement, verifier_error, ensemble); what is
here reads their inputs from the run and stores their outputs through its ``RunStore``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import OptionError, RunStoreError
from harness.core.jsonl import read_json_file
from harness.core.options import check_value
from harness.metrics.confidence_selectors import CONFIDENCE_SELECTORS
from harness.metrics.ensemble import DEFAULT_FOLDS, DEFAULT_L2, METHODS, Ensemble, fit_ensemble
from harness.metrics.verifier_error import ErrorRate, check_error_rate, error_rates_from_agreement
from harness.reporting.agreement import AgreementResult, run_agreement
from harness.reporting.selector_comparison import (
    JudgedSamples,
    load_judged_samples,
    mean_logprobs,
    sample_confidence,
    sample_scores,
)
from harness.store import RunStore
from harness.store.outputs import check_output_path

ErrorRates = tuple[ErrorRate, ErrorRate]


def agreement_files(result: AgreementResult) -> tuple[str, str]:
    """The names of the agreement's JSON and of its disagreeing samples' JSONL in the run directory."""
    return f"{result.file_stem}.json", f"{result.file_stem}.disagreements.jsonl"


def write_agreement(store: RunStore, result: AgreementResult, disagreements: str | Path | None = None) -> list[Path]:
    """Write the agreement into the run directory (``agreement-A-vs-B.json``) and its disagreeing samples, one
    JSON object a line, to ``disagreements`` (default: ``agreement-A-vs-B.disagreements.jsonl`` beside it)."""
    json_name, jsonl_name = agreement_files(result)
    target = Path(disagreements) if disagreements is not None else store.path / jsonl_name
    check_output_path(target, "disagreements", own_run=store.path, own_files=(jsonl_name,))
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in result.disagreements)
    with store.locked():
        written = [store.write_json(json_name, result.to_json())]
        if target.resolve().parent == store.path.resolve():
            written.append(store.write_file(target.name, lines))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(lines, encoding="utf-8")
            written.append(target)
    return written


def agreement(
    run_dir: str | Path,
    verdicts: str,
    against: str,
    *,
    threshold: float | str | None = None,
    confidence: float = 0.95,
    disagreements: str | Path | None = None,
) -> tuple[AgreementResult, list[Path]]:
    """``ttc agreement``: how often ``verdicts`` (a verdict set by key or verifier name, or a score set with
    ``threshold``) agrees with the reference ``against`` on the run (``harness.reporting.agreement``). Writes
    ``agreement-A-vs-B.json`` into the run and the disagreeing samples as JSONL (to ``disagreements``, default
    beside it); returns the result and the files written. Bad input is refused before anything is written."""
    check_value("run_dir", run_dir, Path)
    check_value("disagreements", disagreements, Path | None)
    with RunStore.open(run_dir) as store:
        result = run_agreement(store, verdicts, against, threshold=threshold, confidence=confidence)
        return result, write_agreement(store, result, disagreements)


# ---------------------------------------------------------------------------------------------------------
# Verifier error rates
# ---------------------------------------------------------------------------------------------------------


def parse_error_rates(value: str | Sequence[float | ErrorRate]) -> ErrorRates:
    """``--verifier-error FPR,FNR``: two rates in [0, 0.5), given as text ("0.05,0.1") or a pair (numbers are
    exact; ``ErrorRate`` objects carry their uncertainty)."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
        if len(parts) != 2:
            raise OptionError("verifier_error", f"give two rates, FPR,FNR (e.g. 0.05,0.1), got {value!r}")
        try:
            numbers: list[float | ErrorRate] = [float(part) for part in parts]
        except ValueError:
            raise OptionError(
                "verifier_error", f"rates must be numbers, FPR,FNR (e.g. 0.05,0.1), got {value!r}"
            ) from None
    else:
        numbers = list(value)
        if len(numbers) != 2:
            raise OptionError("verifier_error", f"give two rates (FPR, FNR), got {len(numbers)}")
    rates = []
    for which, rate in zip(("the false-positive rate", "the false-negative rate"), numbers):
        if isinstance(rate, ErrorRate):
            rates.append(rate)
            continue
        check_error_rate(rate, which)
        rates.append(ErrorRate.known(float(rate)))
    return rates[0], rates[1]


def error_rates_from_file(path: str | Path) -> ErrorRates:
    """``--verifier-error-from FILE``: the rates of an agreement's JSON (``ttc agreement``'s output, e.g. on an
    audited subset), with their uncertainty."""
    data = read_json_file(path, dict, where=str(path))
    try:
        return error_rates_from_agreement(data)
    except OptionError as error:
        raise OptionError("verifier_error_from", f"{path}: {error.message}") from None


def resolve_error_rates(
    verifier_error: str | Sequence[float | ErrorRate] | None = None, verifier_error_from: str | Path | None = None
) -> ErrorRates | None:
    """The verifier's error rates from ``verifier_error`` or ``verifier_error_from`` (not both; None: neither)."""
    if verifier_error is not None and verifier_error_from is not None:
        raise OptionError("verifier_error_from", "give --verifier-error or --verifier-error-from, not both")
    if verifier_error is not None:
        return parse_error_rates(verifier_error)
    if verifier_error_from is not None:
        return error_rates_from_file(verifier_error_from)
    return None


def error_rate_from_json(data: Mapping[str, Any]) -> ErrorRate:
    """An ``ErrorRate`` as ``ErrorRate.to_dict()`` wrote it (a summary's ``corrected`` entry)."""
    parameters = data.get("parameters") or (0.0, 0.0)
    return ErrorRate(
        float(data["value"]), str(data.get("distribution", "known")), (float(parameters[0]), float(parameters[1]))
    )


def stored_error_rates(summary: Mapping[str, Any] | None) -> ErrorRates | None:
    """The rates ``ttc analyze --verifier-error`` recorded in a summary, if it did."""
    corrected = (summary or {}).get("corrected")
    if not isinstance(corrected, Mapping):
        return None
    return error_rate_from_json(corrected["false_positive_rate"]), error_rate_from_json(
        corrected["false_negative_rate"]
    )


# ---------------------------------------------------------------------------------------------------------
# Ensembles
# ---------------------------------------------------------------------------------------------------------

# Inputs an ensemble can read besides score sets: statistics recorded at sampling time (no verdicts involved).
SAMPLE_FEATURES = {
    "likelihood": "mean token log-probability",
    "conf-mean": "mean token confidence",
    "conf-min-window": "lowest sliding-window confidence",
    "conf-tail": "tail confidence",
    "conf-bottom10": "bottom-10% window confidence",
}


def parse_inputs(score_sets: str | Sequence[str]) -> list[str]:
    """``--score-sets a,b,c``: at least two distinct names."""
    names = [part.strip() for part in score_sets.split(",")] if isinstance(score_sets, str) else list(score_sets)
    names = [name for name in names if name]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise OptionError("score_sets", f"{repeated} listed twice")
    if len(names) < 2:
        raise OptionError("score_sets", f"an ensemble combines at least two score sets, got {names}")
    return names


def ensemble_inputs(store: RunStore, judged: JudgedSamples, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Each input's value per judged sample: a score set's per-sample scores, or a sample feature. Score sets
    must cover the same samples (and every judged one)."""
    sets = store.score_sets()
    unknown = [name for name in names if name not in sets and name not in SAMPLE_FEATURES]
    if unknown:
        raise OptionError(
            "score_sets",
            f"{store.path} has no score set {unknown[0]!r}; score sets: {sorted(sets) or 'none'}; sample features: "
            f"{', '.join(SAMPLE_FEATURES)}",
        )
    covered = {name: store.scores(name).ranges() for name in names if name in sets}
    if len({json.dumps(sorted(ranges.items())) for ranges in covered.values()}) > 1:
        sizes = ", ".join(
            f"{name}: {sum(stop - start for spans in ranges.values() for start, stop in spans)} samples"
            for name, ranges in covered.items()
        )
        raise OptionError("score_sets", f"the score sets cover different samples ({sizes})")
    inputs: dict[str, np.ndarray] = {}
    for name in names:
        if name in sets:
            try:
                inputs[name], _ = sample_scores(store, judged, name, "min", use_steps=False)
            except RunStoreError as error:
                raise OptionError("score_sets", f"the score sets cover different samples: {error}") from None
        else:
            try:
                if name == "likelihood":
                    inputs[name] = mean_logprobs(store, judged)
                else:
                    statistic = {"conf-mean": "mean", **CONFIDENCE_SELECTORS}[name]
                    inputs[name], _ = sample_confidence(store, judged, statistic)
            except OptionError as error:  # said of the selectors that read the same feature
                raise OptionError("score_sets", f"{name}: {error.message}") from None
    return inputs


def ensemble(
    run_dir: str | Path,
    score_sets: str | Sequence[str],
    *,
    name: str,
    method: str = "logistic",
    verifier: str | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    l2: float = DEFAULT_L2,
) -> Ensemble:
    """``ttc ensemble``: combine score sets (and sample features: likelihood, conf-*) into score set ``name``,
    cross-fitted across problems against the verdicts of ``verifier`` (``harness.metrics.ensemble``): a
    problem's combined score never uses its own labels. Stored through the run's store with the fold-wise fit
    in its description; then ``orm=NAME`` and ``weighted=NAME`` select by it. Everything is checked, and the
    ensemble fitted, before anything is written."""
    check_value("run_dir", run_dir, Path)
    check_value("name", name, str)
    names = parse_inputs(score_sets)
    if method not in METHODS:
        raise OptionError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    with RunStore.open(run_dir) as store:
        if name in store.score_sets() and store.scores(name).ranges():
            raise OptionError("name", f"{store.path} holds score set {name!r} already; choose another name")
        if name in names:
            raise OptionError("name", f"{name!r} is one of the ensemble's inputs; choose another name")
        judged = load_judged_samples(store, verifier)
        inputs = ensemble_inputs(store, judged, names)
        problem_of = np.repeat(np.arange(len(judged.problem_ids)), judged.sizes)
        fitted = fit_ensemble(inputs, judged.correct, problem_of, method=method, folds=folds, seed=seed, l2=l2)
        description = {
            "kind": "ensemble",
            "method": method,
            "inputs": names,
            "labels": judged.verdict_set,
            "folds": folds,
            "seed": seed,
            "l2": l2,
            "fit": fitted.to_dict(),
        }
    problem_ids = np.asarray(judged.problem_ids, dtype=object)[problem_of]
    with RunStore.open(run_dir, writable=True) as writer:
        writer.register_score_set(name, description)
        scores = writer.scores(name)
        writer.write_scores(
            name,
            scores.table(
                {
                    "problem_id": problem_ids.tolist(),
                    "sample_idx": judged.sample_idx.tolist(),
                    "score": fitted.scores.tolist(),
                    "step_scores": [None] * len(problem_ids),
                }
            ),
        )
    return fitted
