"""``ttc compare``: runs side by side on one task (coverage, laws, targets, compute-matched coverage)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.app import BytesPerSOption, DtypeBytesOption, FlopsPerSOption, HardwareOption, JsonOption, Output, app
from harness.core.errors import OptionError


@app.command("compare")
def compare_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories on the same task.")],
    out: Annotated[Path, typer.Option(help="Folder for compare.json and compare.html.")] = Path("results/compare"),
    label: Annotated[
        list[str] | None,
        typer.Option(help="Name of a run in tables and plots, one per run (default: folder names)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Refuse runs on different problem sets instead of comparing their shared problems.")
    ] = False,
    verifier: Annotated[
        str | None, typer.Option(help="Verdict set or verifier name (default: each run's latest).")
    ] = None,
    parameters: Annotated[
        list[float] | None,
        typer.Option(help="Model parameters, once for all runs or once per run (default: from each run's manifest)."),
    ] = None,
    price_per_mtok: Annotated[
        list[float] | None,
        typer.Option("--price-per-mtok", help="Money per million tokens, once for all runs or once per run."),
    ] = None,
    hardware: HardwareOption = None,
    flops_per_s: FlopsPerSOption = None,
    bytes_per_s: BytesPerSOption = None,
    model_config: Annotated[
        list[Path] | None,
        typer.Option(help="eFLOPs: a model's config.json, once for all runs or once per run (default: each run's)."),
    ] = None,
    dtype_bytes: DtypeBytesOption = None,
    json_output: JsonOption = False,
) -> None:
    """Compare runs (models or settings) on one task: coverage curves, laws, targets, coverage at equal FLOPs,
    eFLOPs (with --hardware) and money."""
    from harness.forecasting.cost_model import resolve_hardware
    from harness.reporting.compare import COMPARISON_FILES, compare_runs, load_runs, print_comparison, write_comparison
    from harness.store.outputs import check_output_folder

    output = Output("compare", json_output)
    with output.errors():
        check_output_folder(out, "out", COMPARISON_FILES)
        priced_on = None
        if hardware is not None or flops_per_s is not None or bytes_per_s is not None:
            priced_on = resolve_hardware(hardware, flops_per_s, bytes_per_s)
        elif model_config or dtype_bytes is not None:
            raise OptionError("hardware", "eFLOPs need the hardware: a preset or --flops-per-s and --bytes-per-s")
        runs = load_runs(
            run_dirs,
            labels=label,
            strict=strict,
            verifier=verifier,
            parameters=parameters,
            prices=price_per_mtok,
            hardware=priced_on,
            model_configs=model_config,
            dtype_bytes=dtype_bytes,
            log=output.log,
        )
        result = compare_runs(runs, hardware=priced_on)
        json_path, html_path = write_comparison(result, runs, out)
    if output.human:
        print_comparison(result)
    output.echo(f"wrote {json_path} and {html_path}")
    output.result(**result, files=[str(json_path), str(html_path)])
