"""Per-sample confidence statistics, computed as tokens arrive (DeepConf, Fu et al. 2025), never keeping every
token's value.

Each token contributes one value, higher meaning more confident, in one of two variants:

* ``logprob``: the sampled token's log-probability (what every engine returns with ``logprobs``);
* ``deepconf``: DeepConf's token confidence ``C = -(1/k) sum_j log P(j)`` over the top-k log-probabilities
  (``token_confidence``; DeepConf asks vLLM for ``logprobs=20``). A peaked distribution gives a large C.

Per sample, four statistics of those values (DeepConf's names in brackets; its reference code is
``deepconf/utils.py`` of facebookresearch/deepconf):

* ``mean``: the mean over all tokens (average trace confidence; for ``logprob``, the mean token
  log-probability the ``likelihood`` selector already reads);
* ``min_window``: the lowest mean over a sliding window of ``window`` consecutive tokens, stride 1 (lowest group
  confidence; DeepConf's window is 2048 tokens);
* ``tail``: the mean over the last ``tail`` tokens (tail confidence, 2048 in DeepConf);
* ``bottom_window``: the mean of the lowest ``bottom_fraction`` (10%) of those sliding-window means, at least
  one of them (bottom-10% group confidence; DeepConf keeps ``max(1, int(0.1 * windows))``).

A sample shorter than the window has one group, all of its tokens (as in DeepConf). A sample without tokens has
NaN statistics.

Memory: the sliding windows and the tail need the running prefix sums of the last ``max(window, tail) + 1``
tokens (a ring buffer), the mean a running sum. The bottom fraction of the window means is a quantile of a
stream whose length is unknown until the end, and no fixed memory computes it exactly; the accumulator keeps
the lowest ``bottom_fraction`` of the most windows the sample can have (``max_tokens - window + 1``), so its
memory is ``O(window + tail + bottom_fraction * max_tokens)`` numbers, a tenth of the tokens at most, and the
result is exact. Without ``max_tokens`` that buffer keeps every window mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from harness.core.errors import OptionError, check_number

DEFAULT_WINDOW = 2048
DEFAULT_TAIL = 2048
DEFAULT_BOTTOM_FRACTION = 0.1
# vLLM returns at most 20 log-probabilities per position by default (its max_logprobs), DeepConf's k
MAX_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class ConfidenceStats:
    """One sample's confidence statistics (see the module docstring); NaN without tokens."""

    tokens: int
    mean: float
    min_window: float
    tail: float
    bottom_window: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "tokens": self.tokens,
            "mean": self.mean,
            "min_window": self.min_window,
            "tail": self.tail,
            "bottom_window": self.bottom_window,
        }


def token_confidence(top_logprobs: ArrayLike) -> np.ndarray:
    """DeepConf's token confidence per token: minus the mean of the row's top-k log-probabilities.

    ``top_logprobs`` is (tokens, k); rows may be padded with NaN where an engine returned fewer than k.
    """
    values = np.asarray(top_logprobs, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"top log-probabilities must be (tokens, k), got shape {values.shape}")
    if values.shape[0] and np.isnan(values).all(axis=1).any():
        raise ValueError("a token has no log-probabilities")
    return -np.nanmean(values, axis=1) if values.shape[0] else np.zeros(0)


class ConfidenceAccumulator:
    """Streams one sample's per-token values (``add``) into its ``ConfidenceStats`` (``result``).

    Args:
        window: tokens per sliding window (``min_window``, ``bottom_window``).
        tail: tokens at the end for ``tail``.
        bottom_fraction: share of the lowest window means averaged by ``bottom_window``, in (0, 1].
        max_tokens: the most tokens the sample can have (the engine's limit): bounds the memory of
            ``bottom_window`` (see the module docstring); None keeps every window mean.
    """

    def __init__(
        self,
        window: int = DEFAULT_WINDOW,
        tail: int = DEFAULT_TAIL,
        bottom_fraction: float = DEFAULT_BOTTOM_FRACTION,
        max_tokens: int | None = None,
    ) -> None:
        check_confidence_settings(window, tail, bottom_fraction)
        check_number("max_tokens", max_tokens, at_least=1)
        self.window = int(window)
        self.tail = int(tail)
        self.bottom_fraction = float(bottom_fraction)
        self.max_tokens = max_tokens
        self.keep = None if max_tokens is None else _bottom_count(int(max_tokens) - self.window + 1, bottom_fraction)
        self.tokens = 0
        self.total = 0.0
        self.lowest_window = np.inf
        # prefix sums S_j (sum of the first j values) for the last len(ring) positions j, at ring[j % len(ring)]
        self.ring = np.zeros(max(self.window, self.tail) + 1)
        self.window_means = np.zeros(0)  # the lowest window means so far (all of them when keep is None)

    def add(self, values: ArrayLike) -> None:
        """Feed the next tokens' values (1-D, any length, in order)."""
        chunk = np.asarray(values, dtype=np.float64).reshape(-1)
        if chunk.size == 0:
            return
        if not np.isfinite(chunk).all():
            raise ValueError("token confidence values must be finite")
        if self.max_tokens is not None and self.tokens + chunk.size > self.max_tokens:
            raise ValueError(f"more than max_tokens = {self.max_tokens} tokens fed to a confidence accumulator")
        start = self.tokens
        size = self.ring.size
        prefix = self.ring[start % size] + np.cumsum(chunk)  # S_{start+1} .. S_{start+c}
        ends = np.arange(max(start + 1, self.window), start + chunk.size + 1)  # windows ending at these tokens
        if ends.size:
            begins = ends - self.window
            from_chunk = begins > start
            earlier = self.ring[begins % size]
            begin_sums = np.where(from_chunk, prefix[np.maximum(begins - start - 1, 0)], earlier)
            means = (prefix[ends - start - 1] - begin_sums) / self.window
            self.lowest_window = min(self.lowest_window, float(means.min()))
            self._keep_lowest(means)
        written = np.arange(start + 1, start + chunk.size + 1)[-size:]
        self.ring[written % size] = prefix[-written.size :]
        self.total += float(chunk.sum())
        self.tokens += chunk.size

    def add_top_logprobs(self, top_logprobs: ArrayLike) -> None:
        """Feed the next tokens' top-k log-probabilities ((tokens, k)) as DeepConf token confidences."""
        self.add(token_confidence(top_logprobs))

    def result(self) -> ConfidenceStats:
        """The statistics of every token fed so far (the accumulator may keep going)."""
        tokens = self.tokens
        if tokens == 0:
            nan = float("nan")
            return ConfidenceStats(0, nan, nan, nan, nan)
        size = self.ring.size
        last = self.ring[tokens % size]
        tail = min(self.tail, tokens)
        mean = self.total / tokens
        if tokens < self.window:  # one group: every token
            lowest = bottom = last / tokens
        else:
            lowest = self.lowest_window
            count = _bottom_count(tokens - self.window + 1, self.bottom_fraction)
            bottom = float(np.partition(self.window_means, count - 1)[:count].mean())
        return ConfidenceStats(
            tokens=tokens,
            mean=mean,
            min_window=float(lowest),
            tail=float((last - self.ring[(tokens - tail) % size]) / tail),
            bottom_window=float(bottom),
        )

    def _keep_lowest(self, means: np.ndarray) -> None:
        self.window_means = np.concatenate([self.window_means, means])
        if self.keep is not None and self.window_means.size > 2 * self.keep:
            self.window_means = np.partition(self.window_means, self.keep - 1)[: self.keep]


