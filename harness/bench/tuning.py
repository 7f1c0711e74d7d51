"""Figure 2: engine throughput on CPU against the machine's compute ceiling, the tuning sweep, and start-up.

Ceiling: a large matmul (torch, bf16 and fp32, all cores) measures the machine's FLOP rate in the same run;
decoding one token of a P-parameter model costs about 2P FLOPs, so the ceiling is rate / 2P output tokens/s.

Sweep: each engine configuration (dtype, enforce_eager, max_num_seqs, max_num_batched_tokens, KV cache size,
thread environment) runs in its own worker process (``harness.bench.engine``) on the same workload; top-p and
the number of sequences in flight are varied within one engine. Written to ``results/bench/engine_tuning.json``
(with the ceiling), and the best measured configuration is what ``VLLMEngine`` uses by default on CPU.

Start-up: converting the embedded model (cold, into an empty cache) vs resolving the cached checkpoint, and
engine start with an empty vs a warm compilation cache (``TORCHINDUCTOR_CACHE_DIR``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.bench.common import cpu_count, load_average, median
from harness.bench.engine import run_worker
from harness.bench.suite import DEFAULT_OUT, FigureResult, Row

THROUGHPUT_TARGET = 750.0  # output tokens/s, about 25% of the ceiling measured before any project code
STARTUP_TARGET_S = 60.0
# The issue's workload: 4 prompts x n=32, 192 max tokens (128 sequences in flight).
ISSUE_WORKLOAD = {"prompts": 4, "n": 32, "max_tokens": 192, "repeats": 1}
# The sweep's: the same batch (128 sequences in flight), shorter completions, so each configuration fits in
# about a minute on a shared 2-core machine.
SWEEP_WORKLOAD = {"prompts": 4, "n": 32, "max_tokens": 48, "repeats": 1}
QUICK_WORKLOAD = {"prompts": 2, "n": 8, "max_tokens": 32, "repeats": 1}


def matmul_rate(dtype: str, size: int, repeats: int = 5) -> dict[str, Any]:
    """GFLOP/s of a ``size`` x ``size`` matmul in ``dtype`` on all cores (median of ``repeats``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(cpu_count())
    try:
        a = torch.randn(size, size, dtype=getattr(torch, dtype))
        b = torch.randn(size, size, dtype=getattr(torch, dtype))
        torch.matmul(a, b)  # warm-up: thread pool and kernels
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return {"dtype": dtype, "size": size, "seconds": seconds, "gflops": 2 * size**3 / median(seconds) / 1e9}


def compute_ceiling(parameters: int, quick: bool = False) -> dict[str, Any]:
    """Matmul rates and the output tokens/s they allow for a model of ``parameters`` parameters."""
    rates = {
        "bfloat16": matmul_rate("bfloat16", 2048 if quick else 4096, 3 if quick else 5),
        "float32": matmul_rate("float32", 1024 if quick else 2048, 3 if quick else 5),
    }
    return {
        "parameters": parameters,
        "flops_per_token": 2 * parameters,
        "matmul": rates,
        "ceiling_tokens_per_s": {dtype: rate["gflops"] * 1e9 / (2 * parameters) for dtype, rate in rates.items()},
        "load_average": load_average(),
    }


def _model_parameters() -> int:
    from harness.models import count_parameters, embedded_model

    parameters = count_parameters(embedded_model().path)
    if not parameters:
        raise RuntimeError("cannot count the embedded model's parameters")
    return parameters


def sweep_configurations() -> list[dict[str, Any]]:
    """The engine configurations tried: each differs from the harness's default in one setting.

    Left out because each needs a fresh torch.compile (5-8 minutes on the shared 2-core machine): float32
    (the matmul rates measured alongside show bf16 several times faster, so it cannot win) and
    ``max_num_batched_tokens`` (a compile-range endpoint).
    """

    def config(name: str, engine_options: dict[str, Any] | None = None, env: dict[str, str] | None = None):
        return {"name": name, "engine_options": engine_options or {}, "env": env or {}}

    return [
        config("default"),
        config("enforce_eager", {"enforce_eager": True}),
        config("max_num_seqs=32", {"max_num_seqs": 32}),
        config("KV cache 1 GiB", env={"VLLM_CPU_KVCACHE_SPACE": "1"}),
        config("one core reserved for the scheduler (vLLM's default)", env={"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"}),
        config("OMP_NUM_THREADS=2", env={"OMP_NUM_THREADS": "2"}),
    ]


def run_sweep(workload: dict[str, Any], configurations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = []
    for configuration in configurations:
        measurements = [{"kind": "throughput", **workload}]
        if configuration is configurations[0]:  # within the default engine: top-p and sequences in flight
            measurements += [
                {"kind": "throughput", **workload, "top_p": 1.0},
                {"kind": "throughput", **workload, "n": workload["n"] // 4},
            ]
        started = time.perf_counter()
        try:
            outcome = run_worker({**configuration, "measurements": measurements})
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            results.append({"name": configuration["name"], "error": str(error)[-500:]})
            continue
        results.append(
            {
                "name": configuration["name"],
                "engine_options": configuration["engine_options"],
                "env": configuration["env"],
                "seconds": time.perf_counter() - started,
                "startup": outcome["startup"],
                "engine": outcome["engine"],
                "measurements": outcome["measurements"],
                "tokens_per_s": outcome["measurements"][0]["median_tokens_per_s"],
            }
        )
    return results


def run_tuning(quick: bool, out: Path = DEFAULT_OUT) -> FigureResult:
    """Figure 2: throughput of the default engine on the issue's workload against the ceiling, and the sweep."""
    ceiling = compute_ceiling(_model_parameters(), quick)
    bf16_ceiling = ceiling["ceiling_tokens_per_s"]["bfloat16"]
    workload = QUICK_WORKLOAD if quick else ISSUE_WORKLOAD
    default = run_worker({"measurements": [{"kind": "throughput", **workload}]})
    throughput = default["measurements"][0]["median_tokens_per_s"]
    figures: dict[str, Any] = {"ceiling": ceiling, "default_engine": default, "workload": workload}
    rows = [
        Row(
            "2 engine throughput",
            f"output tok/s, default engine ({workload['prompts']} prompts x n={workload['n']}, "
            f"{workload['max_tokens']} max tokens)",
            throughput,
            "tok/s",
            target="" if quick else f">= {THROUGHPUT_TARGET:.0f} or profile",
            met=None if quick else throughput >= THROUGHPUT_TARGET,
            detail=f"{throughput / bf16_ceiling:.1%} of the bf16 ceiling {bf16_ceiling:,.0f} tok/s "
            f"(matmul {ceiling['matmul']['bfloat16']['gflops']:.0f} GFLOP/s bf16, "
            f"{ceiling['matmul']['float32']['gflops']:.0f} fp32); see engine_profile.md",
        )
    ]
    if not quick:
        sweep = run_sweep(SWEEP_WORKLOAD, sweep_configurations())
        figures["sweep"] = {"workload": SWEEP_WORKLOAD, "configurations": sweep}
        measured = [entry for entry in sweep if "tokens_per_s" in entry]
        best = max(measured, key=lambda entry: entry["tokens_per_s"])
        base = measured[0]["tokens_per_s"] if measured and measured[0] is sweep[0] else None
        rows.append(
            Row(
                "2 engine tuning",
                f"sweep: best configuration's tok/s ({SWEEP_WORKLOAD['max_tokens']} max tokens)",
                best["tokens_per_s"],
                "tok/s",
                detail=f"best: {best['name']}; default {base or float('nan'):.0f} tok/s; "
                + ", ".join(f"{entry['name']} {entry.get('tokens_per_s', float('nan')):.0f}" for entry in sweep[1:]),
            )
        )
        tuning_record = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
        out.mkdir(parents=True, exist_ok=True)
        (out / "engine_tuning.json").write_text(json.dumps(tuning_record, indent=2) + "\n")
    return FigureResult(rows, figures)


def _time_conversion(cache: Path) -> float:
    """Seconds to resolve the embedded model in a fresh process with ``TTC_CACHE=cache``."""
    code = "import time; t = time.perf_counter(); from harness.models import embedded_model; embedded_model(); print(time.perf_counter() - t)"
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "TTC_CACHE": str(cache)}, timeout=900
    )
    if process.returncode != 0:
        raise RuntimeError(f"model conversion failed: {process.stderr[-1000:]}")
    return float(process.stdout.strip().splitlines()[-1])


def run_startup(quick: bool) -> FigureResult:
    """Start-up: model conversion cold vs cached, engine start with a cold vs warm compilation cache."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ttc-bench-startup-") as scratch:
        if not quick:
            figures["conversion_cold_s"] = _time_conversion(Path(scratch) / "cache")
    figures["conversion_cached_s"] = _time_conversion(Path(os.environ.get("TTC_CACHE", "")) if os.environ.get("TTC_CACHE") else _default_cache())
    warm_runs = [run_worker({}) for _ in range(1 if quick else 2)]
    figures["engine_warm_compile_cache"] = [{**run["startup"], "process_s": run["process_seconds"]} for run in warm_runs]
    warm_process = median([run["process_seconds"] for run in warm_runs])
    warm_engine = median([run["startup"]["engine_start_s"] for run in warm_runs])
    detail = f"engine start {warm_engine:.1f} s; cached model {figures['conversion_cached_s']:.2f} s"
    if not quick:
        detail += f"; cold conversion {figures['conversion_cold_s']:.0f} s"
    rows = [
        Row(
            "2 start-up",
            "cached start: process start to engine ready",
            warm_process,
            "s",
            target=f"< {STARTUP_TARGET_S:.0f} s",
            met=warm_process < STARTUP_TARGET_S,
            detail=detail + f"; median of {len(warm_runs)}",
        )
    ]
    return FigureResult(rows, figures)


def _default_cache() -> Path:
    from harness.models import cache_dir

    return cache_dir()
