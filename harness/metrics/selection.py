"""Selectors: how much of coverage a practical choice recovers without the ground truth.

Coverage (pass@k) asks whether *any* of k samples is right. A selector looks at the k samples of a problem and
picks one answer without the reference: by majority vote over extracted answers, by the highest score of a
reward model (best-of-k), or by reward-weighted vote. Its accuracy@k is the chance that the pick is right when
the k samples are a uniformly random k-subset of the n samples stored for the problem. Everything here
estimates that chance *without bias over all k-subsets*, not on the first k samples only (the habit of
lm-eval / lighteval's maj@k, which has a high variance and depends on sample order).

Definitions (each function's result is exactly this expectation, or a Monte-Carlo estimate of it):

* best-of-k (reward model, model likelihood): the sample with the highest score wins. Equal scores are broken
  uniformly at random, so a tie group contributes its share of correct samples (no order effects).
* majority vote: the answer given by the most samples of the subset wins; samples without an extracted answer
  never win (a subset with no answer at all scores 0). Ties between answers are split evenly: each tied answer
  counts 1/(number tied), the expected accuracy of a uniformly random tie-break, which equals the expectation
  of "the answer seen first wins" under a random sample order. The result is deterministic.
* weighted vote: as majority vote, with each answer's support the *sum of its samples' scores* in the subset
  (only answers present in the subset compete; ties, i.e. exactly equal sums, split evenly).
* An answer's correctness is the share of the problem's samples with that answer that were judged correct
  (for majority vote this equals the chance that a random sample of the winning answer is correct; when the
  verifier judges equal answers alike, as it should, it is simply 0 or 1).

Exact computation: best-of-k in closed form (sort by score; the top of a k-subset lies in the tie group with
``L`` samples at or below its score with probability ``[C(L, k) - C(L - size, k)] / C(n, k)``), majority vote
by a generating-function recursion over answers (exact for all k at once, used while its cost is small, see
``majority_vote_exact``), weighted vote by enumerating the k-subsets where there are few. Elsewhere, vote
selectors use Monte-Carlo: random permutations of each problem's samples, whose prefixes of length k are
uniform k-subsets (one permutation serves every k), with the Monte-Carlo variance of every estimate reported.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import comb, gammaln

from harness.core.errors import DataError, OptionError

# Exact majority vote: above this many samples per problem binomial coefficients approach float64's range.
EXACT_VOTE_MAX_SAMPLES = 512
# Exact majority vote: most multiply-adds spent per problem (else Monte-Carlo).
EXACT_VOTE_MAX_COST = 3e7
# Exact weighted vote: most cells (k-subsets x (k + answers)) enumerated for one (problem, k).
EXACT_ENUMERATION_CELLS = 1_000_000
# Monte-Carlo: permutations per problem when not given, chosen so the work stays near MC_TARGET_WORK
# sample visits, and within these bounds.
MC_TARGET_WORK = 1.6e8
MC_MIN_SUBSETS = 16
MC_MAX_SUBSETS = 2000
# Monte-Carlo: most (permutation, sample) cells held in memory at once.
MC_MAX_CELLS = 4_000_000

METHODS = ("auto", "exact", "monte-carlo")


@dataclass(frozen=True)
class Estimate:
    """Per-problem accuracy@k of a selector.

    Attributes:
        ks: the subset sizes (ascending).
        values: (problems, len(ks)) unbiased estimates of each problem's accuracy@k.
        variances: Monte-Carlo variance of each estimate (0 where it was computed exactly).
        exact: (problems, len(ks)) bool, True where the value is exact.
        subsets: Monte-Carlo permutations drawn per problem (0 when everything is exact).
    """

    ks: np.ndarray
    values: np.ndarray
    variances: np.ndarray
    exact: np.ndarray
    subsets: int = 0

    def mean(self) -> np.ndarray:
        """Accuracy@k averaged over problems."""
        return self.values.mean(axis=0)

    def monte_carlo_standard_error(self) -> np.ndarray:
        """Standard error of ``mean()`` due to Monte-Carlo alone (0 where all problems are exact)."""
        return np.sqrt(self.variances.sum(axis=0)) / self.values.shape[0]


# -- inputs ------------------------------------------------------------------------------------------------


def encode_answers(answers: Sequence[str | None]) -> np.ndarray:
    """Integer ids for one problem's extracted answers: equal strings share an id; None (no answer) is -1."""
    ids = np.full(len(answers), -1, dtype=np.int64)
    seen: dict[str, int] = {}
    for index, answer in enumerate(answers):
        if answer is not None:
            ids[index] = seen.setdefault(answer, len(seen))
    return ids


