"""Estimators over per-problem counts (``Counts``, and counts files): unbiased pass@k, bootstrap intervals, run
summaries, and the selection estimators (best-of-k, majority and weighted vote) behind accuracy@k of selectors.
Pure: counts and arrays in, numbers out; nothing here reads a run directory."""
