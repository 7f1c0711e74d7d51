"""Figure 5: the analysis at paper scale (Large Language Monkeys: 10,000 samples per problem).

Over P problems x N samples: pass@k for every k = 1..N (the unbiased estimator, per problem, averaged),
majority@k on a log grid of k by Monte-Carlo k-subsets (``harness.metrics.selection``, forced to Monte-Carlo), and
the power-law fit of the coverage curve. Timed as medians of repeats; peak memory is measured in a separate
pass under ``tracemalloc`` (numpy reports its buffers to it), so the timing runs carry no tracing cost.

The inputs are synthetic: per-problem success rates from a Beta(0.3, 3) law (many hard problems, as in the
paper), and per sample an answer id among a problem's few popular wrong answers or its correct one.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np

from benchmarks.common import median
from benchmarks.suite import FigureResult, Row
from harness.forecasting.laws import PowerLaw
from harness.metrics.estimators import coverage_curve, log_spaced_ks
from harness.metrics.selection import majority_vote_curves

FULL_SHAPE = (1000, 10_000)
QUICK_SHAPE = (100, 1000)
QUICK_SUBSETS = 16
TARGET_SECONDS = 5.0
WRONG_ANSWERS = 6  # popular wrong answers per problem


def synthetic_votes(problems: int, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(answer ids, correct) arrays of shape (problems, samples); answer 0 is the correct one, -1 no answer."""
    rng = np.random.default_rng(seed)
    rate = rng.beta(0.3, 3.0, size=problems)[:, None]
    draw = rng.random((problems, samples))
    correct = draw < rate
    # wrong samples pick one of the problem's wrong answers with Zipf-like weights; 2% have no answer
    weights = 1.0 / np.arange(1, WRONG_ANSWERS + 1) ** 1.2
    wrong = rng.choice(np.arange(1, WRONG_ANSWERS + 1), size=(problems, samples), p=weights / weights.sum())
    answer_ids = np.where(correct, 0, wrong)
    answer_ids[rng.random((problems, samples)) < 0.02] = -1
    correct &= answer_ids == 0
    return answer_ids, correct


def analyse(answer_ids: np.ndarray, correct: np.ndarray, subsets: int | None = None, seed: int = 0) -> dict[str, Any]:
    """The timed analysis; returns the seconds of each part and what it computed. ``subsets``: Monte-Carlo
    permutations per problem (default: the library's, which keeps the work near a fixed number of visits)."""
    problems, samples = correct.shape
    parts: dict[str, float] = {}
    start = time.perf_counter()
    num_correct = correct.sum(axis=1)
    coverage = coverage_curve(np.full(problems, samples), num_correct, max_k=samples).mean(axis=0)
    parts["pass_at_k_all_k"] = time.perf_counter() - start

    start = time.perf_counter()
    ks = log_spaced_ks(samples)
    majority = majority_vote_curves(
        list(answer_ids), list(correct), ks, method="monte-carlo", subsets=subsets, seed=seed
    )
    parts["majority_at_k_monte_carlo"] = time.perf_counter() - start

    start = time.perf_counter()
    law = PowerLaw().fit(np.arange(1, samples + 1), coverage)
    parts["power_law_fit"] = time.perf_counter() - start
    return {
        "seconds": parts,
        "total_seconds": sum(parts.values()),
        "pass_at_1": float(coverage[0]),
        "pass_at_max_k": float(coverage[-1]),
        "majority_at_max_k": float(majority.mean()[-1]),
        "majority_subsets_per_problem": majority.subsets,
        "majority_ks": ks.tolist(),
        "power_law": law.params,
    }


def run_analysis_benchmark(
    problems: int, samples: int, repeats: int = 3, subsets: int | None = None, seed: int = 0
) -> dict[str, Any]:
    answer_ids, correct = synthetic_votes(problems, samples, seed)
    runs = [analyse(answer_ids, correct, subsets, seed) for _ in range(repeats)]
    tracemalloc.start()
    analyse(answer_ids, correct, subsets, seed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    totals = [run["total_seconds"] for run in runs]
    return {
        "problems": problems,
        "samples_per_problem": samples,
        "repeats": repeats,
        "total_seconds": totals,
        "median_total_seconds": median(totals),
        "median_part_seconds": {part: median([run["seconds"][part] for run in runs]) for part in runs[0]["seconds"]},
        "peak_traced_memory_mb": peak / 1e6,
        "input_memory_mb": (answer_ids.nbytes + correct.nbytes) / 1e6,
        "results": {key: value for key, value in runs[-1].items() if key not in ("seconds", "total_seconds")},
    }


def run_figure(quick: bool) -> FigureResult:
    problems, samples = QUICK_SHAPE if quick else FULL_SHAPE
    # quick mode: as many Monte-Carlo permutations as the library picks at paper scale (16), not its default
    # for small inputs (up to 2000), which would make the small case slower than the large one
    figures = run_analysis_benchmark(
        problems, samples, repeats=1 if quick else 3, subsets=QUICK_SUBSETS if quick else None
    )
    parts = figures["median_part_seconds"]
    seconds = figures["median_total_seconds"]
    row = Row(
        "5 analysis",
        f"pass@k all k + maj@k MC + power law, {problems} x {samples:,}",
        seconds,
        "s",
        target=f"< {TARGET_SECONDS:g} s" if not quick else "",
        met=seconds < TARGET_SECONDS if not quick else None,
        detail=(
            f"pass@k {parts['pass_at_k_all_k']:.2f} s, maj@k {parts['majority_at_k_monte_carlo']:.2f} s, "
            f"fit {parts['power_law_fit']:.2f} s; peak {figures['peak_traced_memory_mb']:.0f} MB traced "
            f"(inputs {figures['input_memory_mb']:.0f} MB); median of {figures['repeats']}"
        ),
    )
    return FigureResult([row], figures)
