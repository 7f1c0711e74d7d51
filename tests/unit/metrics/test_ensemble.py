"""Verifier ensembles, cross-fitted by problem: no problem's combined score uses its own labels."""

import json

import numpy as np
import pytest
from scipy.stats import norm

from harness.core.errors import OptionError
from harness.metrics.agreement import area_under_roc
from harness.metrics.ensemble import METHODS, fit_ensemble, log_loss


def memorisable(rng, problems: int = 60, samples: int = 20):
    """Labels that only memorisation could fit: one random label per problem, shared by its samples, and
    inputs that name the problem (one indicator per problem) plus two of pure noise."""
    problem = np.repeat(np.arange(problems), samples)
    labels = (rng.random(problems) < 0.5)[problem]
    inputs = {f"is_{p}": (problem == p).astype(float) for p in range(problems)}
    inputs["noise_a"] = rng.normal(size=problem.size)
    inputs["noise_b"] = rng.normal(size=problem.size)
    return inputs, labels, problem


@pytest.mark.parametrize("method", ["logistic", "naive-bayes"])
def test_cross_fitting_leaves_nothing_to_memorise(method):
    rng = np.random.default_rng(0)
    aurocs, train_aurocs = [], []
    for seed in range(5):
        inputs, labels, problem = memorisable(rng)
        ensemble = fit_ensemble(inputs, labels, problem, method=method, seed=seed)
        aurocs.append(ensemble.auroc)
        train_aurocs.extend(fold.train_auroc for fold in ensemble.folds)
    assert abs(np.mean(aurocs) - 0.5) < 0.05, aurocs  # no skill on problems it never saw
    assert min(train_aurocs) > 0.95  # while an in-sample fit memorises the labels


@pytest.mark.parametrize("method", ["logistic", "naive-bayes"])
def test_a_problems_own_labels_never_reach_its_score(method):
    rng = np.random.default_rng(1)
    problem = np.repeat(np.arange(30), 10)
    labels = rng.random(problem.size) < 0.4
    inputs = {"a": labels + rng.normal(size=problem.size), "b": labels + rng.normal(size=problem.size)}
    before = fit_ensemble(inputs, labels, problem, method=method, folds=3)
    flipped = labels.copy()
    mine = problem == 7
    flipped[mine] = ~flipped[mine]
    after = fit_ensemble(inputs, flipped, problem, method=method, folds=3)
    np.testing.assert_array_equal(after.scores[mine], before.scores[mine])
    assert not np.array_equal(after.scores[~mine], before.scores[~mine])  # the others' models did change


@pytest.mark.parametrize("method", METHODS)
def test_an_ensemble_of_two_noisy_scores_beats_each(method):
    rng = np.random.default_rng(2)
    problem = np.repeat(np.arange(200), 25)
    labels = rng.random(problem.size) < 0.3
    inputs = {
        "reward": 1.0 * labels + rng.normal(size=problem.size),
        "judge": 0.8 * labels + rng.normal(size=problem.size),
    }
    if method != "rank-mean":  # a fitted combination learns to ignore an input of pure noise
        inputs["noise"] = rng.normal(size=problem.size)
    ensemble = fit_ensemble(inputs, labels, problem, method=method)
    single = max(area_under_roc(inputs[name], labels) for name in ("reward", "judge"))
    # two scores with independent errors: AUROC about Phi(sqrt(1 + 0.64) / sqrt(2)) = 0.82, above 0.76
    assert ensemble.auroc > single + 0.02
    assert len(ensemble.folds) == 5 and sum(fold.samples for fold in ensemble.folds) == problem.size
    assert sum(fold.problems for fold in ensemble.folds) == 200
    for fold in ensemble.folds:
        assert 0.7 < fold.auroc < 0.95
        if method == "rank-mean":
            assert fold.log_loss is None and fold.coefficients is None
        else:
            assert 0 < fold.log_loss < log_loss(np.full(fold.samples, 0.3), labels[ensemble.fold_of_sample == 0])
    if method == "logistic":
        weights = ensemble.folds[0].coefficients
        assert weights["reward"] > weights["judge"] > abs(weights["noise"])
    json.dumps(ensemble.to_dict())


