"""The benchmark suite: a registry of figures, one table of the ratios that matter, one JSON file per figure.

Run ``python -m benchmarks``; ``--quick`` runs every figure on tiny sizes (CI keeps it
under 3 minutes, one real engine start included), ``--only NAME`` picks figures, ``--out DIR`` is where the
JSON goes (default ``results/bench``), ``--json`` prints the rows as JSON instead of a table.

A figure is a function ``run(quick) -> FigureResult``: the figures it measured (saved as JSON) and the rows it
contributes to the table. Each row carries its target and whether it was met, so the table reads as a report.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import load_average, machine_info

DEFAULT_OUT = Path("results/bench")


@dataclass(frozen=True)
class Row:
    """One line of the table.

    Attributes:
        figure: the figure's number and name in the issue ("1 overhead").
        metric: what the value is ("harness / bare time per token").
        value: the measured value (None only when the figure was skipped).
        unit: its unit ("x", "tok/s", "s", ...).
        target: the target as text ("<= 1.05"), or "" when the figure has none.
        met: whether the target was met (None: no target, or skipped).
        detail: the side-by-side figures behind the value, short.
    """

    figure: str
    metric: str
    value: float | None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    detail: str = ""


@dataclass
class FigureResult:
    rows: list[Row]
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    """A registered figure: ``runner`` is ``"module:function"`` under ``benchmarks`` (imported on use, so
    figures that need vLLM cost nothing when not selected)."""

    name: str
    title: str
    runner: str
    uses_engine: bool = False

    def run(self, quick: bool) -> FigureResult:
        module, function = self.runner.split(":")
        run: Callable[[bool], FigureResult] = getattr(importlib.import_module(f"benchmarks.{module}"), function)
        return run(quick)


FIGURES: tuple[Figure, ...] = (
    Figure("engine", "1 sampling overhead, 3 prefix sharing", "engine:run_engine_figures", uses_engine=True),
    Figure("tuning", "2 engine tuning on CPU", "tuning:run_tuning", uses_engine=True),
    Figure("startup", "2 start-up time", "tuning:run_startup", uses_engine=True),
    Figure("verification", "4 math verification", "verification:run_figure"),
    Figure("sandbox", "4 code sandbox", "sandbox:run_figure"),
    Figure("analysis", "5 analysis at paper scale", "analysis:run_figure"),
    Figure("store", "6 run store", "store:run_figure"),
    Figure("scaleout", "7 scale-out on Ray", "scaleout:run_figure"),
    Figure("scaleout-vllm", "7 scale-out on Ray, real engine", "scaleout:run_vllm_figure", uses_engine=True),
    Figure("verifier-stats", "8 verifier statistics at scale", "verifier_stats:run_figure"),
    Figure("planner", "9 samples x thinking surface and planner", "planner:run_figure"),
    Figure("confidence", "10 confidence statistics while sampling", "confidence_overhead:run_figure", uses_engine=True),
    Figure("forecast-scale", "11 forecasting at scale", "forecasting_scale:run_figure"),
    Figure("sweep", "12 one-trace thinking sweep vs sampling each budget afresh", "sweep:run_figure", uses_engine=True),
)
FIGURE_NAMES = tuple(figure.name for figure in FIGURES)


def select_figures(only: Sequence[str] | None) -> list[Figure]:
    """The figures named in ``only`` (all when empty), in suite order; unknown names are an error."""
    if not only:
        return list(FIGURES)
    unknown = sorted(set(only) - set(FIGURE_NAMES))
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURE_NAMES)}")
    return [figure for figure in FIGURES if figure.name in only]


def run_suite(
    only: Sequence[str] | None = None, quick: bool = False, out: Path = DEFAULT_OUT, log: Callable[[str], None] = print
) -> list[Row]:
    """Run the selected figures one after another; write ``out/<name>.json`` (``<name>.quick.json`` in quick
    mode, so CI never overwrites the full figures) and return every row.

    A figure that fails contributes a row saying so, and the others still run.
    """
    figures = select_figures(only)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    rows: list[Row] = []
    for figure in figures:
        log(f"[bench] {figure.name}: {figure.title} ...")
        load_before, started = load_average(), time.perf_counter()
        try:
            result = figure.run(quick)
            error = None
        except Exception as exc:  # noqa: BLE001 - one broken figure, whatever broke it, must not hide the others
            result = FigureResult([Row(figure.title, "FAILED", None, detail=f"{type(exc).__name__}: {exc}"[:200])])
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        record = {
            "figure": figure.name,
            "title": figure.title,
            "quick": quick,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(seconds, 2),
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "machine": machine,
            "rows": [asdict(row) for row in result.rows],
            "figures": result.figures,
        }
        if error:
            record["error"] = error
        suffix = ".quick.json" if quick else ".json"
        (out / f"{figure.name}{suffix}").write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
        log(f"[bench] {figure.name}: {seconds:.1f} s, load average {load_before} -> {record['load_average_after']}")
        rows.extend(result.rows)
    return rows


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def format_value(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def print_table(rows: Sequence[Row]) -> None:
    """The suite's table: one row per figure, with its target and whether it was met."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ttc benchmark suite")
    for column in ("figure", "metric", "value", "target", "met", "detail"):
        table.add_column(column, justify="right" if column == "value" else "left", overflow="fold")
    for row in rows:
        met = {True: "yes", False: "NO", None: ""}[row.met]
        value = format_value(row.value) + (f" {row.unit}" if row.unit and row.value is not None else "")
        table.add_row(row.figure, row.metric, value, row.target, met, row.detail)
    Console(width=200).print(table)


def load_rows(out: Path, quick: bool = False) -> list[Row]:
    """The rows stored in ``out`` by earlier runs (suite order), with each figure's date and load average."""
    rows = []
    suffix = ".quick.json" if quick else ".json"
    for figure in FIGURES:
        path = out / f"{figure.name}{suffix}"
        if path.is_file():
            record = json.loads(path.read_text())
            for row in record["rows"]:
                load = f"load {record['load_average_before']}->{record['load_average_after']}, {record['created'][:16]}"
                rows.append(Row(**{**row, "detail": f"{row['detail']} [{load}]"}))
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| figure | metric | value | target | met | detail |", "|---|---|---|---|---|---|"]
    for row in rows:
        value = format_value(row.value) + (f" {row.unit}" if row.unit and row.value is not None else "")
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        cells = [row.figure, row.metric, value, row.target, met, row.detail]
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI: under 3 minutes)")
    parser.add_argument("--only", action="append", choices=FIGURE_NAMES, help="run this figure (repeatable)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the JSON figures")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the rows already stored in --out as a Markdown table (runs nothing)",
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(load_rows(args.out, args.quick)))
        return
    # progress on stderr, so that stdout holds only the table or the JSON
    rows = run_suite(args.only, args.quick, args.out, log=lambda message: print(message, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print_table(rows)
