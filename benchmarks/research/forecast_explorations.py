"""Forecasting ideas tried against issue 5's accuracy target and dropped: the evidence, reproducible.

Run from the repository root (outputs: results/bench/forecast_explorations.txt):
    python -m benchmarks.research.forecast_explorations pooling      # seconds
    python -m benchmarks.research.forecast_explorations single --repeats 8
    python -m benchmarks.research.forecast_explorations hierarchical --repeats 10
    python -m benchmarks.research.forecast_explorations factor --repeats 2   # ~4 min per pilot

Pilot 100 samples per problem drawn without replacement from the 10,000, forecast coverage at 10,000; errors
are absolute, averaged over the pilots of a group, then median / max over groups (as ``ttc backtest``).

- ``pooling``: groups that share problems (the 7 Pythia models on one set of 128 MATH problems) carry
  information about each other: how often a problem unsolved in one model's pilot is solved at 10,000, split by
  whether another model's pilot solved it; and whether a weaker model's coverage curve is a stronger model's
  curve shifted in log k (then its coverage at 10,000 could be read off the stronger curve).
- ``factor``: a pooled model over groups: logit p_gj = a_g + b_g z_j + s_g eps_gj, with z_j the logit of a
  Beta(alpha, beta) variable (one reference group has a = 0, b = 1, s = 0, so its law is the Beta of
  ``bayes``) and eps standard normal; marginal maximum likelihood on grids, posterior predictive per problem.
- ``hierarchical``: ``bayes`` per group with the half-Cauchy prior on alpha replaced by a Normal on log alpha
  shared by the groups, its mean and scale by empirical Bayes (maximum marginal likelihood over the groups).
- ``single`` (one group at a time): the Beta law fitted to the pilot's coverage curve (least squares on
  log(-log coverage), the objective that makes the straight-line power law good on the monkey counts) instead
  of to the counts; a scaled Beta (p = s x Beta(alpha, beta), Schaeffer et al.'s scaled family) by maximum
  likelihood; and a blend whose power-law weight depends on the curvature of log(-log coverage) in log k.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import optimize, special

from benchmarks.research import forecast_hard_data as hard
from harness.forecasting.forecast import BayesModel, PowerLawModel, subsample
from harness.forecasting.laws import BetaBinomialLaw
from harness.metrics.counts import Counts, read_counts_jsonl
from harness.metrics.estimators import log_spaced_ks, pass_at_k

PILOT, K = 100, 10_000


def truth(group: Counts) -> float:
    return float((group.num_correct > 0).mean())


def pilots(group: Counts, repeats: int) -> list[Counts]:
    return [subsample(group, PILOT, np.random.default_rng(seed)) for seed in range(repeats)]


def summary(label: str, errors: dict[str, list[float]]) -> str:
    """errors: group -> signed errors over pilots."""
    mae = np.array([np.mean(np.abs(v)) for v in errors.values()])
    return f"{label}: median {np.median(mae):.3f}, max {mae.max():.3f}"


def median_and_max(errors: dict[str, list[float]]) -> str:
    """ "median / max" over groups of the mean absolute error (errors: group -> signed errors over pilots)."""
    mae = np.array([np.mean(np.abs(v)) for v in errors.values()])
    return f"{np.median(mae):.3f} / {mae.max():.3f}"


def by_model(monkey: Counts) -> tuple[list[str], np.ndarray]:
    """(models from weakest to strongest, correct counts of shape (models, problems) on shared problems)."""
    groups = monkey.group_by("model")
    names = sorted(groups, key=lambda name: truth(groups[name]))
    problems = sorted(set(groups[names[0]].fields["problem_idx"]))
    correct = np.zeros((len(names), len(problems)), dtype=np.int64)
    for row, name in enumerate(names):
        group = groups[name]
        for idx, value in zip(group.fields["problem_idx"], group.num_correct):
            correct[row, problems.index(idx)] = value
    return names, correct


# -- pooling -----------------------------------------------------------------------------------------------------
def pooling(monkey: Counts, repeats: int) -> None:
    names, correct = by_model(monkey)
    print(
        f"## Cross-model signal ({repeats} pilots): pilot-unsolved problems solved at 10,000, "
        "by whether another model's pilot solved them"
    )
    print(
        "| model | unsolved in pilot | of them solved by another pilot: solved at 10k | "
        "solved by no pilot: solved at 10k |"
    )
    print("|---|---:|---:|---:|")
    stats = np.zeros((len(names), 5))
    for seed in range(repeats):
        pilot = np.random.default_rng(seed).hypergeometric(correct, K - correct, PILOT)
        for row in range(len(names)):
            unsolved = pilot[row] == 0
            others = np.delete(pilot, row, axis=0).sum(0) > 0
            solved = correct[row] > 0
            stats[row] += [
                unsolved.sum(),
                (unsolved & others).sum(),
                (unsolved & others & solved).sum(),
                (unsolved & ~others).sum(),
                (unsolved & ~others & solved).sum(),
            ]
    for name, (unsolved, with_others, with_solved, alone, alone_solved) in zip(names, stats / repeats):
        print(
            f"| {name} | {unsolved:.1f} | {with_solved:.1f} of {with_others:.1f} ({with_solved / with_others:.2f}) "
            f"| {alone_solved:.1f} of {alone:.1f} ({alone_solved / alone:.2f}) |"
        )

    rates = (correct + 0.5) / (K + 1)
    correlation = np.corrcoef(np.log(rates / (1 - rates)))
    print("\n## Correlation of the models' per-problem log-odds of success (full data)")
    print("| | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names))
    for name, row in zip(names, correlation):
        print(f"| {name} | " + " | ".join(f"{value:.2f}" for value in row) + " |")

    ks = np.unique(np.round(np.logspace(0, 4, 81)).astype(np.int64))
    curves = pass_at_k(np.full((*correct.shape, 1), K), correct[:, :, None], ks[None, None, :]).mean(1)
    log_k = np.log(ks)
    fit_range = (ks >= 10) & (ks <= PILOT)
    print("\n## Is a weaker model's curve a stronger one's shifted in log k? (full data; shift fitted on k = 10..100)")
    print("| weaker <- stronger | shift (x samples) | coverage at 10k read off the stronger curve | truth |")
    print("|---|---:|---:|---:|")
    for weak in range(len(names) - 1):
        for strong in sorted({weak + 1, len(names) - 1}):
            shifts = np.linspace(0, np.log(1000), 400)
            costs = [
                np.mean((np.interp(log_k[fit_range] - s, log_k, curves[strong]) - curves[weak, fit_range]) ** 2)
                for s in shifts
            ]
            shift = shifts[int(np.argmin(costs))]
            read = np.interp(np.log(K) - shift, log_k, curves[strong])
            print(f"| {names[weak]} <- {names[strong]} | {np.exp(shift):.1f} | {read:.3f} | {curves[weak, -1]:.3f} |")


# -- factor ------------------------------------------------------------------------------------------------------
Z = np.concatenate([np.arange(-48, -14, 1.0), np.arange(-14, 12.01, 0.2)])
NOISE, NOISE_WEIGHTS = np.polynomial.hermite_e.hermegauss(15)
LOG_NOISE_WEIGHTS = np.log(NOISE_WEIGHTS / NOISE_WEIGHTS.sum())


class LogitFactor:
    """logit p_gj = a_g + b_g z_j + s_g eps_gj; z_j = logit of Beta(alpha, beta); marginal ML on grids."""

    def __init__(self, num_samples: np.ndarray, num_correct: np.ndarray) -> None:
        self.n, self.c = num_samples.astype(float), num_correct.astype(float)
        self.reference = int(np.argmax(self.c.sum(1)))
        self.others = [g for g in range(self.n.shape[0]) if g != self.reference]

    def unpack(self, theta: np.ndarray):
        groups = self.n.shape[0]
        a, b, s = np.zeros(groups), np.ones(groups), np.zeros(groups)
        for g, (ag, log_bg, log_sg) in zip(self.others, theta[2:].reshape(-1, 3)):
            a[g], b[g], s[g] = ag, np.exp(log_bg), np.exp(log_sg)
        return np.exp(theta[0]), np.exp(theta[1]), a, b, s

    def log_prior_z(self, alpha: float, beta: float) -> np.ndarray:
        log_density = alpha * special.log_expit(Z) + beta * special.log_expit(-Z) + np.log(np.gradient(Z))
        log_density[0] = np.log(max(special.betainc(alpha, beta, special.expit(Z[0] + 0.5)), 1e-300))
        return log_density - special.logsumexp(log_density)

    def parts(self, theta: np.ndarray):
        alpha, beta, a, b, s = self.unpack(theta)
        per_group = []
        for g in range(self.n.shape[0]):
            x = a[g] + b[g] * Z[:, None] + (s[g] * NOISE[None, :] if s[g] > 0 else np.zeros((1, 1)))
            log_q = special.log_expit(-x)
            log_lik = self.c[g][:, None, None] * special.log_expit(x) + (self.n[g] - self.c[g])[:, None, None] * log_q
            weights = LOG_NOISE_WEIGHTS if s[g] > 0 else np.zeros(1)
            per_group.append((log_lik, log_q, weights, special.logsumexp(log_lik + weights, axis=2)))
        return self.log_prior_z(alpha, beta), per_group

    def neg_log_lik(self, theta: np.ndarray) -> float:
        log_prior, per_group = self.parts(theta)
        return -special.logsumexp(sum(p[3] for p in per_group) + log_prior, axis=1).sum()

    def fit(self) -> LogitFactor:
        rate = (self.c.sum(1) + 0.5) / (self.n.sum(1) + 1)
        odds = np.log(rate / (1 - rate))
        start = [np.log(0.3), 0.0] + [x for g in self.others for x in (odds[g] - odds[self.reference], 0.0, 0.0)]
        bounds = [(-5, 3), (-5, 4)] + [(-20, 20), (-3, 2), (-4, 2)] * len(self.others)
        self.theta = optimize.minimize(self.neg_log_lik, np.array(start), method="L-BFGS-B", bounds=bounds).x
        return self

    def forecast(self, k: int) -> np.ndarray:
        log_prior, per_group = self.parts(self.theta)
        joint = sum(p[3] for p in per_group) + log_prior
        posterior = joint - special.logsumexp(joint, axis=1, keepdims=True)
        coverage = []
        for g, (log_lik, log_q, weights, marginal) in enumerate(per_group):
            more = (k - self.n[g])[:, None, None]
            stays = special.logsumexp(log_lik + weights + more * log_q, axis=2) - marginal
            solve = -np.expm1(special.logsumexp(posterior + stays, axis=1))
            coverage.append(np.where(self.c[g] > 0, 1.0, solve).mean())
        return np.array(coverage)


def factor(monkey: Counts, repeats: int) -> None:
    names, correct = by_model(monkey)
    truths = (correct > 0).mean(1)
    errors: dict[str, list[float]] = {name: [] for name in names}
    print(f"## Pooled logit-factor model over the 7 models ({repeats} pilots)")
    for seed in range(repeats):
        pilot = np.random.default_rng(seed).hypergeometric(correct, K - correct, PILOT)
        start = time.perf_counter()
        forecast = LogitFactor(np.full_like(pilot, PILOT), pilot).fit().forecast(K)
        for name, value, true in zip(names, forecast, truths):
            errors[name].append(value - true)
        print(
            f"pilot {seed} ({time.perf_counter() - start:.0f} s): signed error "
            + ", ".join(f"{name} {value - true:+.3f}" for name, value, true in zip(names, forecast, truths))
        )
    print(summary("factor", errors))


# -- hierarchical ------------------------------------------------------------------------------------------------
MIN_PRIOR_SCALE = 0.15  # floor on the shared prior's sd of log alpha: 7 groups cannot support a point mass


def prior_scale(log_scale: float) -> float:
    return max(float(np.exp(log_scale)), MIN_PRIOR_SCALE)


def reweighted(
    law: BetaBinomialLaw, log_alpha: np.ndarray, own_prior: np.ndarray, mean: float, scale: float
) -> np.ndarray:
    """A fitted law's log posterior weights over its grid with its own prior on log alpha (``own_prior``, in
    log) replaced by Normal(mean, scale)."""
    z = (log_alpha - mean) / scale
    return np.log(law.weights_) - 0.5 * z**2 - np.log(scale) - own_prior


def shared_prior(
    laws: dict[str, BetaBinomialLaw], log_alpha: dict[str, np.ndarray], own_prior: dict[str, np.ndarray]
) -> tuple[float, float]:
    """(mean, scale) of the Normal prior on log alpha that maximises the models' summed evidence."""

    def neg_evidence(params: np.ndarray) -> float:
        mean, scale = params[0], prior_scale(params[1])
        return -sum(
            special.logsumexp(reweighted(law, log_alpha[name], own_prior[name], mean, scale))
            for name, law in laws.items()
        )

    mean, log_scale = optimize.minimize(neg_evidence, [np.log(0.2), np.log(0.5)], method="Nelder-Mead").x
    return mean, prior_scale(log_scale)


