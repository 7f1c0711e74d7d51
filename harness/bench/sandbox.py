"""Sandboxed executions per second: the 164 HumanEval canonical programs, each run through ``run_python``.

Run from the repository root:  PYTHONPATH=$PWD python results/bench/sandbox_throughput.py
CPU is user+sys of this process and its reaped children; kernel work done elsewhere (network-namespace teardown
runs in kernel worker threads) is not counted. The load average shows how busy the machine was meanwhile.
"""

from __future__ import annotations

import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor

from tasks.humaneval import HumanEval
from verifiers.code import build_program
from verifiers.sandbox import run_python


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    programs = [build_program(p.reference, p.metadata["canonical_solution"]) for p in HumanEval().problems()]
    print(f"cpus={len(os.sched_getaffinity(0))} load_average_before={os.getloadavg()[0]:.1f}")
    for workers in (1, 2, 4):
        wall, cpu = time.perf_counter(), cpu_seconds()
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(run_python, programs))
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        assert all(result.passed for result in results)
        median_ms = sorted(result.elapsed_s for result in results)[len(results) // 2] * 1000
        print(
            f"workers={workers}: {len(programs) / wall:.1f} executions/s, {1000 * cpu / len(programs):.1f} ms CPU "
            f"per execution, median {median_ms:.0f} ms from the program's start to its end"
        )
    print(f"load_average_after={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
