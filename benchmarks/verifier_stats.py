"""Figure 8: verifier statistics at scale (issue 21): agreement, corrected pass@k and ensemble fitting on 1,000
problems x 1,000 samples, each under 5 s on 2 cores; and, without targets, the confidence accumulator's cost
per token and the conf-majority selector.

The inputs are synthetic and seeded: per-problem true success rates (20% never solved, the rest Beta(0.5, 1.5)),
a verifier with a false-positive rate of 0.05 and a false-negative rate of 0.1 judged against the truth, two
reward scores and a confidence feature with per-problem offsets, answer ids for votes. Each part is timed on
its own as the median of repeats (``python -m benchmarks.verifier_stats`` prints them; ``python -m benchmarks
--only verifier-stats`` records them in ``results/bench/verifier-stats.json``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
from scipy.special import betaln

from benchmarks.common import median
from benchmarks.suite import FigureResult, Row
from harness.engines.confidence import ConfidenceAccumulator
from harness.metrics.agreement import agreement
from harness.metrics.confidence_selectors import confidence_filtered_vote_curves
from harness.metrics.ensemble import fit_ensemble
from harness.metrics.estimators import log_spaced_ks
from harness.metrics.verifier_error import ErrorRate, corrected_coverage

FULL_SHAPE = (1000, 1000)
QUICK_SHAPE = (100, 100)
TARGET_SECONDS = 5.0
FALSE_POSITIVE_RATE = 0.05
FALSE_NEGATIVE_RATE = 0.1
ACCUMULATOR_TOKENS = 32_768
QUICK_ACCUMULATOR_TOKENS = 2048
QUICK_SUBSETS = 16  # conf-majority permutations in quick mode (the default would give small inputs 2000)


def synthetic_judgements(problems: int, samples: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Flat per-sample arrays (problem-major): problem, truth, verdicts, scores, confidence, answer ids."""
    rng = np.random.default_rng(seed)
    rate = rng.beta(0.5, 1.5, problems)
    rate[rng.random(problems) < 0.2] = 0.0  # so the true pass@k tends to 0.8
    problem = np.repeat(np.arange(problems), samples)
    truth = rng.random(problem.size) < rate[problem]
    verdicts = np.where(
        truth, rng.random(problem.size) >= FALSE_NEGATIVE_RATE, rng.random(problem.size) < FALSE_POSITIVE_RATE
    )
    offset = rng.normal(0, 0.5, problems)[problem]
    answers = np.where(truth, 0, rng.integers(1, 6, problem.size))
    answers[rng.random(problem.size) < 0.02] = -1
    return {
        "problem": problem,
        "truth": truth,
        "verdicts": verdicts,
        "reward": 1.0 * truth + offset + rng.normal(size=problem.size),
        "judge": 0.8 * truth + rng.normal(size=problem.size),
        "confidence": 0.4 * truth + offset + rng.normal(size=problem.size),
        "answers": answers,
    }


def _timed(function, repeats: int) -> tuple[float, Any]:
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return median(seconds), result


