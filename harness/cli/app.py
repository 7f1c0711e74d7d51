"""The ``ttc`` Typer application. Command modules register themselves on ``app`` when imported."""

import typer

app = typer.Typer(
    name="ttc",
    help="Test-time compute scaling: sample, verify, analyse and forecast repeated sampling.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
