"""Coverage of the verifier-statistics intervals over repeated simulations (issue 21): the evidence behind
"the intervals contain simulated truths at about their nominal rate", with more simulations than the tests.

Run from the repository root (output: results/bench/verifier_stats_coverage.txt):
    PYTHONPATH=$PWD python -m benchmarks.research.verifier_stats_coverage [--simulations 200]

- ``agreement``: problems whose difficulty and verifier error rates differ (the simulation of
  tests/test_agreement.py); coverage of the clustered intervals for FPR, FNR, precision, recall, accuracy,
  kappa and AUROC, and of an unclustered Wilson interval for the FPR.
- ``corrected``: runs with known false-positive and false-negative rates (true success rates 0 for 30% of
  problems, Beta(0.5, 2) for the rest; the rates as audits of 400 truly wrong and 300 truly correct samples
  estimate them, or known); coverage of the corrected and of the raw pass@k intervals at each k, the mean
  error of the corrected point estimate, and the mean interval width.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import betaln

from harness.metrics.verifier_error import ErrorRate, corrected_coverage
from tests.unit.metrics.test_agreement import simulated_coverage  # the simulation the test runs, at a larger size

CORRECTED_SCENARIOS = (
    # problems, samples, FPR, FNR, rates from audits (else known), simulations scale
    (200, 100, 0.05, 0.10, True, 1.0),
    (200, 100, 0.00, 0.00, False, 1.0),
    (200, 100, 0.00, 0.20, True, 1.0),
    (100, 1000, 0.10, 0.05, True, 0.5),
)


def agreement_coverage(simulations: int) -> None:
    coverage, unclustered = simulated_coverage(simulations, seed=0)
    print(f"agreement: {simulations} simulations, 150 problems of 5-30 samples, nominal 0.95")
    for name, rate in coverage.items():
        print(f"  {name:22s} {rate:.3f}")
    print(f"  {'FPR, unclustered Wilson':22s} {unclustered:.3f}")


def corrected_coverage_study(simulations: int) -> None:
    for problems, samples, fpr, fnr, audited, scale in CORRECTED_SCENARIOS:
        rng = np.random.default_rng(1)
        runs = max(int(simulations * scale), 1)
        ks = np.array([k for k in (1, 2, 4, 8, 16, 32, 64, 100, 256, 1000) if k <= samples])
        truth = 0.7 * (1 - np.exp(betaln(0.5, 2.0 + ks) - betaln(0.5, 2.0)))
        hits, raw_hits, error, width = (np.zeros(ks.size) for _ in range(4))
        started = time.perf_counter()
        for run in range(runs):
            theta = rng.beta(0.5, 2.0, problems)
            theta[rng.random(problems) < 0.3] = 0.0
            right = rng.binomial(samples, theta)
            verified = right - rng.binomial(right, fnr) + rng.binomial(samples - right, fpr)
            if audited:
                rates = (
                    ErrorRate.from_counts(rng.binomial(400, fpr), 400),
                    ErrorRate.from_counts(rng.binomial(300, fnr), 300),
                )
            else:
                rates = (ErrorRate.known(fpr), ErrorRate.known(fnr))
            result = corrected_coverage(np.full(problems, samples), verified, *rates, ks, seed=run)
            hits += (result.low <= truth) & (truth <= result.high)
            raw_hits += (result.raw_low <= truth) & (truth <= result.raw_high)
            error += result.corrected - truth
            width += result.high - result.low
        seconds = (time.perf_counter() - started) / runs
        source = "audits of 400 / 300 samples" if audited else "known"
        print(
            f"\ncorrected pass@k: {runs} simulations, {problems} problems x {samples} samples, FPR {fpr}, FNR {fnr} "
            f"({source}); {seconds:.2f} s per run"
        )
        print("  k          " + " ".join(f"{k:>6d}" for k in ks))
        for label, values in (
            ("true", truth),
            ("corrected", hits / runs),
            ("raw", raw_hits / runs),
            ("mean error", error / runs),
            ("mean width", width / runs),
        ):
            print(f"  {label:10s} " + " ".join(f"{value:6.3f}" for value in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulations", type=int, default=200)
    args = parser.parse_args()
    agreement_coverage(2 * args.simulations)
    corrected_coverage_study(args.simulations)


if __name__ == "__main__":
    main()
