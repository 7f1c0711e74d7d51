"""Timing of selector curves at paper scale (Large Language Monkeys: 1,000 problems x 10,000 samples).

Run:  python -m benchmarks.selection_scale [--problems 1000] [--samples 10000]
Synthetic answers: per problem 2-200 distinct answers with Zipf-like frequencies, 5% of samples without an
answer, one answer correct; scores normal. Prints seconds per estimator and the Monte-Carlo standard error.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from harness.metrics.estimators import log_spaced_ks, pass_at_k
from harness.metrics.selection import best_of_k_curves, majority_vote_curves, weighted_vote_curves


def synthetic(problems: int, samples: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    answers, correct, scores = [], [], []
    for _ in range(problems):
        distinct = int(rng.integers(2, 201))
        frequency = 1.0 / np.arange(1, distinct + 1) ** 1.2
        ids = rng.choice(distinct, size=samples, p=frequency / frequency.sum())
        ids[rng.random(samples) < 0.05] = -1
        answers.append(ids)
        correct.append(ids == int(rng.integers(0, distinct)))
        scores.append(rng.normal(size=samples) + correct[-1])
    return answers, correct, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--subsets", type=int, default=None)
    args = parser.parse_args()
    answers, correct, scores = synthetic(args.problems, args.samples)
    ks = log_spaced_ks(args.samples)
    print(f"{args.problems} problems x {args.samples} samples, k = {ks.tolist()}")

    started = time.perf_counter()
    counts = np.array([c.sum() for c in correct])
    coverage = pass_at_k(np.full(args.problems, args.samples)[:, None], counts[:, None], ks[None, :]).mean(axis=0)
    print(f"pass@k                {time.perf_counter() - started:6.2f} s   pass@{ks[-1]} = {coverage[-1]:.4f}")

    for name, run in (
        ("majority (auto)", lambda: majority_vote_curves(answers, correct, ks, subsets=args.subsets)),
        ("best-of-k (exact)", lambda: best_of_k_curves(scores, correct, ks)),
        ("weighted (auto)", lambda: weighted_vote_curves(answers, correct, scores, ks, subsets=args.subsets)),
    ):
        started = time.perf_counter()
        estimate = run()
        seconds = time.perf_counter() - started
        error = estimate.monte_carlo_standard_error().max()
        how = f"{estimate.subsets} subsets/problem, max MC s.e. {error:.4f}" if estimate.subsets else "exact"
        print(f"{name:20s}  {seconds:6.2f} s   @{ks[-1]} = {estimate.mean()[-1]:.4f}  ({how})")


if __name__ == "__main__":
    main()
