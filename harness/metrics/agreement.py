"""How often a verifier is wrong: agreement of verdict set A with a reference verdict set B.

Over the samples both verifiers judged, taking B as the truth: the confusion matrix (A correct and B correct is
a true positive, A correct and B wrong a false positive, ...), precision, recall, the false-positive and
false-negative rates, raw agreement, Cohen's kappa, and for a score (a reward model, a judge's probability of
"yes") the area under the ROC curve against B. Samples of one problem are not independent (a verifier that
mis-parses a problem's reference errs on all its samples), so every interval is clustered by problem.

Intervals (``confidence`` 0.95 by default), all closed form, so a million samples cost well under a second:

* Rates (a ratio ``Y / X`` of two sums over problems, e.g. FPR = FP / (FP + TN)): the Wilson score interval
  with the problems' design effect (Korn & Graubard 1998). The cluster-robust variance of the ratio is the
  linearised ``P/(P-1) * sum_p (y_p - R x_p)^2 / X^2`` over the P problems; the design effect is its ratio to
  the binomial variance ``R (1 - R) / X`` (at least 1: never narrower than the unclustered interval); the
  Wilson interval is computed for the effective size ``X / deff``. It stays inside [0, 1] and behaves at rates
  near 0, where verifier error rates live. With R at 0 or 1 the design effect is taken as 1.
* Cohen's kappa: the delta method on the four cell shares (each problem's cell counts as a cluster total),
  ``kappa +- z SE``, clipped to [-1, 1]. NaN when both verdict sets hold one class only.
* AUROC: the Mann-Whitney estimate (each positive against each negative, ties counted half); its variance from
  the structural components of DeLong et al., summed per problem as Obuchowski (1997) does for clustered data;
  the interval is ``logit(AUROC) +- z SE / (AUROC (1 - AUROC))`` mapped back (it stays inside [0, 1]).

``tests/test_agreement.py`` checks by simulation, with problems whose verifier error rates differ, that these
intervals contain the true rates, kappa and AUROC at about their nominal rate (0.93-0.95 for 0.95 over 400
simulations; a Wilson interval that ignores the problems contains the true FPR in 0.82 of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logit
from scipy.stats import norm

from harness.core.errors import check_number


@dataclass(frozen=True)
class Rate:
    """A ratio of counts with its interval clustered by problem.

    Attributes:
        value: ``count / total`` (NaN when ``total`` is 0).
        low, high: the interval (NaN when ``total`` is 0).
        count: the numerator (e.g. false positives).
        total: the denominator (e.g. samples B judges wrong).
        effective_total: ``total`` over the design effect: the binomial sample size with the same variance
            (what a later analysis may treat as the audit's size, e.g. ``ErrorRate.from_counts``).
    """

    value: float
    low: float
    high: float
    count: int
    total: int
    effective_total: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _json_float(self.value),
            "low": _json_float(self.low),
            "high": _json_float(self.high),
            "count": self.count,
            "total": self.total,
            "effective_total": _json_float(self.effective_total),
        }


@dataclass(frozen=True)
class Statistic:
    """An estimate with its interval and standard error (NaN where undefined)."""

    value: float
    low: float
    high: float
    standard_error: float

    def to_dict(self) -> dict[str, Any]:
        return {key: _json_float(getattr(self, key)) for key in ("value", "low", "high", "standard_error")}


@dataclass(frozen=True)
class Agreement:
    """Verdict set A against reference B over the samples both judged (see the module docstring).

    Attributes:
        true_positives: A correct, B correct.
        false_positives: A correct, B wrong.
        false_negatives: A wrong, B correct.
        true_negatives: A wrong, B wrong.
        samples: samples compared (the four counts add up to it).
        problems: problems they belong to.
        confidence: the intervals' level.
        precision: TP / (TP + FP).
        recall: TP / (TP + FN) (1 - FNR).
        false_positive_rate: FP / (FP + TN).
        false_negative_rate: FN / (FN + TP).
        accuracy: (TP + TN) / samples, the raw agreement.
        kappa: Cohen's kappa.
        auroc: AUROC of A's score against B (None when A has no score).
        disagreements: indices (into the inputs) of the samples where A and B differ, ascending.
    """

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    samples: int
    problems: int
    confidence: float
    precision: Rate
    recall: Rate
    false_positive_rate: Rate
    false_negative_rate: Rate
    accuracy: Rate
    kappa: Statistic
    auroc: Statistic | None
    disagreements: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content (without the disagreeing samples, which a caller writes with their ids)."""
        return {
            "samples": self.samples,
            "problems": self.problems,
            "confidence": self.confidence,
            "confusion": {
                "true_positives": self.true_positives,
                "false_positives": self.false_positives,
                "false_negatives": self.false_negatives,
                "true_negatives": self.true_negatives,
            },
            "precision": self.precision.to_dict(),
            "recall": self.recall.to_dict(),
            "false_positive_rate": self.false_positive_rate.to_dict(),
            "false_negative_rate": self.false_negative_rate.to_dict(),
            "accuracy": self.accuracy.to_dict(),
            "kappa": self.kappa.to_dict(),
            "auroc": None if self.auroc is None else self.auroc.to_dict(),
            "disagreements": int(self.disagreements.size),
            "interval_method": "clustered by problem: Wilson with design effect (rates), delta method (kappa), "
            "Obuchowski (AUROC)",
        }


def agreement(
    verdicts: ArrayLike,
    reference: ArrayLike,
    problems: ArrayLike,
    *,
    scores: ArrayLike | None = None,
    confidence: float = 0.95,
) -> Agreement:
    """Agreement of ``verdicts`` (A) with ``reference`` (B), aligned sample by sample.

    Args:
        verdicts: A's verdict per sample (bool), e.g. a verifier's, or a score set thresholded by the caller.
        reference: B's verdict per sample (bool), taken as the truth.
        problems: the problem of each sample (any ids; integer codes are fastest), the clusters.
        scores: A's score per sample, higher meaning "more likely correct", for the AUROC against B.
        confidence: level of every interval, in (0, 1).
    """
    check_number("confidence", confidence, above=0, below=1)
    a = _as_bool("verdicts", verdicts)
    b = _as_bool("reference", reference)
    codes, clusters = problem_codes(problems)
    if not a.shape == b.shape == codes.shape:
        raise ValueError(
            f"verdicts, reference and problems differ in length: {a.size}, {b.size} and {codes.size} samples"
        )
    if a.size == 0:
        raise ValueError("no samples judged by both verdict sets")
    cells = _cells_per_problem(a, b, codes, clusters)  # (problems, 4): TP, FP, FN, TN
    tp, fp, fn, tn = (cells[:, column] for column in range(4))
    z = float(norm.ppf(0.5 + confidence / 2))
    total_tp, total_fp, total_fn, total_tn = (int(value) for value in cells.sum(axis=0))
    return Agreement(
        true_positives=total_tp,
        false_positives=total_fp,
        false_negatives=total_fn,
        true_negatives=total_tn,
        samples=int(a.size),
        problems=clusters,
        confidence=confidence,
        precision=clustered_rate(tp, tp + fp, z),
        recall=clustered_rate(tp, tp + fn, z),
        false_positive_rate=clustered_rate(fp, fp + tn, z),
        false_negative_rate=clustered_rate(fn, fn + tp, z),
        accuracy=clustered_rate(tp + tn, cells.sum(axis=1), z),
        kappa=_kappa(cells, z),
        auroc=None if scores is None else auroc(scores, b, codes, confidence=confidence),
        disagreements=np.flatnonzero(a != b),
    )


def problem_codes(problems: ArrayLike) -> tuple[np.ndarray, int]:
    """Integer codes 0..P-1 for per-sample problem ids, and P."""
    values = np.asarray(problems)
    if values.ndim != 1:
        raise ValueError(f"problems must be one id per sample (1-D), got shape {values.shape}")
    if values.size == 0:
        return np.zeros(0, dtype=np.int64), 0
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64, copy=False), int(distinct.size)


