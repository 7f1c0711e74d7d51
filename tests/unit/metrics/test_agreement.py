"""Verifier agreement: the confusion matrix, rates, kappa and AUROC, and intervals clustered by problem that
contain simulated truths at their nominal rate."""

import itertools
import json

import numpy as np
import pytest
from scipy.stats import norm

from harness.core.errors import OptionError
from harness.metrics.agreement import agreement, area_under_roc, auroc, clustered_rate, wilson_interval
from verifiers import load_verifier

QWEN = "qwen25math_rm_maj_example_math_cot_100.jsonl"


def test_counts_rates_and_disagreements_on_a_small_case():
    a = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 0], dtype=bool)
    b = np.array([1, 0, 1, 0, 1, 0, 0, 1, 0, 1], dtype=bool)
    problems = np.array(["p", "p", "p", "q", "q", "q", "r", "r", "s", "s"])
    result = agreement(a, b, problems)
    assert (result.true_positives, result.false_positives, result.false_negatives, result.true_negatives) == (
        3,
        2,
        2,
        3,
    )
    assert result.samples == 10 and result.problems == 4
    assert result.precision.value == pytest.approx(3 / 5) and result.recall.value == pytest.approx(3 / 5)
    assert result.false_positive_rate.value == pytest.approx(2 / 5)
    assert result.false_negative_rate.value == pytest.approx(2 / 5)
    assert result.accuracy.value == pytest.approx(6 / 10)
    assert (result.false_positive_rate.count, result.false_positive_rate.total) == (2, 5)
    assert result.disagreements.tolist() == [1, 2, 6, 9]
    # kappa: observed 0.6, chance 0.5 * 0.5 + 0.5 * 0.5 = 0.5
    assert result.kappa.value == pytest.approx((0.6 - 0.5) / (1 - 0.5))
    for rate in (result.precision, result.recall, result.false_positive_rate, result.accuracy, result.kappa):
        assert rate.low <= rate.value <= rate.high
    assert result.auroc is None
    json.dumps(result.to_dict())  # JSON-ready


def test_kappa_matches_its_textbook_formula_on_random_verdicts():
    rng = np.random.default_rng(1)
    a, b = rng.random(500) < 0.4, rng.random(500) < 0.55
    b[:200] = a[:200]
    result = agreement(a, b, rng.integers(0, 50, 500))
    observed = np.mean(a == b)
    chance = a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())
    assert result.kappa.value == pytest.approx((observed - chance) / (1 - chance))


def test_auroc_equals_counting_every_pair_with_ties_half():
    rng = np.random.default_rng(2)
    for _ in range(20):
        scores = rng.integers(0, 6, size=30).astype(float)  # many ties
        labels = rng.random(30) < 0.4
        pairs = list(itertools.product(scores[labels], scores[~labels]))
        expected = np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p, q in pairs])
        assert area_under_roc(scores, labels) == pytest.approx(expected)
        assert auroc(scores, labels, np.arange(30) // 3).value == pytest.approx(expected)


def test_auroc_standard_error_without_clustering_is_delongs():
    """One sample per problem: Obuchowski's clustered variance is DeLong's, up to the factors (m-1)/m, (n-1)/n
    of its variances and P/(P-1) of its clusters."""
    rng = np.random.default_rng(3)
    labels = rng.random(80) < 0.5
    scores = np.round(rng.normal(size=80) + labels, 1)  # with ties
    result = auroc(scores, labels, np.arange(80))
    positive, negative = scores[labels], scores[~labels]
    m, n = positive.size, negative.size
    wins = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])
    v10, v01 = wins.mean(axis=1), wins.mean(axis=0)
    delong = v10.var(ddof=1) / m + v01.var(ddof=1) / n
    ours = (m + n) / (m + n - 1) * ((m - 1) / m * v10.var(ddof=1) / m + (n - 1) / n * v01.var(ddof=1) / n)
    assert result.standard_error**2 == pytest.approx(ours, rel=1e-9)
    assert result.standard_error**2 == pytest.approx(delong, rel=0.05)


def simulated_judgements(rng: np.random.Generator, problems: int = 150):
    """Samples of problems whose difficulty and whose verifier error rates differ (so clustering matters).

    Returns (A's verdicts, B's verdicts = the truth, problem of each sample, A's scores) and the population
    truths: FPR = E[f] = 0.1 and FNR = E[g] = 0.15 (independent of difficulty and sample counts), the rest
    from the cell shares, AUROC from the normal score model (pairs across problems).
    """
    sizes = rng.integers(5, 31, problems)
    problem = np.repeat(np.arange(problems), sizes)
    theta = rng.beta(2, 2, problems)[problem]
    false_positive = rng.beta(1, 9, problems)[problem]
    false_negative = rng.beta(1.5, 8.5, problems)[problem]
    truth = rng.random(problem.size) < theta
    verdicts = np.where(truth, rng.random(problem.size) >= false_negative, rng.random(problem.size) < false_positive)
    shift = rng.normal(1.2, 0.5, problems)[problem]
    scores = shift * truth + rng.normal(0, 0.7, problems)[problem] + rng.normal(size=problem.size)
    return verdicts, truth, problem, scores


