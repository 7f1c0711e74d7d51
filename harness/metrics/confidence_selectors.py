"""Confidence selectors (DeepConf, Fu et al. 2025, offline mode): choose among k samples by the model's own
confidence, recorded per sample at sampling time (``harness.engines.confidence``).

* ``conf-min-window``: best-of-k by the lowest sliding-window mean (DeepConf's *lowest group confidence*).
* ``conf-tail``: best-of-k by the mean over the last tokens (*tail confidence*).
* ``conf-bottom10``: best-of-k by the mean of the lowest 10% of window means (*bottom-10% group confidence*).
* ``conf-majority=ETA``: keep the most confident ETA% of the k samples (by ``conf-bottom10``'s statistic unless
  told otherwise), then majority vote among them: DeepConf's *confidence filtering* (its DeepConf@low is
  ETA = 10, DeepConf@high ETA = 90). DeepConf then weights each kept vote by its confidence; this selector
  counts votes, as ``majority`` does (a confidence-weighted vote is ``weighted`` over a confidence score set).

Best-of-k is ``verifiers.selection.best_of_k_curves`` (exact over all k-subsets, ties at random). The
filtered vote is estimated over uniformly random k-subsets like the other vote selectors:

* kept: the ``m = max(1, ceil(ETA k / 100))`` most confident samples of the subset, and any sample tied with
  the m-th (DeepConf's ``confidence >= percentile threshold``, so the rule needs no tie-break);
* vote: majority over the kept samples' answers, samples without an answer never win, ties between answers
  split evenly, an answer's correctness the share of its samples judged correct (as ``majority``);
* exact where cheap: at k with ``m = k`` it *is* majority vote (``majority_vote_curves``); elsewhere all
  k-subsets are enumerated while they number few (``EXACT_ENUMERATION_CELLS``), else Monte-Carlo over random
  permutations (a permutation's first k samples are a uniform k-subset), with its variance reported.

A sample without tokens has NaN statistics; it ranks below every other sample (-inf).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from harness.core.errors import OptionError
from harness.metrics.selection import (
    EXACT_ENUMERATION_CELLS,
    MC_MAX_CELLS,
    METHODS,
    Estimate,
    _checked_ks,
    _vote_outcome,
    answer_correctness,
    best_of_k_curves,
    compact_answer_ids,
    majority_vote_curves,
)

# selector name -> the per-sample statistic it reads (``ConfidenceStats`` field)
CONFIDENCE_SELECTORS = {
    "conf-min-window": "min_window",
    "conf-tail": "tail",
    "conf-bottom10": "bottom_window",
}
CONF_MAJORITY = "conf-majority"
CONF_MAJORITY_STATISTIC = "bottom_window"
DESCRIPTIONS = {
    "conf-min-window": "best-of-k by the lowest sliding-window confidence (DeepConf lowest group)",
    "conf-tail": "best-of-k by the confidence of the last tokens (DeepConf tail)",
    "conf-bottom10": "best-of-k by the mean of the lowest 10% of window confidences (DeepConf bottom-10%)",
    CONF_MAJORITY: "majority vote over the most confident ETA% of the k (DeepConf filtering, unweighted)",
}
# Monte-Carlo: sample visits aimed at per call when the permutations are not given, and their bounds. At
# 1,000 problems x 1,000 samples this is about 40 permutations: a Monte-Carlo standard error near 0.003 on
# the mean accuracy, a tenth of the interval over problems.
MC_TARGET_WORK = 4e7
MC_MIN_SUBSETS = 16
MC_MAX_SUBSETS = 2000


def parse_eta(text: str) -> float:
    """The ETA of ``conf-majority=ETA``: a percentage in (0, 100] (``OptionError`` on ``selectors`` otherwise)."""
    try:
        eta = float(text)
    except (TypeError, ValueError):
        raise OptionError("selectors", f"conf-majority=ETA needs a number ETA in (0, 100], got {text!r}") from None
    check_eta(eta)
    return eta


def check_eta(eta: float) -> None:
    if not (math.isfinite(eta) and 0 < eta <= 100):
        raise OptionError("selectors", f"conf-majority=ETA needs ETA in (0, 100], got {eta:g}")


def selection_scores(statistic: np.ndarray) -> np.ndarray:
    """A confidence statistic as a selection score: NaN (a sample without tokens) becomes -inf."""
    values = np.asarray(statistic, dtype=np.float64)
    return np.where(np.isnan(values), -np.inf, values)


def confidence_best_of_k(
    confidence: Sequence[np.ndarray], correct: Sequence[np.ndarray], ks: Sequence[int] | np.ndarray
) -> Estimate:
    """``conf-min-window``, ``conf-tail``, ``conf-bottom10``: exact best-of-k by one confidence statistic."""
    return best_of_k_curves([selection_scores(values) for values in confidence], correct, ks)


def kept_count(k: int, eta: float) -> int:
    """How many of k samples the filter keeps before ties: ``max(1, ceil(ETA k / 100))``."""
    return max(1, math.ceil(round(eta * k / 100, 9)))


def confidence_filtered_vote_curves(
    answer_ids: Sequence[np.ndarray],
    correct: Sequence[np.ndarray],
    confidence: Sequence[np.ndarray],
    ks: Sequence[int] | np.ndarray,
    *,
    eta: float,
    method: str = "auto",
    subsets: int | None = None,
    seed: int = 0,
) -> Estimate:
    """``conf-majority=ETA``: accuracy@k of voting among the most confident ETA% of k random samples.

    Args:
        answer_ids: per problem, one integer per sample, equal for equal answers; -1 for no answer.
        correct: per problem, one bool per sample.
        confidence: per problem, one confidence per sample (higher is more confident; NaN lowest).
        ks: increasing subset sizes, each at most the smallest n.
        eta: the percentage kept, in (0, 100].
        method: ``"auto"`` (exact where cheap, else Monte-Carlo), ``"exact"`` or ``"monte-carlo"``.
        subsets: Monte-Carlo permutations per problem (default: about ``MC_TARGET_WORK`` sample visits).
        seed: Monte-Carlo seed.
    """
    check_eta(eta)
    if method not in METHODS:
        raise ValueError(f"confidence_filtered_vote: method must be one of {METHODS}, got {method!r}")
    if not len(answer_ids) == len(correct) == len(confidence):
        raise ValueError("confidence_filtered_vote: the per-problem lists differ in length")
    ks = _checked_ks(ks, [len(c) for c in correct])
    answer_ids = [compact_answer_ids(ids) for ids in answer_ids]
    correct = [np.asarray(c, dtype=bool) for c in correct]
    confidence = [selection_scores(values) for values in confidence]
    for index, (ids, right, conf) in enumerate(zip(answer_ids, correct, confidence)):
        if not ids.shape == right.shape == conf.shape:
            raise ValueError(f"confidence_filtered_vote: problem {index} has arrays of different lengths")
    shares = [answer_correctness(ids, right) for ids, right in zip(answer_ids, correct)]
    kept = np.array([kept_count(int(k), eta) for k in ks])
    problems = len(correct)
    values = np.zeros((problems, ks.size))
    variances = np.zeros_like(values)
    exact = np.zeros(values.shape, dtype=bool)

    unfiltered = kept == ks  # every sample kept: plain majority vote
    if unfiltered.any():
        majority = majority_vote_curves(answer_ids, correct, ks[unfiltered], method=method, subsets=subsets, seed=seed)
        values[:, unfiltered] = majority.values
        variances[:, unfiltered] = majority.variances
        exact[:, unfiltered] = majority.exact
    filtered = np.flatnonzero(~unfiltered)
    sampled: list[int] = []
    for index in range(problems):
        n = correct[index].size
        for column in filtered:
            k = int(ks[column])
            log_cells = (
                math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + math.log(k + shares[index].size + 1)
            )
            if method != "monte-carlo" and log_cells <= math.log(EXACT_ENUMERATION_CELLS):
                values[index, column] = _filtered_vote_enumerated(
                    answer_ids[index], confidence[index], shares[index], k, int(kept[column])
                )
                exact[index, column] = True
            elif method == "exact":
                raise ValueError(
                    f"confidence_filtered_vote: problem {index} has C({n}, {k}) k-subsets, too many to enumerate "
                    f"(limit {EXACT_ENUMERATION_CELLS} cells); use method='auto' or 'monte-carlo'"
                )
        if not exact[index, filtered].all():
            sampled.append(index)
    draws = 0
    if sampled:
        columns = np.array([column for column in filtered if not exact[sampled, column].all()], dtype=np.int64)
        visits = len(sampled) * int(ks[columns].sum())  # sample visits per draw
        draws = subsets or int(np.clip(MC_TARGET_WORK // max(visits, 1), MC_MIN_SUBSETS, MC_MAX_SUBSETS))
        if draws < 2:
            raise ValueError(f"confidence_filtered_vote: Monte-Carlo needs at least 2 subsets per problem, got {draws}")
        rng = np.random.default_rng(seed)
        mc_values, mc_variances = _filtered_vote_monte_carlo(
            [answer_ids[p] for p in sampled],
            [confidence[p] for p in sampled],
            [shares[p] for p in sampled],
            ks[columns],
            kept[columns],
            draws,
            rng,
        )
        for row, problem in enumerate(sampled):
            todo = ~exact[problem, columns]
            values[problem, columns[todo]] = mc_values[row, todo]
            variances[problem, columns[todo]] = mc_variances[row, todo]
    return Estimate(ks, values, variances, exact, draws)


def _filtered_vote_enumerated(
    answer_ids: np.ndarray, confidence: np.ndarray, share: np.ndarray, k: int, keep: int
) -> float:
    """Exact filtered-vote accuracy at one k, over every k-subset (callers bound their number)."""
    n = answer_ids.size
    subsets = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64).reshape(-1, k)
    return float(_filtered_outcomes(answer_ids[subsets], confidence[subsets], share[None, :], keep).mean())


def _filtered_outcomes(ids: np.ndarray, confidence: np.ndarray, share: np.ndarray, keep: int) -> np.ndarray:
    """Per row (a subset: its samples' answer ids and confidences), the expected correctness of the vote among
    its ``keep`` most confident samples and those tied with the last of them. ``share`` (rows or 1, answers)."""
    rows, k = ids.shape
    answers = share.shape[1]
    threshold = np.partition(confidence, k - keep, axis=1)[:, k - keep]
    kept = (confidence >= threshold[:, None]) & (ids >= 0)
    width = answers + 1
    flat = (np.arange(rows)[:, None] * width + np.where(ids >= 0, ids, answers)).ravel()
    counts = np.bincount(flat, weights=kept.ravel().astype(np.float64), minlength=rows * width)
    support = counts.reshape(rows, width)[:, :answers]
    return _vote_outcome(support, support > 0, np.broadcast_to(share, (rows, answers)))


def _filtered_vote_monte_carlo(
    answer_ids: list[np.ndarray],
    confidence: list[np.ndarray],
    shares: list[np.ndarray],
    ks: np.ndarray,
    kept: np.ndarray,
    draws: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo filtered-vote accuracy per problem and k: ``draws`` random permutations of each problem's
    samples, whose first k form a uniform k-subset (one permutation serves every k). Problems of equal n are
    stacked in blocks so that each draw is a few array operations over the block.
    Returns (values, variances of the estimates) of shape (problems, len(ks))."""
    problems = len(answer_ids)
    values = np.zeros((problems, ks.size))
    variances = np.zeros_like(values)
    by_size: dict[int, list[int]] = {}
    for index, ids in enumerate(answer_ids):
        by_size.setdefault(ids.size, []).append(index)
    for n, members in by_size.items():
        rows_per_block = max(1, MC_MAX_CELLS // (4 * n))
        for start in range(0, len(members), rows_per_block):
            block = members[start : start + rows_per_block]
            answers = max(1, *(shares[p].size for p in block))
            ids = np.stack([answer_ids[p] for p in block])
            conf = np.stack([confidence[p] for p in block])
            share = np.zeros((len(block), answers))
            for row, problem in enumerate(block):
                share[row, : shares[problem].size] = shares[problem]

            # deviations from the first draw: a constant estimate has a variance of exactly 0
            shift = _filtered_draw(rng, ids, conf, share, ks, kept)
            total = np.zeros_like(shift)
            squares = np.zeros_like(shift)
            for _ in range(draws - 1):
                deviation = _filtered_draw(rng, ids, conf, share, ks, kept) - shift
                total += deviation
                squares += deviation**2
            values[block] = shift + total / draws
            variances[block] = np.maximum(squares - total**2 / draws, 0.0) / max(draws - 1, 1) / draws
    return values, variances


def _filtered_draw(
    rng: np.random.Generator, ids: np.ndarray, conf: np.ndarray, share: np.ndarray, ks: np.ndarray, kept: np.ndarray
) -> np.ndarray:
    """One Monte-Carlo draw for a block of problems: (problems, len(ks)) outcomes of a random permutation's
    first k samples, each problem permuted independently."""
    order = rng.permuted(np.broadcast_to(np.arange(ids.shape[1]), ids.shape), axis=1)
    drawn_ids = np.take_along_axis(ids, order, axis=1)
    drawn_conf = np.take_along_axis(conf, order, axis=1)
    return np.column_stack(
        [_filtered_outcomes(drawn_ids[:, :k], drawn_conf[:, :k], share, int(keep)) for k, keep in zip(ks, kept)]
    )