def clustered_rate(count: np.ndarray, total: np.ndarray, z: float) -> Rate:
    """``sum(count) / sum(total)`` over problems, with the Wilson interval at the design effect's size."""
    count = np.asarray(count, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    y, x = float(count.sum()), float(total.sum())
    if x == 0:
        nan = float("nan")
        return Rate(nan, nan, nan, int(y), 0, nan)
    ratio = y / x
    clusters = count.size
    effective = x
    if 0 < ratio < 1 and clusters > 1:
        clustered = clusters / (clusters - 1) * float(np.sum((count - ratio * total) ** 2)) / x**2
        effective = x / max(clustered / (ratio * (1 - ratio) / x), 1.0)
    low, high = wilson_interval(ratio, effective, z)
    return Rate(ratio, low, high, int(y), int(x), effective)


def wilson_interval(proportion: float, size: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion observed on ``size`` (possibly effective, fractional) trials."""
    spread = z * z / size
    centre = (proportion + spread / 2) / (1 + spread)
    half = z / (1 + spread) * np.sqrt(proportion * (1 - proportion) / size + spread / (4 * size))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def area_under_roc(scores: ArrayLike, labels: ArrayLike) -> float:
    """AUROC of ``scores`` for boolean ``labels``: P(score of a positive > score of a negative), ties half.

    NaN when a class is missing. Each positive's count of negatives below it (ties half) by binary search in
    the sorted negatives (sorting both sides first keeps the searches cache-friendly).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan")
    below = _negatives_below(np.sort(scores[labels]), np.sort(scores[~labels]))
    return float(below.sum() / (labels.sum() * (labels.size - labels.sum())))


def auroc(scores: ArrayLike, labels: ArrayLike, problems: ArrayLike, *, confidence: float = 0.95) -> Statistic:
    """AUROC of ``scores`` against ``labels`` with its interval clustered by problem (Obuchowski 1997).

    Each positive's placement value is the share of negatives it outranks (ties half), each negative's the
    share of positives that outrank it; their sums per problem give the cluster-robust variance
    ``S10 / m + S01 / n + 2 S11 / (m n)``. NaN statistics when a class is missing.
    """
    check_number("confidence", confidence, above=0, below=1)
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    codes, clusters = problem_codes(problems)
    if not scores.shape == labels.shape == codes.shape:
        raise ValueError(f"scores, labels and problems differ in length: {scores.size}, {labels.size}, {codes.size}")
    if np.isnan(scores).any():
        raise ValueError(f"scores hold {int(np.isnan(scores).sum())} NaN values")
    m = int(labels.sum())
    n = labels.size - m
    if m == 0 or n == 0 or clusters < 2:
        nan = float("nan")
        return Statistic(area_under_roc(scores, labels), nan, nan, nan)
    positive, negative = scores[labels], scores[~labels]
    placement_positive = _negatives_below(positive, np.sort(negative)) / n
    placement_negative = (m - _negatives_below(negative, np.sort(positive))) / m
    value = float(placement_positive.mean())
    per_positive = np.bincount(codes[labels], weights=placement_positive, minlength=clusters)
    per_negative = np.bincount(codes[~labels], weights=placement_negative, minlength=clusters)
    positives_in = np.bincount(codes[labels], minlength=clusters)
    negatives_in = np.bincount(codes[~labels], minlength=clusters)
    deviation_positive = per_positive - positives_in * value
    deviation_negative = per_negative - negatives_in * value
    scale = clusters / (clusters - 1)
    s10 = scale * float(deviation_positive @ deviation_positive) / m
    s01 = scale * float(deviation_negative @ deviation_negative) / n
    s11 = scale * float(deviation_positive @ deviation_negative)
    standard_error = float(np.sqrt(max(s10 / m + s01 / n + 2 * s11 / (m * n), 0.0)))
    z = float(norm.ppf(0.5 + confidence / 2))
    if 0 < value < 1:
        spread = z * standard_error / (value * (1 - value))
        low, high = float(expit(logit(value) - spread)), float(expit(logit(value) + spread))
    else:  # perfect (or perfectly wrong) ranking: no spread to transform
        low = high = value
    return Statistic(value, low, high, standard_error)


def _negatives_below(queries: np.ndarray, sorted_others: np.ndarray) -> np.ndarray:
    """Per query, how many of ``sorted_others`` lie below it, ties counting half."""
    below = np.searchsorted(sorted_others, queries, side="left")
    return below + 0.5 * (np.searchsorted(sorted_others, queries, side="right") - below)


def _as_bool(name: str, values: ArrayLike) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one verdict per sample (1-D), got shape {array.shape}")
    if array.dtype != bool:
        if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must be booleans (or 0/1)")
        array = array.astype(bool)
    return array


def _cells_per_problem(a: np.ndarray, b: np.ndarray, codes: np.ndarray, clusters: int) -> np.ndarray:
    """Per problem, the counts of the four cells TP, FP, FN, TN (columns)."""
    cell = np.where(a, np.where(b, 0, 1), np.where(b, 2, 3))
    return np.bincount(codes * 4 + cell, minlength=clusters * 4).reshape(clusters, 4).astype(np.float64)


def _kappa(cells: np.ndarray, z: float) -> Statistic:
    """Cohen's kappa from per-problem cell counts, its delta-method standard error clustered by problem."""
    total = float(cells.sum())
    share = cells.sum(axis=0) / total  # TP, FP, FN, TN
    observed = share[0] + share[3]
    a_positive = share[0] + share[1]
    b_positive = share[0] + share[2]
    expected = a_positive * b_positive + (1 - a_positive) * (1 - b_positive)
    if expected >= 1:  # both verdict sets constant: kappa undefined
        nan = float("nan")
        return Statistic(nan, nan, nan, nan)
    kappa = (observed - expected) / (1 - expected)
    d_observed = 1 / (1 - expected)
    d_expected = (observed - 1) / (1 - expected) ** 2
    d_a, d_b = d_expected * (2 * b_positive - 1), d_expected * (2 * a_positive - 1)
    gradient = np.array([d_observed + d_a + d_b, d_a, d_b, d_observed])
    clusters = cells.shape[0]
    if clusters < 2:
        nan = float("nan")
        return Statistic(float(kappa), nan, nan, nan)
    # each problem's influence: the gradient times its cells' departure from the overall shares
    influence = (cells - cells.sum(axis=1, keepdims=True) * share) @ gradient
    standard_error = float(np.sqrt(clusters / (clusters - 1) * float(influence @ influence)) / total)
    return Statistic(
        float(kappa), max(kappa - z * standard_error, -1.0), min(kappa + z * standard_error, 1.0), standard_error
    )


def _json_float(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