def hierarchical(monkey: Counts, repeats: int) -> None:
    groups = monkey.group_by("model")
    truths = {name: truth(group) for name, group in groups.items()}
    errors: dict[str, dict[str, list[float]]] = {
        "bayes": {n: [] for n in groups},
        "hierarchical": {n: [] for n in groups},
    }
    print(f"## bayes with a Normal prior on log alpha shared by the 7 models, empirical Bayes ({repeats} pilots)")
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        pilot = {name: subsample(group, PILOT, rng) for name, group in groups.items()}
        laws = {name: BetaBinomialLaw().fit(counts.num_samples, counts.num_correct) for name, counts in pilot.items()}
        for name, law in laws.items():
            errors["bayes"][name].append(law.forecast(K)[0] - truths[name])
        log_alpha = {name: np.log(law.alpha_grid_) for name, law in laws.items()}
        # the fitted posterior holds the half-Cauchy(0.3) prior on alpha (in log alpha: + log alpha - log1p(...))
        half_cauchy = {name: la - np.log1p((np.exp(la) / 0.3) ** 2) for name, la in log_alpha.items()}
        mean, scale = shared_prior(laws, log_alpha, half_cauchy)
        for name, law in laws.items():
            log_weights = reweighted(law, log_alpha[name], half_cauchy[name], mean, scale)
            law.weights_ = np.exp(log_weights - special.logsumexp(log_weights))
            errors["hierarchical"][name].append(law.forecast(K)[0] - truths[name])
        print(f"pilot {seed}: shared prior alpha ~ logNormal({np.exp(mean):.3f}, {scale:.2f})")
    for label, per_group in errors.items():
        print(
            summary(label, per_group)
            + " | per model: "
            + ", ".join(f"{name} {np.mean(np.abs(v)):.3f} ({np.mean(v):+.3f})" for name, v in per_group.items())
        )


