"""Command-line interface: ``ttc``. Each command group lives in its own module and registers on ``app``."""

from harness.cli.app import app
from harness.cli import pipeline  # noqa: F401  (run, sample, verify, analyze, report)
from harness.cli import selection  # noqa: F401  (score, import-scores, import-samples, compare-verifiers)
from harness.cli import forecasting  # noqa: F401  (forecast, backtest, budget)
from harness.cli import compare  # noqa: F401  (compare)


def main() -> None:
    app()
