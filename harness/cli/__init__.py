"""Command-line interface: ``ttc``. Each command group lives in its own module and registers on ``app``."""

from harness.cli.app import app
from harness.cli import forecasting  # noqa: F401  (forecast, backtest, budget)


def main() -> None:
    app()