# -- single-group variants ---------------------------------------------------------------------------------------
def coverage_curve(counts: Counts) -> tuple[np.ndarray, np.ndarray]:
    ks = log_spaced_ks(int(counts.num_samples.min()))
    return ks, pass_at_k(counts.num_samples[:, None], counts.num_correct[:, None], ks[None, :]).mean(0)


def beta_curve_forecast(counts: Counts) -> float | None:
    """Beta(alpha, beta) fitted to the pilot's coverage curve on log(-log coverage); forecast as ``bayes`` does."""
    ks, coverage = coverage_curve(counts)
    inside = (coverage > 0) & (coverage < 1)
    if inside.sum() < 2:
        return None
    target, kk = np.log(-np.log(coverage[inside])), ks[inside].astype(float)

    def residual(log_params: np.ndarray) -> np.ndarray:
        a, b = np.exp(log_params)
        unsolved = np.exp(special.betaln(a, b + kk) - special.betaln(a, b))
        return np.log(-np.log1p(-unsolved)) - target

    fits = [
        optimize.least_squares(residual, np.log([a0, b0]), bounds=(np.log([1e-3, 1e-2]), np.log([10, 1e7])))
        for a0 in (0.1, 0.3, 1.0)
        for b0 in (1, 10, 100, 1000)
    ]
    a, b = np.exp(min(fits, key=lambda fit: fit.cost).x)
    n, c = counts.num_samples, counts.num_correct
    waiting = c == 0
    solve = -np.expm1(special.betaln(a, b + K) - special.betaln(a, b + n[waiting]))
    return float(((c > 0).sum() + solve.sum()) / c.size)


