"""Figure 4 (code): sandboxed executions per second, the HumanEval canonical programs through ``run_python``.

Each program runs in a fresh sandbox process (namespaces, limits, guard), as ``python-tests`` verification
does; the figure is executions per second with 1, 2 and 4 threads feeding sandboxes (all cores busy from 2 on
a 2-core machine). CPU is user+sys of this process and its reaped children; kernel work done elsewhere
(network-namespace teardown runs in kernel worker threads) is not counted. Run alone:
``python -m benchmarks.sandbox``.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.common import cpu_count, load_average, median
from benchmarks.suite import FigureResult, Row
from tasks.humaneval import HumanEval
from verifiers.code import build_program
from verifiers.sandbox import run_python

QUICK_PROGRAMS = 24


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def humaneval_programs(limit: int | None = None) -> list[str]:
    """The canonical solution of each HumanEval problem with its tests: programs that all pass."""
    problems = HumanEval().problems()[:limit]
    return [build_program(problem.reference, problem.metadata["canonical_solution"]) for problem in problems]


def run_sandbox_benchmark(programs: Sequence[str], workers: Sequence[int] = (1, 2, 4)) -> dict[str, Any]:
    figures: dict[str, Any] = {"programs": len(programs), "cpus": cpu_count(), "by_workers": {}}
    for count in workers:
        load_before = load_average()
        wall, cpu = time.perf_counter(), cpu_seconds()
        with ThreadPoolExecutor(count) as pool:
            results = list(pool.map(run_python, programs))
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        failed = sum(not result.passed for result in results)
        if failed:
            raise RuntimeError(f"{failed} canonical programs failed in the sandbox: the benchmark would be wrong")
        figures["by_workers"][count] = {
            "executions_per_s": len(programs) / wall,
            "cpu_ms_per_execution": 1000 * cpu / len(programs),
            "median_program_ms": 1000 * median([result.elapsed_s for result in results]),
            "load_average_before": load_before,
        }
    return figures


def run_figure(quick: bool) -> FigureResult:
    programs = humaneval_programs(QUICK_PROGRAMS if quick else None)
    all_cores = cpu_count()
    workers = sorted({1, all_cores, 2 * all_cores})
    figures = run_sandbox_benchmark(programs, workers)
    by_workers = figures["by_workers"]
    row = Row(
        "4 code verification",
        f"sandboxed executions/s, {all_cores} workers ({len(programs)} HumanEval programs)",
        by_workers[all_cores]["executions_per_s"],
        "exec/s",
        detail=", ".join(f"{count} workers {value['executions_per_s']:.1f}/s" for count, value in by_workers.items())
        + f"; {by_workers[all_cores]['cpu_ms_per_execution']:.1f} ms CPU each",
    )
    return FigureResult([row], figures)


def main() -> None:
    print(json.dumps(run_figure(quick=False).figures, indent=2))


if __name__ == "__main__":
    main()