def test_logistic_fit_solves_its_score_equations():
    """At the optimum with an unpenalised intercept, the fitted probabilities sum to the positives."""
    rng = np.random.default_rng(3)
    problem = np.repeat(np.arange(40), 10)
    labels = rng.random(400) < 0.35
    inputs = {"a": labels + rng.normal(size=400), "b": rng.normal(size=400)}
    ensemble = fit_ensemble(inputs, labels, problem, method="logistic", folds=2, l2=0.0)
    for fold in range(2):
        train = ensemble.fold_of_sample != fold
        coefficients = ensemble.folds[fold].coefficients
        x = np.column_stack([inputs["a"][train], inputs["b"][train]])
        x = (x - x.mean(axis=0)) / x.std(axis=0)
        fitted = 1 / (1 + np.exp(-(coefficients["intercept"] + x @ [coefficients["a"], coefficients["b"]])))
        residual = labels[train] - fitted
        assert abs(residual.sum()) < 1e-4 and np.all(np.abs(x.T @ residual) < 1e-4)


def test_naive_bayes_is_the_gaussian_posterior():
    rng = np.random.default_rng(4)
    problem = np.repeat(np.arange(20), 10)
    labels = rng.random(200) < 0.5
    inputs = {"a": labels * 2 + rng.normal(size=200), "b": rng.normal(size=200) * (1 + labels)}
    ensemble = fit_ensemble(inputs, labels, problem, method="naive-bayes", folds=2)
    held_out = ensemble.fold_of_sample == 0
    train = ~held_out
    log_odds = np.log(labels[train].mean() / (1 - labels[train].mean()))
    for name in ("a", "b"):
        x = inputs[name]
        for sign, cls in ((1, True), (-1, False)):
            values = x[train][labels[train] == cls]
            log_odds = log_odds + sign * norm.logpdf(x[held_out], values.mean(), values.std())
    np.testing.assert_allclose(ensemble.scores[held_out], 1 / (1 + np.exp(-log_odds)), rtol=1e-6)


def test_bad_ensembles_are_refused():
    labels = np.array([True, False, True, False])
    problem = np.array([0, 0, 1, 1])
    with pytest.raises(OptionError, match="at least two score sets") as caught:
        fit_ensemble({"a": [1.0, 2, 3, 4]}, labels, problem)
    assert caught.value.option == "score_sets"
    with pytest.raises(OptionError, match="different samples"):
        fit_ensemble({"a": [1.0, 2, 3, 4], "b": [1.0, 2, 3]}, labels, problem)
    with pytest.raises(OptionError, match="'b' has 1 missing"):
        fit_ensemble({"a": [1.0, 2, 3, 4], "b": [1.0, np.nan, 3, 4]}, labels, problem, folds=2)
    with pytest.raises(OptionError, match="method"):
        fit_ensemble({"a": [1.0, 2, 3, 4], "b": [1.0, 2, 3, 4]}, labels, problem, method="svm")
    with pytest.raises(OptionError, match="folds"):
        fit_ensemble({"a": [1.0, 2, 3, 4], "b": [1.0, 2, 3, 4]}, labels, problem, folds=3)
    with pytest.raises(OptionError, match="folds"):
        fit_ensemble({"a": [1.0, 2, 3, 4], "b": [1.0, 2, 3, 4]}, labels, problem, folds=1)


def test_a_fold_with_one_class_predicts_its_base_rate():
    problem = np.repeat(np.arange(4), 5)
    labels = np.repeat([True, True, False, True], 5)
    inputs = {"a": np.arange(20.0), "b": -np.arange(20.0)}
    ensemble = fit_ensemble(inputs, labels, problem, folds=4, seed=0)
    held_out_negative = ensemble.fold_of_sample[10]
    assert np.all(ensemble.scores[ensemble.fold_of_sample == held_out_negative] > 0.99)