EDGES = np.concatenate([[0.0], np.logspace(-14, 0, 561)])
MIDPOINTS = np.concatenate([[0.0], np.sqrt(EDGES[1:-1] * EDGES[2:])])


def scaled_beta_forecast(counts: Counts) -> float:
    """p = s x Beta(alpha, beta) by maximum likelihood on the counts (cell masses of the Beta on a log grid)."""
    pairs, multiplicity = np.unique(np.stack([counts.num_samples, counts.num_correct]), axis=1, return_counts=True)
    n, c = pairs.astype(float)

    def log_lik_grid(scale: float) -> np.ndarray:
        p = scale * MIDPOINTS
        with np.errstate(divide="ignore", invalid="ignore"):
            grid = np.where(c[:, None] > 0, c[:, None] * np.log(p), 0.0) + (n - c)[:, None] * np.log1p(-p)
        return np.where((c[:, None] > 0) & (p == 0), -np.inf, grid)

    def cell_log_mass(a: float, b: float) -> np.ndarray:
        return np.log(np.maximum(np.diff(special.betainc(a, b, EDGES)), 1e-300))

    def neg_log_lik(theta: np.ndarray) -> float:
        a, b, scale = np.exp(theta[0]), np.exp(theta[1]), special.expit(theta[2])
        return -float(special.logsumexp(log_lik_grid(scale) + cell_log_mass(a, b), axis=1) @ multiplicity)

    fits = [
        optimize.minimize(
            neg_log_lik,
            [np.log(a0), np.log(b0), special.logit(s0)],
            method="Nelder-Mead",
            options={"maxiter": 600, "xatol": 1e-4, "fatol": 1e-6},
        )
        for a0 in (0.1, 0.3, 1.0)
        for b0 in (0.5, 3, 30)
        for s0 in (0.3, 0.9)
    ]
    theta = min(fits, key=lambda fit: fit.fun).x
    a, b, scale = np.exp(theta[0]), np.exp(theta[1]), special.expit(theta[2])
    p = scale * MIDPOINTS
    pilot = int(counts.num_samples.max())
    unsolved_posterior = cell_log_mass(a, b) + pilot * np.log1p(-p)
    unsolved_posterior -= special.logsumexp(unsolved_posterior)
    solve = -np.expm1(special.logsumexp(unsolved_posterior + (K - pilot) * np.log1p(-p)))
    waiting = counts.num_correct == 0
    return float(((~waiting).sum() + solve * waiting.sum()) / waiting.size)