def _checked_ks(ks: Sequence[int] | np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    ks = np.asarray(ks, dtype=np.int64)
    if ks.ndim != 1 or ks.size == 0:
        raise OptionError("ks", "must be a non-empty list of subset sizes")
    if np.any(np.diff(ks) <= 0):
        raise OptionError("ks", f"must be strictly increasing, got {ks.tolist()}")
    if ks[0] < 1:
        raise OptionError("ks", "k must be at least 1")
    smallest = min(sizes) if len(sizes) else 0
    if ks[-1] > smallest:
        raise OptionError("ks", f"k = {int(ks[-1])} exceeds the samples of some problem (smallest n is {smallest})")
    return ks


def _checked_problem(name: str, index: int, correct: np.ndarray, **arrays: np.ndarray) -> None:
    for label, values in arrays.items():
        if values.shape != correct.shape:
            raise DataError(f"{name}: problem {index} has {values.shape[0]} {label} for {correct.shape[0]} samples")
        if values.dtype.kind == "f" and np.isnan(values).any():
            raise DataError(f"{name}: problem {index} has NaN {label}")


def compact_answer_ids(answer_ids: np.ndarray) -> np.ndarray:
    """Relabel one problem's answer ids as 0..A-1 (any integers in; equal stay equal; -1 stays -1)."""
    answer_ids = np.asarray(answer_ids, dtype=np.int64)
    valid = answer_ids >= 0
    compact = np.full(answer_ids.shape, -1, dtype=np.int64)
    compact[valid] = np.unique(answer_ids[valid], return_inverse=True)[1]
    return compact


def answer_correctness(answer_ids: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Per compact answer id (0..A-1): the share of the samples with that answer judged correct."""
    valid = answer_ids >= 0
    size = int(answer_ids.max()) + 1 if valid.any() else 0
    support = np.bincount(answer_ids[valid], minlength=size)
    right = np.bincount(answer_ids[valid], weights=correct[valid].astype(np.float64), minlength=size)
    return right / np.maximum(support, 1)


def _log_comb(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """log C(a, k), -inf where a < k (broadcasting)."""
    a, k = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(k, dtype=np.float64))
    possible = a >= k
    safe = np.where(possible, a, k)
    return np.where(possible, gammaln(safe + 1) - gammaln(k + 1) - gammaln(safe - k + 1), -np.inf)


# -- best of k by a score -----------------------------------------------------------------------------------


def best_of_k(scores: np.ndarray, correct: np.ndarray, ks: Sequence[int] | np.ndarray) -> np.ndarray:
    """Exact accuracy@k of picking the highest-scoring of k random samples (one problem; ties at random).

    Sort the samples by score into tie groups; with ``L`` samples scoring at most a group's score and ``s``
    samples in the group, the best of a random k-subset lies in that group with probability
    ``[C(L, k) - C(L - s, k)] / C(n, k)``, and is then a uniformly random member of it. Log space keeps this
    exact for n of many thousands.
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    n = scores.shape[0]
    ks = np.asarray(ks, dtype=np.int64)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    group = np.cumsum(starts) - 1
    size = np.bincount(group).astype(np.float64)
    right = np.bincount(group, weights=correct[order].astype(np.float64))
    at_most = np.cumsum(size)
    keep = right > 0  # groups without a correct sample add nothing
    at_most, size, share = at_most[keep, None], size[keep, None], (right[keep] / size[keep])[:, None]
    log_top = _log_comb(at_most, ks) - _log_comb(n, ks)
    with np.errstate(invalid="ignore"):
        inside = -np.expm1(_log_comb(at_most - size, ks) - _log_comb(at_most, ks))
    chance = np.where(np.isfinite(log_top), np.exp(log_top) * inside, 0.0)
    return (chance * share).sum(axis=0)


def best_of_k_curves(
    scores: Sequence[np.ndarray], correct: Sequence[np.ndarray], ks: Sequence[int] | np.ndarray
) -> Estimate:
    """Exact best-of-k accuracy for many problems (lists of per-problem arrays)."""
    if len(scores) != len(correct):
        raise ValueError(f"best_of_k_curves: {len(scores)} score arrays for {len(correct)} problems")
    ks = _checked_ks(ks, [len(c) for c in correct])
    values = np.empty((len(correct), ks.size))
    for index, (problem_scores, problem_correct) in enumerate(zip(scores, correct)):
        problem_scores = np.asarray(problem_scores, dtype=np.float64)
        _checked_problem("best_of_k", index, np.asarray(problem_correct), scores=problem_scores)
        values[index] = best_of_k(problem_scores, problem_correct, ks)
    return Estimate(ks, values, np.zeros_like(values), np.ones(values.shape, dtype=bool))


# -- majority vote: exact ------------------------------------------------------------------------------------


def _answer_support(answer_ids: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per distinct answer: samples giving it and its correctness; plus the samples without an answer."""
    valid = answer_ids >= 0
    _, inverse = np.unique(answer_ids[valid], return_inverse=True)
    support = np.bincount(inverse).astype(np.int64)
    share = np.bincount(inverse, weights=correct[valid].astype(np.float64)) / np.maximum(support, 1)
    return support, share, int((~valid).sum())


def majority_vote_cost(answer_ids: np.ndarray, max_k: int) -> float:
    """Multiply-adds ``majority_vote_exact`` needs for one problem (to choose it or Monte-Carlo)."""
    support, _, _ = _answer_support(np.asarray(answer_ids), np.zeros(len(answer_ids), dtype=bool))
    cost = 0.0
    for t in range(1, min(int(support.max(initial=0)), max_k) + 1):
        active = int((support >= t).sum())
        ties = min(active, max_k // t)
        cost += active * (max_k + 1) * (ties + 1) * min(t, ties + 1)
    return cost


def _convolve_z(poly: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Multiply a polynomial in z (rows; columns are powers of w) by ``factor(z)``, truncated to its rows."""
    rows = poly.shape[0]
    out = np.zeros_like(poly)
    if factor.size <= poly.shape[1]:
        for power, coefficient in enumerate(factor[:rows]):
            out[power:] += coefficient * poly[: rows - power]
    else:
        for column in range(poly.shape[1]):
            out[:, column] = np.convolve(poly[:, column], factor)[:rows]
    return out


def _shift_tie(poly: np.ndarray, t: int) -> np.ndarray:
    """Multiply by z^t w, truncated."""
    out = np.zeros_like(poly)
    rows, columns = poly.shape
    if t < rows and columns > 1:
        out[t:, 1:] = poly[: rows - t, :-1]
    return out


def majority_vote_exact(answer_ids: np.ndarray, correct: np.ndarray, max_k: int) -> np.ndarray:
    """Exact majority-vote accuracy@k of one problem for every k = 1..max_k (ties split evenly).

    For each vote count t, the k-subsets whose top answer count is exactly t are counted by a generating
    function over the answers with at least t samples: answer b contributes ``sum_{x<t} C(m_b, x) z^x``
    (fewer than t in the subset) plus ``C(m_b, t) z^t w`` (tied at the top), and the other samples
    ``(1 + z)^M``. The coefficient of ``z^k w^j`` counts subsets of size k with j answers tied at the top; a
    companion series carried along like a derivative accumulates the tied answers' correctness, which is
    divided by j (the even split). Summing over t and dividing by C(n, k) gives accuracy@k for all k at once.
    """
    answer_ids = np.asarray(answer_ids)
    correct = np.asarray(correct, dtype=bool)
    n = answer_ids.shape[0]
    if n > EXACT_VOTE_MAX_SAMPLES:
        raise ValueError(f"exact majority vote supports up to {EXACT_VOTE_MAX_SAMPLES} samples per problem, got {n}")
    if not 1 <= max_k <= n:
        raise ValueError(f"max_k must be in 1..{n}, got {max_k}")
    support, share, unanswered = _answer_support(answer_ids, correct)
    powers = np.arange(max_k + 1)
    favourable = np.zeros(max_k + 1)
    for t in range(1, min(int(support.max(initial=0)), max_k) + 1):
        active = np.flatnonzero(support >= t)
        ties = min(active.size, max_k // t)
        rest = unanswered + int(support[support < t].sum())
        count = np.zeros((max_k + 1, ties + 1))
        count[:, 0] = comb(rest, powers)
        right = np.zeros_like(count)
        for answer in active:
            below = comb(support[answer], np.arange(t))
            at_top = comb(support[answer], t)
            count_tied = _shift_tie(count, t) * at_top
            right = _convolve_z(right, below) + _shift_tie(right, t) * at_top + count_tied * share[answer]
            count = _convolve_z(count, below) + count_tied
        favourable += (right[:, 1:] / np.arange(1, ties + 1)).sum(axis=1)
    return favourable[1:] / comb(n, powers[1:])


# -- votes: exact enumeration and Monte-Carlo ------------------------------------------------------------------


def _vote_outcome(support: np.ndarray, present: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Expected correctness of the winning answer per row (ties split evenly; 0 with no answer present)."""
    masked = np.where(present, support, -np.inf)
    top = masked.max(axis=1, keepdims=True, initial=-np.inf)
    tied = present & (masked == top)
    tied_count = tied.sum(axis=1)
    return np.where(tied_count > 0, (tied * share).sum(axis=1) / np.maximum(tied_count, 1), 0.0)


def _weighted_vote_enumerated(answer_ids: np.ndarray, weights: np.ndarray, share: np.ndarray, k: int) -> float:
    """Exact weighted-vote accuracy at one k by enumerating all k-subsets (callers bound their number)."""
    n = answer_ids.shape[0]
    answers = share.shape[0]
    subsets = np.arange(n)[None, :] if k == n else np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
    columns = np.where(answer_ids >= 0, answer_ids, answers)[subsets]  # no answer -> spare column
    flat = (np.arange(subsets.shape[0])[:, None] * (answers + 1) + columns).ravel()
    size = subsets.shape[0] * (answers + 1)
    sums = np.bincount(flat, weights=weights[subsets].ravel(), minlength=size).reshape(-1, answers + 1)
    present = np.bincount(flat, minlength=size).reshape(-1, answers + 1) > 0
    return float(_vote_outcome(sums[:, :answers], present[:, :answers], share).mean())


def default_subsets(total_samples: int) -> int:
    """Monte-Carlo permutations per problem: about ``MC_TARGET_WORK`` sample visits in all, within bounds."""
    return int(np.clip(MC_TARGET_WORK // max(total_samples, 1), MC_MIN_SUBSETS, MC_MAX_SUBSETS))


def _vote_monte_carlo(
    problems: list[int],
    answer_ids: Sequence[np.ndarray],
    weights: Sequence[np.ndarray] | None,
    shares: Sequence[np.ndarray],
    ks: np.ndarray,
    subsets: int,
    rng: np.random.Generator,
    values: np.ndarray,
    variances: np.ndarray,
) -> None:
    """Monte-Carlo vote accuracy for the given problems, written into their rows of ``values``/``variances``.

    Problems with the same n are stacked into blocks (sorted by their number of distinct answers, so a
    block's count table stays narrow). Each problem's samples are shuffled once, independently; then every
    draw takes one random permutation of the n positions, shared by the block: for each problem, its prefix
    of length k is a uniformly random k-subset, independent between draws and between problems (the
    independent first shuffles see to that). One walk over the permutation serves every k: prefixes for
    k <= n/2, and for larger k the complement of the suffix of length n - k, so a draw visits at most about
    half of the samples, and k = n costs nothing (and has no variance).
    """
    by_size: dict[int, list[int]] = {}
    for problem in problems:
        by_size.setdefault(answer_ids[problem].shape[0], []).append(problem)
    for n, members in by_size.items():
        members.sort(key=lambda problem: shares[problem].shape[0])
        prefix = ks[2 * ks <= n]
        suffix = np.sort(n - ks[2 * ks > n])
        start = 0
        while start < len(members):
            answers = max(shares[members[start]].shape[0], 1)
            rows = max(1, MC_MAX_CELLS // (n + answers * ks.size))
            block = members[start : start + rows]
            answers = max(1, *(shares[problem].shape[0] for problem in block))
            rows = max(1, MC_MAX_CELLS // (n + answers * ks.size))
            block = block[:rows]
            start += len(block)
            _vote_monte_carlo_block(
                block, answer_ids, weights, shares, answers, n, prefix, suffix, ks, subsets, rng, values, variances
            )


def _vote_monte_carlo_block(
    block: list[int],
    answer_ids: Sequence[np.ndarray],
    weights: Sequence[np.ndarray] | None,
    shares: Sequence[np.ndarray],
    answers: int,
    n: int,
    prefix: np.ndarray,
    suffix: np.ndarray,
    ks: np.ndarray,
    subsets: int,
    rng: np.random.Generator,
    values: np.ndarray,
    variances: np.ndarray,
) -> None:
    rows = len(block)
    width = answers + 1  # one spare column collects samples without an answer
    ids = np.stack([np.where(answer_ids[p] >= 0, answer_ids[p], answers) for p in block]).astype(np.int32)
    share = np.zeros((rows, answers))
    for row, problem in enumerate(block):
        share[row, : shares[problem].shape[0]] = shares[problem]
    order = rng.permuted(np.broadcast_to(np.arange(n, dtype=np.int32), (rows, n)), axis=1)
    # Sample-major (n, rows) layout: a draw's positions then gather whole contiguous rows, several times faster
    # than gathering columns of the problem-major array.
    ids = np.ascontiguousarray(np.take_along_axis(ids, order, axis=1).T)
    weight = None
    if weights is not None:
        weight = np.ascontiguousarray(np.take_along_axis(np.stack([weights[p] for p in block]), order, axis=1).T)
    cells = np.arange(rows, dtype=np.int64) * width
    size = rows * width

    # Unweighted votes keep empty weight sums, so the arithmetic on sums below needs no branch.
    sums_size = 0 if weight is None else size

    def tally(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = (ids[positions] + cells).ravel()
        counts = np.bincount(flat, minlength=size)
        sums = np.zeros(0) if weight is None else np.bincount(flat, weights=weight[positions].ravel(), minlength=size)
        return counts, sums

    all_counts, all_sums = tally(np.arange(n))
    column_of = {int(k): column for column, k in enumerate(ks)}
    # sums of outcomes shifted by the first draw's: the variance of a constant estimate comes out exactly 0
    shift = np.full((rows, ks.size), np.nan)
    total = np.zeros((rows, ks.size))
    total_squares = np.zeros((rows, ks.size))
    for _ in range(subsets):
        permutation = rng.permutation(n).astype(np.int32)
        for lengths, from_end in ((prefix, False), (suffix, True)):
            counts = np.zeros(size, dtype=np.int64)
            sums = np.zeros(sums_size)
            previous = 0
            for length in lengths:
                length = int(length)
                span = permutation[n - length : n - previous] if from_end else permutation[previous:length]
                if span.size:
                    more_counts, more_sums = tally(span)
                    counts += more_counts
                    sums += more_sums
                previous = length
                k = n - length if from_end else length
                kept = all_counts - counts if from_end else counts
                table = kept.reshape(rows, width)[:, :answers]
                if weight is None:
                    support: np.ndarray = table
                else:
                    support = ((all_sums - sums) if from_end else sums).reshape(rows, width)[:, :answers]
                outcome = _vote_outcome(support, table > 0, share)
                column = column_of[k]
                if np.isnan(shift[0, column]):
                    shift[:, column] = outcome
                deviation = outcome - shift[:, column]
                total[:, column] += deviation
                total_squares[:, column] += deviation**2
    spread = np.maximum(total_squares - total**2 / subsets, 0.0) / max(subsets - 1, 1)
    values[block] = shift + total / subsets
    variances[block] = spread / subsets


def _vote_curves(
    answer_ids: Sequence[np.ndarray],
    correct: Sequence[np.ndarray],
    weights: Sequence[np.ndarray] | None,
    ks: Sequence[int] | np.ndarray,
    method: str,
    subsets: int | None,
    seed: int,
) -> Estimate:
    name = "majority_vote" if weights is None else "weighted_vote"
    if method not in METHODS:
        raise OptionError("method", f"{name}: method must be one of {METHODS}, got {method!r}")
    if len(answer_ids) != len(correct) or (weights is not None and len(weights) != len(correct)):
        raise ValueError(f"{name}: the per-problem lists differ in length")
    ks = _checked_ks(ks, [len(c) for c in correct])
    answer_ids = [compact_answer_ids(ids) for ids in answer_ids]
    correct = [np.asarray(c, dtype=bool) for c in correct]
    if weights is not None:
        weights = [np.asarray(w, dtype=np.float64) for w in weights]
    for index, problem_correct in enumerate(correct):
        arrays = {"answer ids": answer_ids[index]}
        if weights is not None:
            arrays["weights"] = weights[index]
            if not np.isfinite(weights[index]).all():
                raise DataError(f"{name}: problem {index} has non-finite weights")
        _checked_problem(name, index, problem_correct, **arrays)
    shares = [answer_correctness(ids, c) for ids, c in zip(answer_ids, correct)]
    problems = len(correct)
    values = np.zeros((problems, ks.size))
    variances = np.zeros_like(values)
    exact = np.zeros(values.shape, dtype=bool)
    max_k = int(ks[-1])
    for index in range(problems):
        n = correct[index].shape[0]
        if ks[0] == 1 and method != "monte-carlo":  # one sample: its answer wins (0 without one)
            ids = answer_ids[index]
            values[index, 0] = shares[index][ids[ids >= 0]].sum() / n
            exact[index, 0] = True
        if weights is None:
            feasible = n <= EXACT_VOTE_MAX_SAMPLES and (
                method == "exact" or majority_vote_cost(answer_ids[index], max_k) <= EXACT_VOTE_MAX_COST
            )
            if method == "exact" and not feasible:
                raise OptionError(
                    "method",
                    f"{name}: exact computation supports n <= {EXACT_VOTE_MAX_SAMPLES}; problem {index} has {n}",
                )
            if feasible and method != "monte-carlo":
                values[index] = majority_vote_exact(answer_ids[index], correct[index], max_k)[ks - 1]
                exact[index] = True
        elif method != "monte-carlo":
            for column, k in enumerate(ks):
                if exact[index, column]:
                    continue
                log_cells = _log_comb(n, k) + math.log(int(k) + shares[index].shape[0] + 1)
                if log_cells <= math.log(EXACT_ENUMERATION_CELLS):
                    values[index, column] = _weighted_vote_enumerated(
                        answer_ids[index], weights[index], shares[index], int(k)
                    )
                    exact[index, column] = True
                elif method == "exact":
                    raise OptionError(
                        "method",
                        f"{name}: problem {index} has C({n}, {int(k)}) k-subsets, too many to enumerate "
                        f"(limit {EXACT_ENUMERATION_CELLS} cells); use method='auto' or 'monte-carlo'",
                    )
    sampled = [index for index in range(problems) if not exact[index].all()]
    if not sampled:
        return Estimate(ks, values, variances, exact)
    subsets = subsets or default_subsets(sum(correct[index].shape[0] for index in sampled))
    if subsets < 2:
        raise OptionError("subsets", f"{name}: Monte-Carlo needs at least 2 subsets per problem, got {subsets}")
    mc_values = np.zeros_like(values)
    mc_variances = np.zeros_like(values)
    rng = np.random.default_rng(seed)
    _vote_monte_carlo(sampled, answer_ids, weights, shares, ks, subsets, rng, mc_values, mc_variances)
    values = np.where(exact, values, mc_values)
    variances = np.where(exact, 0.0, mc_variances)
    sizes = np.array([c.shape[0] for c in correct])
    exact |= ks[None, :] == sizes[:, None]  # k = n: the one subset is all samples, so Monte-Carlo is exact
    return Estimate(ks, values, variances, exact, subsets)


def majority_vote_curves(
    answer_ids: Sequence[np.ndarray],
    correct: Sequence[np.ndarray],
    ks: Sequence[int] | np.ndarray,
    *,
    method: str = "auto",
    subsets: int | None = None,
    seed: int = 0,
) -> Estimate:
    """Majority-vote accuracy@k for many problems (lists of per-problem answer ids and correctness).

    Args:
        answer_ids: per problem, one integer per sample, equal for equal answers (e.g. ``encode_answers``);
            -1 for no answer.
        correct: per problem, one bool per sample.
        ks: increasing subset sizes, each at most the smallest n.
        method: ``"exact"`` (the generating-function recursion; n <= ``EXACT_VOTE_MAX_SAMPLES``),
            ``"monte-carlo"``, or ``"auto"``: exact where its cost is below ``EXACT_VOTE_MAX_COST``.
        subsets: Monte-Carlo permutations per problem (default ``default_subsets``).
        seed: Monte-Carlo seed (results are reproducible).
    """
    return _vote_curves(answer_ids, correct, None, ks, method, subsets, seed)


def weighted_vote_curves(
    answer_ids: Sequence[np.ndarray],
    correct: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    ks: Sequence[int] | np.ndarray,
    *,
    method: str = "auto",
    subsets: int | None = None,
    seed: int = 0,
) -> Estimate:
    """Weighted-vote accuracy@k: each answer's support is the sum of its samples' ``weights`` in the subset.

    ``method="auto"`` enumerates the k-subsets exactly where that takes at most ``EXACT_ENUMERATION_CELLS``
    cells and uses Monte-Carlo for the other k; other arguments as in ``majority_vote_curves``.
    """
    return _vote_curves(answer_ids, correct, weights, ks, method, subsets, seed)