def run_verifier_stats(
    problems: int,
    samples: int,
    repeats: int = 3,
    seed: int = 0,
    tokens: int = ACCUMULATOR_TOKENS,
    subsets: int | None = None,
) -> dict[str, Any]:
    """The timed parts (medians of ``repeats``, in ``seconds``; the accumulator's in microseconds per token)
    and what each computed."""
    data = synthetic_judgements(problems, samples, seed)
    problem = data["problem"]
    parts: dict[str, float] = {}
    results: dict[str, Any] = {}

    parts["agreement"], found = _timed(
        lambda: agreement(data["verdicts"], data["truth"], problem, scores=data["reward"]), repeats
    )
    results["agreement"] = {
        "false_positive_rate": found.false_positive_rate.value,
        "false_negative_rate": found.false_negative_rate.value,
        "kappa": found.kappa.value,
        "auroc": found.auroc.value,
    }

    num_samples = np.full(problems, samples)
    num_correct = np.bincount(problem, weights=data["verdicts"], minlength=problems).astype(np.int64)
    audit = {  # the rates as an audit of 400 truly wrong and 300 truly correct samples found them
        "false_positive_rate": ErrorRate.from_counts(20, 400),
        "false_negative_rate": ErrorRate.from_counts(30, 300),
    }
    parts["corrected_pass_at_k"], corrected = _timed(
        lambda: corrected_coverage(
            num_samples, num_correct, audit["false_positive_rate"], audit["false_negative_rate"]
        ),
        repeats,
    )
    ks = corrected.ks.astype(np.float64)
    results["corrected_pass_at_k"] = {
        "ks": corrected.ks.tolist(),
        "corrected": corrected.corrected.tolist(),
        "low": corrected.low.tolist(),
        "high": corrected.high.tolist(),
        "raw": corrected.raw.tolist(),
        # the law the problems were drawn from: 0.8 (1 - E[(1 - theta)^k]), theta ~ Beta(0.5, 1.5)
        "true": (0.8 * (1 - np.exp(betaln(0.5, 1.5 + ks) - betaln(0.5, 1.5)))).tolist(),
        "resamples": corrected.resamples,
    }

    inputs = {"reward": data["reward"], "judge": data["judge"], "confidence": data["confidence"]}
    for method in ("logistic", "naive-bayes", "rank-mean"):
        parts[f"ensemble_{method}"], ensemble = _timed(
            lambda method=method: fit_ensemble(inputs, data["verdicts"], problem, method=method), repeats
        )
        results[f"ensemble_{method}"] = {"auroc": ensemble.auroc, "log_loss": ensemble.log_loss}

    values = np.log(np.random.default_rng(seed).random(tokens))
    for chunk in (1, 16, 256):
        pieces = [values[start : start + chunk] for start in range(0, values.size, chunk)]

        def stream(pieces: list[np.ndarray] = pieces) -> None:
            accumulator = ConfidenceAccumulator(max_tokens=tokens)
            for piece in pieces:
                accumulator.add(piece)
            accumulator.result()

        seconds, _ = _timed(stream, repeats)
        parts[f"confidence_per_token_us_chunk_{chunk}"] = seconds / tokens * 1e6

    split = np.cumsum(np.full(problems - 1, samples))
    answers, correct, confidence = (np.split(data[key], split) for key in ("answers", "verdicts", "confidence"))
    parts["conf_majority_10"], vote = _timed(
        lambda: confidence_filtered_vote_curves(
            answers, correct, confidence, log_spaced_ks(samples), eta=10, subsets=subsets
        ),
        repeats,
    )
    results["conf_majority_10"] = {"accuracy": vote.mean().tolist(), "subsets": vote.subsets}
    return {"problems": problems, "samples_per_problem": samples, "repeats": repeats, "seconds": parts, **results}


def run_figure(quick: bool) -> FigureResult:
    problems, samples = QUICK_SHAPE if quick else FULL_SHAPE
    if quick:
        figures = run_verifier_stats(problems, samples, 1, tokens=QUICK_ACCUMULATOR_TOKENS, subsets=QUICK_SUBSETS)
    else:
        figures = run_verifier_stats(problems, samples)
    seconds = figures["seconds"]
    shape = f"{problems} x {samples:,}"
    target = "" if quick else f"< {TARGET_SECONDS:g} s"

    def timed_row(metric: str, value: float, detail: str) -> Row:
        return Row("8 verifier stats", metric, value, "s", target, None if quick else value < TARGET_SECONDS, detail)

    agreement_figures = figures["agreement"]
    corrected = figures["corrected_pass_at_k"]
    rows = [
        timed_row(
            f"agreement with AUROC, {shape}",
            seconds["agreement"],
            f"FPR {agreement_figures['false_positive_rate']:.3f}, FNR {agreement_figures['false_negative_rate']:.3f}, "
            f"kappa {agreement_figures['kappa']:.3f}, AUROC {agreement_figures['auroc']:.3f}",
        ),
        timed_row(
            f"corrected pass@k, {len(corrected['ks'])} k, {corrected['resamples']} resamples, {shape}",
            seconds["corrected_pass_at_k"],
            f"pass@{corrected['ks'][-1]} raw {corrected['raw'][-1]:.3f}, corrected {corrected['corrected'][-1]:.3f}, "
            f"true {corrected['true'][-1]:.3f}",
        ),
        timed_row(
            f"ensemble logistic, 3 score sets, 5 folds, {shape}",
            seconds["ensemble_logistic"],
            f"naive-bayes {seconds['ensemble_naive-bayes']:.2f} s, rank-mean {seconds['ensemble_rank-mean']:.2f} s; "
            f"held-out AUROC {figures['ensemble_logistic']['auroc']:.3f}",
        ),
        Row(
            "8 verifier stats",
            "confidence accumulator, per token (chunks of 16)",
            seconds["confidence_per_token_us_chunk_16"],
            "us",
            detail=f"1-token chunks {seconds['confidence_per_token_us_chunk_1']:.1f} us, "
            f"256-token chunks {seconds['confidence_per_token_us_chunk_256']:.2f} us",
        ),
        Row(
            "8 verifier stats",
            f"conf-majority=10 over k-subsets, {shape}",
            seconds["conf_majority_10"],
            "s",
            detail=f"{figures['conf_majority_10']['subsets']} Monte-Carlo permutations per problem",
        ),
    ]
    return FigureResult(rows, figures)


if __name__ == "__main__":
    quick = "--quick" in sys.argv[1:]
    result = run_figure(quick)
    for row in result.rows:
        print(f"{row.metric}: {row.value:.3g} {row.unit}  {row.target} {'' if row.met is None else row.met}")
        print(f"    {row.detail}")
    print(json.dumps(result.figures["seconds"], indent=2))