def curvature(counts: Counts) -> float:
    ks, coverage = coverage_curve(counts)
    inside = (coverage > 0) & (coverage < 1)
    if inside.sum() < 3:
        return float("nan")
    return float(np.polyfit(np.log(ks[inside]), np.log(-np.log(coverage[inside])), 2)[0])


def single(monkey: Counts, repeats: int, scaled_sets: set[str]) -> None:
    rng = np.random.default_rng(0)
    sets = {
        "monkey (7 models)": monkey.group_by("model"),
        "hard problems (7)": hard.hard_problems(monkey),
        "weaker, logit -1 (7)": hard.weaker_models(monkey, -1.0, rng),
        "weaker, logit -2 (7)": hard.weaker_models(monkey, -2.0, rng),
        "simulated (12)": hard.simulated(rng),
    }
    print(f"## One group at a time ({repeats} pilots per group): median / max over groups of the mean abs error")
    print(
        "| data | powerlaw | bayes | blend (0.3 powerlaw) | Beta fitted to the curve | scaled Beta | "
        "curvature-gated blend | median curvature |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for title, groups in sets.items():
        errors: dict[str, dict[str, list[float]]] = {}
        curvatures = []
        for name, group in groups.items():
            true = truth(group)
            for pilot in pilots(group, repeats):
                bayes = BayesModel().fit(pilot).interval(K, 0.9)[0]
                try:
                    power = PowerLawModel(resamples=2).fit(pilot).interval(K, 0.9)[0]
                except ValueError:
                    power = bayes
                bend = curvature(pilot)
                curvatures.append(bend)
                # weight the power law more where the pilot's log(-log coverage) is straight
                gated = 0.7 if abs(bend) < 0.01 else 0.3
                values = {
                    "powerlaw": power,
                    "bayes": bayes,
                    "blend": 0.3 * power + 0.7 * bayes,
                    "beta-curve": beta_curve_forecast(pilot) or bayes,
                    "gated": gated * power + (1 - gated) * bayes,
                }
                if title in scaled_sets:
                    values["scaled"] = scaled_beta_forecast(pilot)
                for method, value in values.items():
                    errors.setdefault(method, {}).setdefault(name, []).append(value - true)

        print(
            f"| {title} | "
            + " | ".join(
                median_and_max(errors[m]) if m in errors else "not run"
                for m in ("powerlaw", "bayes", "blend", "beta-curve", "scaled", "gated")
            )
            + f" | {np.nanmedian(curvatures):+.4f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=("pooling", "factor", "hierarchical", "single"))
    parser.add_argument("--counts", type=Path, default=hard.SHARED / hard.MONKEY)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--scaled-on",
        default="monkey (7 models)",
        help="comma-separated data titles on which to run the (slow) scaled Beta in `single`",
    )
    args = parser.parse_args()
    monkey = read_counts_jsonl(args.counts)
    start = time.perf_counter()
    if args.study == "pooling":
        pooling(monkey, args.repeats)
    elif args.study == "factor":
        factor(monkey, args.repeats)
    elif args.study == "hierarchical":
        hierarchical(monkey, args.repeats)
    else:
        single(monkey, args.repeats, set(args.scaled_on.split(",")))
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
