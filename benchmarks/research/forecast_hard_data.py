"""Backtest every forecasting method on hard data built from the monkey counts and on simulated populations.

Run from the repository root:
    python -m benchmarks.research.forecast_hard_data [--counts ../shared/data/monkey_...jsonl] [--repeats 20]

Pilot 100 samples per problem, forecast coverage at 10,000. The sets stand in for held-out data with many
zero-success pilots and heavy left tails:
- hard problems: the 71 MATH problems Pythia 12B solves in under 1% of its samples, for each of the 7 models;
- weaker models: each problem's success rate c/n shifted down on the logit scale by 1 and by 2 (rates 0 stay
  0), then 10,000 samples drawn per problem (a model e or e^2 times less likely to succeed at every odds);
- simulated: p from Beta, zero-inflated Beta and logit-normal populations (200 problems, 10,000 samples),
  the last two outside the Beta family the ``beta``/``bayes`` laws assume.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from harness.forecasting.backtest import backtest_group, summarize
from harness.forecasting.forecast import METHODS
from harness.metrics.counts import Counts, read_counts_jsonl

MONKEY = "monkey_business_pythia_math_10k_counts.jsonl"
SHARED = Path(os.environ.get("TTC_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SAMPLES = 10_000


def counts_of(correct: np.ndarray) -> Counts:
    ids = np.arange(correct.size).astype(str).astype(object)
    return Counts(np.full(correct.size, SAMPLES), correct.astype(np.int64), ids)


def hard_problems(monkey: Counts) -> dict[str, Counts]:
    groups = monkey.group_by("model")
    reference = groups["Pythia 12B"]
    hard = set(reference.fields["problem_idx"][reference.num_correct / reference.num_samples < 0.01])
    return {
        f"hard {name}": group.subset(np.isin(group.fields["problem_idx"], list(hard))) for name, group in groups.items()
    }


def weaker_models(monkey: Counts, shift: float, rng: np.random.Generator) -> dict[str, Counts]:
    sets = {}
    for name, group in monkey.group_by("model").items():
        rate = group.num_correct / group.num_samples
        with np.errstate(divide="ignore"):
            shifted = np.where(rate > 0, 1 / (1 + np.exp(-(np.log(rate) - np.log1p(-rate) + shift))), 0.0)
        sets[f"logit{shift:+g} {name}"] = counts_of(rng.binomial(SAMPLES, shifted))
    return sets


def simulated(rng: np.random.Generator, problems: int = 200) -> dict[str, Counts]:
    sets = {}
    for alpha, beta, zero in [
        (0.1, 30, 0),
        (0.1, 300, 0),
        (0.2, 100, 0),
        (0.2, 1000, 0),
        (0.3, 30, 0),
        (0.3, 300, 0),
        (0.3, 30, 0.3),
        (0.5, 300, 0.3),
        (0.2, 100, 0.5),
    ]:
        p = rng.beta(alpha, beta, problems)
        p[rng.random(problems) < zero] = 0.0
        sets[f"beta({alpha},{beta}) zero={zero}"] = counts_of(rng.binomial(SAMPLES, p))
    for mu, sigma in [(-9.0, 2.5), (-7.0, 2.0), (-11.0, 3.0)]:
        p = 1 / (1 + np.exp(-(mu + sigma * rng.standard_normal(problems))))
        sets[f"logit-normal({mu:g},{sigma:g})"] = counts_of(rng.binomial(SAMPLES, p))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=Path, default=SHARED / MONKEY, help="the monkey_business counts file")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--methods", default=",".join(["auto", *(m for m in METHODS if m != "auto")]))
    args = parser.parse_args()
    methods = tuple(args.methods.split(","))
    rng = np.random.default_rng(0)
    monkey = read_counts_jsonl(args.counts)
    sets = {
        "hard problems (12B < 1%)": hard_problems(monkey),
        "weaker models (logit -1)": weaker_models(monkey, -1.0, rng),
        "weaker models (logit -2)": weaker_models(monkey, -2.0, rng),
        "simulated populations": simulated(rng),
    }
    for title, groups in sets.items():
        start = time.perf_counter()
        rows = [
            row
            for name, group in groups.items()
            for row in backtest_group(name, group, 100, SAMPLES, args.repeats, 0, methods)
        ]
        print(
            f"\n## {title}: {len(groups)} groups, pilot 100, k 10000, {args.repeats} repeats "
            f"({time.perf_counter() - start:.0f} s)"
        )
        print("| group | truth | pilot coverage | " + " | ".join(f"{m} error (bias) / hit" for m in methods) + " |")
        print("|---|---:|---:|" + "---|" * len(methods))
        for name, group in groups.items():
            mine = {row.method: row for row in rows if row.group == name}
            pilot_coverage = 1 - np.mean((1 - group.num_correct / group.num_samples) ** 100)
            cells = [f"{mine[m].mean_abs_error:.3f} ({mine[m].bias:+.3f}) / {mine[m].hit_rate:.2f}" for m in methods]
            print(f"| {name} | {mine[methods[0]].truth:.3f} | {pilot_coverage:.3f} | " + " | ".join(cells) + " |")
        print("\n| method | median abs error | max abs error | groups held (>= half) | hit rate |")
        print("|---|---:|---:|---:|---:|")
        for summary in summarize(rows):
            print(
                f"| {summary.method} | {summary.median_abs_error:.3f} | {summary.max_abs_error:.3f} "
                f"| {summary.groups_covered}/{summary.groups} | {summary.hit_rate:.2f} |"
            )


if __name__ == "__main__":
    main()