def confidence_stats(
    values: ArrayLike,
    window: int = DEFAULT_WINDOW,
    tail: int = DEFAULT_TAIL,
    bottom_fraction: float = DEFAULT_BOTTOM_FRACTION,
) -> ConfidenceStats:
    """The statistics of a whole sample's per-token values at once (e.g. imported per-token log-probabilities)."""
    accumulator = ConfidenceAccumulator(window, tail, bottom_fraction)
    accumulator.add(values)
    return accumulator.result()


@dataclass(frozen=True)
class ConfidenceSettings:
    """How an engine computes each sample's confidence statistics while sampling.

    Attributes:
        window: tokens per sliding window (``min_window``, ``bottom_window``); DeepConf's 2048.
        tail: tokens at the end for ``tail``; DeepConf's 2048.
        bottom_fraction: share of the lowest window means averaged by ``bottom_window``.
        top_logprobs: 0: each token's value is the sampled token's log-probability (the ``logprob`` variant,
            free: engines return it for ``logprob_sum``); k >= 1: DeepConf's token confidence over the top k
            log-probabilities of each position (the ``deepconf`` variant; DeepConf asks for 20).
    """

    window: int = DEFAULT_WINDOW
    tail: int = DEFAULT_TAIL
    bottom_fraction: float = DEFAULT_BOTTOM_FRACTION
    top_logprobs: int = 0

    def __post_init__(self) -> None:
        check_confidence_settings(self.window, self.tail, self.bottom_fraction)
        check_number("confidence_top_logprobs", self.top_logprobs, at_least=0, at_most=MAX_TOP_LOGPROBS, integer=True)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ConfidenceSettings | None:
        """The settings an engine's options give: ``confidence`` (on by default), ``confidence_window``,
        ``confidence_tail`` and ``confidence_top_logprobs`` (the defaults where absent); None when off."""
        if not options.get("confidence", True):
            return None
        return cls(
            window=options.get("confidence_window", DEFAULT_WINDOW),
            tail=options.get("confidence_tail", DEFAULT_TAIL),
            top_logprobs=options.get("confidence_top_logprobs", 0),
        )

    @property
    def label(self) -> str:
        """What a sample's statistics were computed with, as stored beside them (``conf_settings``)."""
        values = "logprob" if self.top_logprobs == 0 else f"deepconf top {self.top_logprobs}"
        return f"{values}; window {self.window}; tail {self.tail}; bottom {self.bottom_fraction:g}"

    def accumulator(self, max_tokens: int | None = None) -> ConfidenceAccumulator:
        return ConfidenceAccumulator(self.window, self.tail, self.bottom_fraction, max_tokens)

    def feed(self, accumulator: ConfidenceAccumulator, values: ArrayLike) -> None:
        """Feed the next tokens: their sampled log-probabilities (1-D) for the ``logprob`` variant, their top-k
        log-probabilities ((tokens, k)) for ``deepconf``."""
        if self.top_logprobs:
            accumulator.add_top_logprobs(values)
        else:
            accumulator.add(values)

    def stats(self, values: ArrayLike) -> ConfidenceStats:
        """The statistics of a whole sample's token values at once (see ``feed``)."""
        accumulator = self.accumulator()
        self.feed(accumulator, values)
        return accumulator.result()


def check_confidence_settings(window: int, tail: int, bottom_fraction: float) -> None:
    """Raise ``OptionError`` for a window or tail below 1 token or a bottom fraction outside (0, 1]."""
    for name, value in (("confidence_window", window), ("confidence_tail", tail)):
        check_number(name, value, at_least=1)
        if int(value) != value:
            raise OptionError(name, f"must be a whole number of tokens, got {value}")
    check_number("bottom_fraction", bottom_fraction, above=0, at_most=1)


def _bottom_count(windows: int, fraction: float) -> int:
    """How many of ``windows`` window means the bottom fraction averages (DeepConf: at least one)."""
    return max(1, int(windows * fraction))
