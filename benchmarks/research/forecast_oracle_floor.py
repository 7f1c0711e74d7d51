"""The oracle floor: how close any forecast from a 100-sample pilot can get to coverage at 10,000 samples.

Run from the repository root:
    python -m benchmarks.research.forecast_oracle_floor \
        [--counts ../shared/data/monkey_...jsonl] [--repeats 20]

The oracle knows a group's full-data success counts as a population (how many problems have each count out of
10,000, not which problem has which) and sees the same pilots as ``ttc backtest`` (same seed, same draws). A
problem solved in the pilot is covered; each problem without a success is covered with the probability that a
problem drawn from the population, whose pilot of 100 (drawn without replacement) had no success, has any
success among its 10,000: sum_j P0_j [C_j > 0] / sum_j P0_j, P0_j the hypergeometric chance of no success in
100 of problem j's samples. This is the posterior mean under the true population, so its error is what the
pilot's sampling noise alone leaves: which unsolved problems happen to be the solvable ones. Any gap between
a method and this floor is the cost of not knowing the population's shape (its left tail).

A second oracle knows only the Beta law fitted by maximum likelihood to all 10,000 samples of the group (the
best Beta for the group) and forecasts from the pilot as ``bayes`` does with that one (alpha, beta): it shows
how much of the gap the Beta family itself leaves, with alpha and beta known exactly.

Last, for each monkey model: the full-data alpha next to the ``bayes`` posterior of alpha (median and 90%
interval) from the first pilots, to show how loosely a pilot pins the tail exponent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import special, stats

from benchmarks.research.forecast_hard_data import MONKEY, SHARED, hard_problems, simulated, weaker_models
from harness.forecasting.backtest import true_coverage
from harness.forecasting.forecast import subsample
from harness.forecasting.laws import BetaBinomialLaw, BetaMLE
from harness.metrics.counts import Counts, read_counts_jsonl

PILOT, K = 100, 10_000


def oracle_errors(group: Counts, repeats: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Absolute errors of the population oracle and the best-Beta oracle over ``repeats`` pilots drawn as
    ``backtest_group`` draws them."""
    truth = true_coverage(group, K)
    no_success = np.asarray(stats.hypergeom.pmf(0, group.num_samples, group.num_correct, PILOT))
    solvable = float((no_success * (group.num_correct > 0)).sum() / no_success.sum())
    best_beta = BetaMLE().fit(group.num_samples, group.num_correct)
    a, b = best_beta.alpha_, best_beta.beta_
    beta_solvable = float(-np.expm1(special.betaln(a, b + K) - special.betaln(a, b + PILOT)))
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(repeats):
        solved = np.mean(subsample(group, PILOT, rng).num_correct > 0)
        errors.append([abs(solved + (1 - solved) * value - truth) for value in (solvable, beta_solvable)])
    return np.array(errors)[:, 0], np.array(errors)[:, 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=Path, default=SHARED / MONKEY, help="the monkey_business counts file")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    monkey = read_counts_jsonl(args.counts)
    rng = np.random.default_rng(0)  # the same stand-in sets as forecast_hard_data.py
    sets = {
        "monkey_business (7 Pythia models)": monkey.group_by("model"),
        "hard problems (12B < 1%)": hard_problems(monkey),
        "weaker models (logit -1)": weaker_models(monkey, -1.0, rng),
        "weaker models (logit -2)": weaker_models(monkey, -2.0, rng),
        "simulated populations": simulated(rng),
    }
    print(f"Oracle floor: pilot {PILOT}, k {K}, {args.repeats} pilots per group; mean abs error per group")
    print("(population oracle / best-Beta oracle)\n")
    print("| data | population oracle: median, max | best-Beta oracle: median, max | per group |")
    print("|---|---|---|---|")
    for title, groups in sets.items():
        per_group = {
            name: [float(errors.mean()) for errors in oracle_errors(group, args.repeats)]
            for name, group in groups.items()
        }
        values = np.array(list(per_group.values()))
        listing = ", ".join(f"{name} {pop:.3f} / {beta:.3f}" for name, (pop, beta) in per_group.items())
        print(
            f"| {title} | {np.median(values[:, 0]):.3f}, {values[:, 0].max():.3f} "
            f"| {np.median(values[:, 1]):.3f}, {values[:, 1].max():.3f} | {listing} |"
        )
    pilots = 5
    print(
        f"\nTail exponent alpha: full data (maximum likelihood) vs the bayes posterior from each of the first "
        f"{pilots} pilots (median [90% interval])\n"
    )
    print("| model | full data | pilots |")
    print("|---|---:|---|")
    for name, group in monkey.group_by("model").items():
        full = BetaMLE().fit(group.num_samples, group.num_correct).alpha_
        rng = np.random.default_rng(0)
        cells = []
        for _ in range(pilots):
            pilot = subsample(group, PILOT, rng)
            law = BetaBinomialLaw().fit(pilot.num_samples, pilot.num_correct)
            low, high = law.intervals_["alpha"]
            cells.append(f"{law.alpha_:.2f} [{low:.2f}, {high:.2f}]")
        print(f"| {name} | {full:.3f} | {'; '.join(cells)} |")


if __name__ == "__main__":
    main()
