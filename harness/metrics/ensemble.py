"""Verifier ensembles: several per-sample scores (reward models, a judge's probability, verdict-free features
such as confidence) combined into one score, cross-fitted across problems.

Cross-fitting: problems (never samples) are dealt at random into ``folds`` folds; the score of a sample of a
problem in fold f comes from a model fitted on the other folds' problems only. So no problem's combined score
ever uses its own labels, and a selector that reads the combined score (best-of-k, weighted vote) is judged on
labels its weights never saw. The labels are a verdict set (the verifier's correctness). Every problem's
samples share a fold, and so a model: the order of a problem's samples, which selection reads, comes from one
model.

Methods (every input oriented so that higher means "more likely correct"):

* ``logistic``: L2-regularised logistic regression on the standardised inputs (Newton's method on the
  penalised log-likelihood ``sum log(1 + exp(-y f)) + l2 / 2 |w|^2``, intercept not penalised). Inputs
  constant on the training folds get weight 0. Output: the probability of "correct".
* ``naive-bayes``: Gaussian class-conditionals per input, independent given the label (variance floored at
  1e-9 of the largest), and the class prior; output: the posterior probability of "correct".
* ``rank-mean``: no fitting: the mean over inputs of each input's percentile rank over all samples (ranks use
  no labels, so they leak none). Not a probability, so it has no log-loss.

Each fold reports its fit on its held-out problems (log-loss, AUROC) beside the fit on the training problems;
a large gap is overfitting, which cross-fitting keeps out of the combined score. The ensemble's AUROC is the
mean of the folds' held-out AUROCs, each computed within one model: AUROC pooled over folds would also rank
the folds' models against each other, and their offsets carry a spurious signal (a fold whose held-out
problems are mostly correct leaves a training set mostly wrong, so its model scores lower: with labels
nothing can predict, pooled AUROC falls well below 0.5). Selection never compares scores across problems, so
the offsets do not touch it. The log-loss is pooled over all held-out samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, log_expit
from scipy.stats import rankdata

from harness.core.errors import OptionError, check_number
from harness.metrics.agreement import area_under_roc, problem_codes

METHODS = ("logistic", "naive-bayes", "rank-mean")
DEFAULT_FOLDS = 5
DEFAULT_L2 = 1.0
PROBABILITY_FLOOR = 1e-15  # log-loss clips probabilities to [floor, 1 - floor]
VARIANCE_FLOOR = 1e-9  # naive Bayes: of the largest input variance
NEWTON_STEPS = 50  # logistic: at most; it stops once the Newton decrement is below NEWTON_TOLERANCE
NEWTON_TOLERANCE = 1e-10
WARM_START_SAMPLES = 50_000  # logistic: the size of the subset that gives Newton's method its start


@dataclass(frozen=True)
class FoldFit:
    """How one fold's model fits: on its held-out problems and on the problems it was fitted on.

    Attributes:
        fold: the fold's number (0-based).
        problems, samples, correct: the held-out problems, their samples, and how many are correct.
        log_loss, auroc: on the held-out samples (log-loss None for ``rank-mean``; AUROC NaN with one class).
        train_log_loss, train_auroc: on the training samples (in-sample).
        coefficients: ``logistic`` only: the weight of each input (per standard deviation) and ``intercept``.
    """

    fold: int
    problems: int
    samples: int
    correct: int
    log_loss: float | None
    auroc: float
    train_log_loss: float | None
    train_auroc: float
    coefficients: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: _json_value(value) for key, value in self.__dict__.items()}


@dataclass(frozen=True)
class Ensemble:
    """A cross-fitted combination of score sets.

    Attributes:
        method: one of ``METHODS``.
        names: the inputs combined, in order.
        scores: the combined score per sample (the inputs' order).
        fold_of_sample: the fold that held each sample's problem out.
        folds: each fold's fit.
        log_loss: the held-out log-loss over all samples (None for ``rank-mean``).
        auroc: the mean of the folds' held-out AUROCs (see the module docstring).
        seed: seeds the dealing of problems into folds.
    """

    method: str
    names: tuple[str, ...]
    scores: np.ndarray
    fold_of_sample: np.ndarray
    folds: tuple[FoldFit, ...]
    log_loss: float | None
    auroc: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "inputs": list(self.names),
            "folds": [fold.to_dict() for fold in self.folds],
            "log_loss": _json_value(self.log_loss),
            "auroc": _json_value(self.auroc),
            "seed": self.seed,
            "cross_fitted": "by problem: a problem's combined score comes from a model fitted on other problems",
        }


def fit_ensemble(
    inputs: Mapping[str, ArrayLike],
    labels: ArrayLike,
    problems: ArrayLike,
    *,
    method: str = "logistic",
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    l2: float = DEFAULT_L2,
) -> Ensemble:
    """Combine ``inputs`` (name -> one score per sample) into one cross-fitted score.

    Args:
        inputs: at least two score vectors over the same samples (score sets, confidence statistics, ...).
        labels: per sample, its verdict (bool), the target of the fit.
        problems: per sample, its problem (any ids): the unit of cross-fitting.
        method: ``logistic``, ``naive-bayes`` or ``rank-mean``.
        folds: folds of problems (2 .. number of problems).
        seed: seeds the dealing of problems into folds.
        l2: the logistic penalty on the standardised weights.
    """
    if method not in METHODS:
        raise OptionError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    names, features = _feature_matrix(inputs)
    check_number("l2", l2, at_least=0)
    check_number("seed", seed, at_least=0)
    check_number("folds", folds, at_least=2)
    labels = np.asarray(labels)
    if labels.shape != (features.shape[0],):
        raise ValueError(f"labels hold {labels.size} values for {features.shape[0]} samples")
    labels = labels.astype(bool)
    codes, count = problem_codes(problems)
    if codes.size != labels.size:
        raise ValueError(f"problems hold {codes.size} values for {labels.size} samples")
    if folds > count:
        raise OptionError("folds", f"must be at most the number of problems ({count}), got {folds}")
    folds = int(folds)
    fold_of_problem = np.random.default_rng(seed).permutation(count) % folds
    fold_of_sample = fold_of_problem[codes]
    scores = np.empty(labels.size)
    if method == "rank-mean":
        scores = _rank_mean(features)
    fits = []
    for fold in range(folds):
        held_out = fold_of_sample == fold
        train = ~held_out
        coefficients = None
        if method == "rank-mean":
            train_scores = scores[train]
        else:
            model = _fit(method, features[train], labels[train], l2)
            scores[held_out] = model.predict(features[held_out])
            train_scores = model.fitted if isinstance(model, _Logistic) else model.predict(features[train])
            coefficients = model.coefficients(names)
        fits.append(
            FoldFit(
                fold=fold,
                problems=int((fold_of_problem == fold).sum()),
                samples=int(held_out.sum()),
                correct=int(labels[held_out].sum()),
                log_loss=None if method == "rank-mean" else log_loss(scores[held_out], labels[held_out]),
                auroc=area_under_roc(scores[held_out], labels[held_out]),
                train_log_loss=None if method == "rank-mean" else log_loss(train_scores, labels[train]),
                train_auroc=area_under_roc(train_scores, labels[train]),
                coefficients=coefficients,
            )
        )
    held_out_aurocs = np.array([fit.auroc for fit in fits])
    return Ensemble(
        method=method,
        names=names,
        scores=scores,
        fold_of_sample=fold_of_sample,
        folds=tuple(fits),
        log_loss=None if method == "rank-mean" else log_loss(scores, labels),
        auroc=float(held_out_aurocs[np.isfinite(held_out_aurocs)].mean())
        if np.isfinite(held_out_aurocs).any()
        else np.nan,
        seed=seed,
    )


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of boolean ``labels`` under ``probabilities`` (clipped away from 0 and 1)."""
    clipped = np.clip(probabilities, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return float(-np.mean(np.where(labels, np.log(clipped), np.log1p(-clipped))))


def _feature_matrix(inputs: Mapping[str, ArrayLike]) -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(inputs)
    if len(names) < 2:
        raise OptionError(
            "score_sets", f"an ensemble combines at least two score sets, got {len(names)}: {list(names)}"
        )
    columns = [np.asarray(inputs[name], dtype=np.float64) for name in names]
    lengths = {name: column.size for name, column in zip(names, columns)}
    if len(set(lengths.values())) > 1 or any(column.ndim != 1 for column in columns):
        described = ", ".join(f"{name}: {size}" for name, size in lengths.items())
        raise OptionError("score_sets", f"the score sets cover different samples ({described})")
    for name, column in zip(names, columns):
        bad = int((~np.isfinite(column)).sum())
        if bad:
            raise OptionError("score_sets", f"score set {name!r} has {bad} missing or infinite scores")
    if columns[0].size == 0:
        raise ValueError("no samples to combine")
    return names, np.stack(columns, axis=1)


def _rank_mean(features: np.ndarray) -> np.ndarray:
    return (rankdata(features, axis=0) / features.shape[0]).mean(axis=1)


class _Model:
    def predict(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def coefficients(self, names: tuple[str, ...]) -> dict[str, float] | None:
        return None


class _Constant(_Model):
    """A training set with one class only: predict its (clipped) base rate."""

    def __init__(self, rate: float) -> None:
        self.rate = float(np.clip(rate, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR))

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.full(features.shape[0], self.rate)


class _Logistic(_Model):
    """Penalised logistic regression fitted by Newton's method with step halving (the objective is convex; a
    handful of steps reach the optimum, each a few passes over the data for loss, gradient and Hessian)."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, l2: float) -> None:
        self.centre = features.mean(axis=0)
        scale = features.std(axis=0)
        # inputs constant while fitting carry no information: weight 0, whatever they hold later
        self.inverse_scale = np.where(scale > 0, 1 / np.where(scale > 0, scale, 1.0), 0.0)
        design = self._standardised(features)
        target = labels.astype(np.float64)
        start = np.zeros(features.shape[1] + 1)
        start[0] = np.log(target.mean() / (1 - target.mean()))
        stride = target.size // WARM_START_SAMPLES
        if stride > 1:  # most Newton steps are taken on an evenly spaced subset, a few on all samples
            subset = slice(None, None, stride)
            if 0 < target[subset].mean() < 1:
                start, _ = _newton_logistic(design[subset], target[subset], l2 / stride, start)
        self.weights, margin = _newton_logistic(design, target, l2, start)
        self.fitted = expit(margin)  # the in-sample probabilities

    def _standardised(self, features: np.ndarray) -> np.ndarray:
        return (features - self.centre) * self.inverse_scale

    def predict(self, features: np.ndarray) -> np.ndarray:
        return expit(self.weights[0] + self._standardised(features) @ self.weights[1:])

    def coefficients(self, names: tuple[str, ...]) -> dict[str, float]:
        return {"intercept": float(self.weights[0]), **{n: float(w) for n, w in zip(names, self.weights[1:])}}


class _GaussianNaiveBayes(_Model):
    def __init__(self, features: np.ndarray, labels: np.ndarray) -> None:
        floor = VARIANCE_FLOOR * max(float(features.var(axis=0).max()), np.finfo(float).tiny)
        self.means = np.stack([features[~labels].mean(axis=0), features[labels].mean(axis=0)])
        self.variances = np.stack([features[~labels].var(axis=0), features[labels].var(axis=0)]) + floor
        self.prior_log_odds = float(np.log(labels.mean() / (1 - labels.mean())))

    def predict(self, features: np.ndarray) -> np.ndarray:
        log_density = -0.5 * ((features[None] - self.means[:, None]) ** 2 / self.variances[:, None]) - 0.5 * np.log(
            self.variances[:, None]
        )
        return expit(self.prior_log_odds + (log_density[1] - log_density[0]).sum(axis=1))


def _newton_logistic(
    design: np.ndarray, target: np.ndarray, l2: float, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``-sum log p(target) + l2 / 2 |w[1:]|^2`` (w[0] the intercept): Newton's method with step
    halving. Returns the weights and the final margins ``w[0] + design @ w[1:]``."""
    sign = 2 * target - 1
    penalty = np.r_[0.0, np.full(design.shape[1], l2)]

    def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
        margin = design @ weights[1:] + weights[0]
        return -float(log_expit(sign * margin).sum()) + 0.5 * float(penalty @ weights**2), margin

    weights = start
    value, margin = loss(weights)
    for _ in range(NEWTON_STEPS):
        probability = expit(margin)
        curvature = probability * (1 - probability)
        weighted = design * curvature[:, None]
        hessian = np.empty((weights.size, weights.size))
        hessian[0, 0] = curvature.sum()
        hessian[0, 1:] = hessian[1:, 0] = weighted.sum(axis=0)
        hessian[1:, 1:] = weighted.T @ design
        hessian += np.diag(penalty)
        residual = probability - target
        gradient = np.r_[residual.sum(), residual @ design] + penalty * weights
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        decrement = float(gradient @ step)
        if decrement < NEWTON_TOLERANCE:
            break
        length = 1.0
        while True:
            candidate = weights - length * step
            candidate_value, candidate_margin = loss(candidate)
            if candidate_value <= value or length < 1e-8:
                break
            length /= 2
        weights, value, margin = candidate, candidate_value, candidate_margin
    return weights, margin


def _fit(method: str, features: np.ndarray, labels: np.ndarray, l2: float) -> _Model:
    if labels.all() or not labels.any():
        return _Constant(float(labels.mean()))
    if method == "logistic":
        return _Logistic(features, labels, l2)
    return _GaussianNaiveBayes(features, labels)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
