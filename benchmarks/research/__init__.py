"""Forecasting research scripts: evidence for the choices in docs/forecasting.md, run as
``python -m benchmarks.research.NAME`` from the repository root (their docstrings have the commands)."""
