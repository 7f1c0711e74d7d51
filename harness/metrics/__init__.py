"""Estimators over per-problem counts: unbiased pass@k, bootstrap intervals, run summaries, and the
accuracy@k of selectors (majority vote, reward models, likelihood) next to coverage."""