def population_truths() -> dict[str, float]:
    tp, fp, fn, tn = 0.5 * 0.85, 0.5 * 0.1, 0.5 * 0.15, 0.5 * 0.9
    a_positive, b_positive = tp + fp, tp + fn
    chance = a_positive * b_positive + (1 - a_positive) * (1 - b_positive)
    return {
        "false_positive_rate": 0.1,
        "false_negative_rate": 0.15,
        "precision": tp / (tp + fp),
        "recall": 0.85,
        "accuracy": tp + tn,
        "kappa": (tp + tn - chance) / (1 - chance),
        "auroc": float(norm.cdf(1.2 / np.sqrt(2 + 2 * 0.7**2 + 0.5**2))),
    }


def simulated_coverage(simulations: int, seed: int = 4) -> tuple[dict[str, float], float]:
    """Over repeated simulations: how often each clustered interval contains its population truth, and how
    often an unclustered Wilson interval for the FPR does."""
    rng = np.random.default_rng(seed)
    truths = population_truths()
    hits = dict.fromkeys(truths, 0)
    unclustered_hits = 0
    for _ in range(simulations):
        verdicts, truth, problem, scores = simulated_judgements(rng)
        result = agreement(verdicts, truth, problem, scores=scores)
        for name, value in truths.items():
            statistic = getattr(result, name)
            hits[name] += statistic.low <= value <= statistic.high
        rate = result.false_positive_rate
        low, high = wilson_interval(rate.value, rate.total, 1.96)  # as if samples were independent
        unclustered_hits += low <= truths["false_positive_rate"] <= high
    return {name: count / simulations for name, count in hits.items()}, unclustered_hits / simulations


def test_clustered_intervals_contain_simulated_truths_at_their_nominal_rate():
    coverage, unclustered = simulated_coverage(400)
    # nominal 0.95; 400 simulations put the observed coverage within about +-0.03 of the true one
    assert all(0.91 <= value <= 0.985 for value in coverage.values()), coverage
    assert unclustered < 0.88  # ignoring the problems would be overconfident


def test_clustered_rate_widens_when_errors_come_in_whole_problems():
    spread = clustered_rate(np.array([10, 0, 0, 10, 0, 0, 0, 10, 0, 0]), np.full(10, 10), 1.96)
    even = clustered_rate(np.full(10, 3), np.full(10, 10), 1.96)
    assert spread.value == pytest.approx(0.3) and even.value == pytest.approx(0.3)
    assert spread.effective_total < 15 and even.effective_total == 100  # design effect at least 1
    assert spread.high - spread.low > 2 * (even.high - even.low)
    empty = clustered_rate(np.zeros(3), np.zeros(3), 1.96)
    assert np.isnan(empty.value) and empty.total == 0


def test_undefined_statistics_are_nan_not_errors():
    result = agreement(np.ones(6, dtype=bool), np.ones(6, dtype=bool), [0, 0, 1, 1, 2, 2], scores=np.arange(6.0))
    assert result.true_positives == 6 and result.false_positive_rate.total == 0
    assert np.isnan(result.false_positive_rate.value) and np.isnan(result.kappa.value)
    assert np.isnan(result.auroc.value)
    assert result.to_dict()["kappa"]["value"] is None


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="differ in length"):
        agreement([True, False], [True], [0, 1])
    with pytest.raises(ValueError, match="booleans"):
        agreement([0.5, 1], [True, False], [0, 1])
    with pytest.raises(ValueError, match="no samples"):
        agreement([], [], [])
    with pytest.raises(OptionError, match="confidence"):
        agreement([True], [True], [0], confidence=1.5)
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan, 1.0], [True, False], [0, 1])


def test_agreement_on_real_qwen_samples_math_verify_against_imported_verdicts(shared_data):
    """Qwen2.5-Math's own verdicts (B) against math-verify's (A) on its 800 real samples; the reward model's
    score against the same reference for the AUROC."""
    records = [json.loads(line) for line in (shared_data / QWEN).read_text().splitlines() if line.strip()]
    verifier = load_verifier("math")
    try:
        ours = [[verdict.correct for verdict in verifier.verify({"answer": r["gt"]}, r["code"])] for r in records]
    finally:
        verifier.close()
    a = np.concatenate(ours)
    b = np.concatenate([r["score"] for r in records]).astype(bool)
    problems = np.repeat([r["idx"] for r in records], [len(r["score"]) for r in records])
    scores = np.concatenate([[value[0] for value in r["pred_score"]] for r in records])
    result = agreement(a, b, problems, scores=scores)
    cells = (result.true_positives, result.false_positives, result.false_negatives, result.true_negatives)
    assert sum(cells) == result.samples == 800 and result.problems == 100
    assert result.true_positives + result.false_negatives == int(b.sum())
    assert result.true_positives + result.false_positives == int(a.sum())
    assert result.disagreements.tolist() == np.flatnonzero(a != b).tolist()
    assert result.kappa.value > 0.9  # two careful math checkers agree almost everywhere
    assert 0.6 < result.auroc.value < 1 and result.auroc.low < result.auroc.value < result.auroc.high
