"""Command-line interface: ``ttc``. Each command group lives in its own module and registers on ``app``."""

from harness.cli import (
    compare,  # noqa: F401  (compare)
    forecasting,  # noqa: F401  (forecast, backtest, budget)
    pipeline,  # noqa: F401  (run, sample, verify, analyze, report)
    selection,  # noqa: F401  (score, import-scores, import-samples, compare-verifiers)
    verifiers,  # noqa: F401  (agreement, ensemble)
)
from harness.cli.app import app


def main() -> None:
    app()
