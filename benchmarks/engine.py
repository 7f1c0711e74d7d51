"""Figures 1 and 3, and the engine measurements behind figure 2, each in a fresh subprocess.

vLLM is run in a subprocess per engine configuration (``python -m benchmarks.engine CONFIG_JSON``): engine
settings that only take effect at start (dtype, environment, batch limits) can then differ between
measurements, and a crashed engine cannot take the suite down. The worker starts ``VLLMEngine`` once, times
the start, and runs the asked measurements on that one engine:

* ``overhead`` (figure 1): the same workload (GSM8K prompts x n samples) through the harness's sample path
  (``prepare`` + ``open_run`` + ``sample_requests``: what ``ttc sample`` runs after starting the engine, storing
  every request as it finishes) and through a bare ``LLM.generate`` call with identical ``SamplingParams``
  (built by the engine for each request), alternating which goes first, prefix cache reset before each.
  Both run on the same warm engine, so the ratio is the harness's own cost, not start-up noise (start-up is
  the same ``vllm.LLM`` construction either way and is measured in figure 2).
* ``prefix`` (figure 3): n samples of each prompt as one request with ``n`` vs as n requests with ``n=1``:
  prompt tokens actually computed (vLLM's ``prompt_tokens`` minus ``prompt_tokens_cached`` counters) and wall
  time.
* ``throughput`` (figure 2): output tokens/s of bare ``LLM.generate`` on one workload, median of repeats.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULT_MARKER, load_average, median, run_json_worker

OVERHEAD_TARGET = 1.05


def gsm8k_data() -> str:
    from benchmarks.verification import default_data_path

    return str(default_data_path().parent / "gsm8k_test.jsonl")


def gsm8k_prompts(count: int) -> tuple[Any, list]:
    """The GSM8K task and its first ``count`` test problems, prompts as the harness builds them."""
    from tasks import load_task

    task = load_task("gsm8k", data=gsm8k_data())
    return task, task.problems()[:count]


def run_worker(config: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run one engine configuration in a subprocess; returns its measurements (raises on failure).

    ``config``: ``engine_options`` (VLLMEngine keyword arguments), ``env`` (environment variables for the
    process), ``measurements`` (list of {"kind": ..., ...}).
    """
    env = {**os.environ, **{key: str(value) for key, value in config.get("env", {}).items()}}
    for key in config.get("unset_env", []):
        env.pop(key, None)
    started = time.perf_counter()
    result = run_json_worker("benchmarks.engine", config, env, timeout)
    result["process_seconds"] = time.perf_counter() - started
    return result


# -- inside the worker process -------------------------------------------------------------------------------


def _settings(measurement: dict[str, Any], stop: tuple[str, ...]):
    from harness.core.records import SamplingSettings

    return SamplingSettings(
        temperature=measurement.get("temperature", 0.8),
        top_p=measurement.get("top_p", 0.95),
        max_tokens=measurement["max_tokens"],
        stop=stop,
        seed=0,
    )


def _requests(problems, n: int, per_request: int):
    from harness.engines.base import GenerationRequest

    return [
        GenerationRequest(problem.problem_id, problem.prompt, per_request, first, seed=first)
        for problem in problems
        for first in range(0, n, per_request)
    ]


def _bare_generate(engine, requests, settings) -> tuple[float, int]:
    """``LLM.generate`` with the SamplingParams the engine would send: (seconds, output tokens)."""
    prompts = [engine.render_prompt(request.prompt) for request in requests]
    params = [engine._sampling_params(request, settings) for request in requests]
    start = time.perf_counter()
    outputs = engine._llm.llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    return seconds, sum(len(choice.token_ids) for output in outputs for choice in output.outputs)


def _harness_sample(engine, task, problems, n: int, settings, folder: Path) -> tuple[float, int]:
    """What ``ttc sample`` does once its engine is up: prepare the run directory, plan, sample and store."""
    from harness.pipeline.options import SampleOptions
    from harness.pipeline.prepare import open_run, package_versions, prepare
    from harness.pipeline.sample import plan_requests, sample_requests

    start = time.perf_counter()
    options = SampleOptions(
        task="gsm8k",
        data=gsm8k_data(),
        problems=len(problems),
        samples=n,
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_tokens=settings.max_tokens,
        out=folder,
    )
    prepared = prepare(options)
    store = open_run(prepared)
    try:
        requests = plan_requests(prepared.problems, store.sample_ranges(), n, settings.seed)
        outcome = sample_requests(store, engine, requests, prepared.config.sampling, package_versions())
    finally:
        store.close()
    return time.perf_counter() - start, outcome.session.output_tokens


def _measure_overhead(engine, task, problems, measurement) -> dict[str, Any]:
    n, repeats = measurement["n"], measurement.get("repeats", 3)
    settings = _settings(measurement, tuple(task.stop))
    requests = _requests(problems, n, n)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "harness": []}
    _bare_generate(engine, requests[:1], _settings({**measurement, "max_tokens": 8}, ()))  # warm-up
    with tempfile.TemporaryDirectory(prefix="ttc-bench-overhead-") as scratch:
        for repeat in range(repeats):
            order = ("bare", "harness") if repeat % 2 == 0 else ("harness", "bare")
            for kind in order:
                engine._llm.llm.reset_prefix_cache()
                if kind == "bare":
                    seconds, tokens = _bare_generate(engine, requests, settings)
                else:
                    seconds, tokens = _harness_sample(
                        engine, task, problems, n, settings, Path(scratch) / f"run-{repeat}"
                    )
                runs[kind].append({"seconds": seconds, "output_tokens": tokens, "tokens_per_s": tokens / seconds})
    summary = {}
    for kind, values in runs.items():
        summary[kind] = {
            "median_seconds": median([run["seconds"] for run in values]),
            "median_tokens_per_s": median([run["tokens_per_s"] for run in values]),
            "median_output_tokens": median([run["output_tokens"] for run in values]),
        }
    return {
        "workload": {"prompts": len(problems), "n": n, "max_tokens": settings.max_tokens, "top_p": settings.top_p},
        "repeats": repeats,
        "runs": runs,
        **summary,
        # sampled lengths differ between runs, so time per output token is the like-for-like ratio
        "seconds_per_token_ratio": summary["bare"]["median_tokens_per_s"] / summary["harness"]["median_tokens_per_s"],
        "wall_time_ratio": summary["harness"]["median_seconds"] / summary["bare"]["median_seconds"],
    }


def _prompt_token_counters(engine) -> dict[str, float]:
    wanted = {"vllm:prompt_tokens": "prompt", "vllm:prompt_tokens_cached": "cached"}
    values = {"prompt": 0.0, "cached": 0.0}
    for metric in engine._llm.llm.get_metrics():
        if metric.name in wanted:
            values[wanted[metric.name]] += float(getattr(metric, "value", 0.0))
    return values


def _measure_prefix(engine, task, problems, measurement) -> dict[str, Any]:
    n = measurement["n"]
    settings = _settings(measurement, tuple(task.stop))
    prompt_lengths = [len(engine._tokenizer(engine.render_prompt(p.prompt)).input_ids) for p in problems]
    variants = {}
    for name, per_request in (("one_request_n", n), ("separate_requests", 1)):
        engine._llm.llm.reset_prefix_cache()
        before = _prompt_token_counters(engine)
        seconds, tokens = _bare_generate(engine, _requests(problems, n, per_request), settings)
        after = _prompt_token_counters(engine)
        prompt, cached = after["prompt"] - before["prompt"], after["cached"] - before["cached"]
        variants[name] = {
            "requests": len(problems) * n // per_request,
            "seconds": seconds,
            "output_tokens": tokens,
            "tokens_per_s": tokens / seconds,
            "prompt_tokens": prompt,
            "prompt_tokens_cached": cached,
            "prompt_tokens_computed": prompt - cached,
        }
    return {
        "workload": {"prompts": len(problems), "n": n, "max_tokens": settings.max_tokens},
        "prompt_tokens_per_prompt": prompt_lengths,
        "unique_prompt_tokens": sum(prompt_lengths),
        **variants,
        "computed_ratio": variants["separate_requests"]["prompt_tokens_computed"]
        / max(variants["one_request_n"]["prompt_tokens_computed"], 1),
        "wall_time_ratio": variants["separate_requests"]["seconds"] / variants["one_request_n"]["seconds"],
        "harness_uses": "one_request_n",
    }


def _measure_throughput(engine, task, problems, measurement) -> dict[str, Any]:
    settings = _settings(measurement, ())  # no stop strings: the tuning workload as the issue measured it
    requests = _requests(problems, measurement["n"], measurement.get("per_request", measurement["n"]))
    _bare_generate(engine, requests[:1], _settings({**measurement, "max_tokens": 8}, ()))  # warm-up
    runs = []
    for _ in range(measurement.get("repeats", 2)):
        seconds, tokens = _bare_generate(engine, requests, settings)
        runs.append({"seconds": seconds, "output_tokens": tokens, "tokens_per_s": tokens / seconds})
    return {
        "workload": {
            "prompts": len(problems),
            "n": measurement["n"],
            "per_request": measurement.get("per_request", measurement["n"]),
            "max_tokens": settings.max_tokens,
            "top_p": settings.top_p,
        },
        "runs": runs,
        "median_tokens_per_s": median([run["tokens_per_s"] for run in runs]),
    }


MEASUREMENTS = {"overhead": _measure_overhead, "prefix": _measure_prefix, "throughput": _measure_throughput}


def worker_main(config: dict[str, Any]) -> dict[str, Any]:
    from harness.engines.models import resolve_model

    process_start = time.perf_counter()
    model = resolve_model(config.get("model"))
    resolved = time.perf_counter()
    from harness.engines.vllm_engine import VLLMEngine

    imported = time.perf_counter()
    engine = VLLMEngine(model.path, **config.get("engine_options", {}))
    ready = time.perf_counter()
    results: dict[str, Any] = {
        "engine": engine.describe(),
        "env": {key: os.environ.get(key) for key in ENGINE_ENV_KEYS},
        "startup": {
            "model_resolution_s": resolved - process_start,
            "vllm_import_s": imported - resolved,
            "engine_start_s": ready - imported,
        },
        "measurements": [],
    }
    for measurement in config.get("measurements", []):
        task, problems = gsm8k_prompts(measurement["prompts"])
        load_before = load_average()
        figures = MEASUREMENTS[measurement["kind"]](engine, task, problems, measurement)
        results["measurements"].append(
            {
                "kind": measurement["kind"],
                "load_average_before": load_before,
                "load_average_after": load_average(),
                **figures,
            }
        )
    engine.close()
    return results


ENGINE_ENV_KEYS = (
    "OMP_NUM_THREADS",
    "VLLM_CPU_NUM_OF_RESERVED_CPU",
    "VLLM_CPU_KVCACHE_SPACE",
    "VLLM_USE_AOT_COMPILE",
    "TORCHINDUCTOR_CACHE_DIR",
)

# -- the figures -------------------------------------------------------------------------------------------

# The example workload is 8 x 32 x 256; on the shared 2-core CPU (20-40 tok/s while other jobs ran) one
# pass of it takes over half an hour, so the full run uses 4 x 8 x 32 (on a GPU pass the issue's, see docs).
FULL = {"prompts": 4, "n": 8, "max_tokens": 32, "repeats": 2}
QUICK = {"prompts": 2, "n": 8, "max_tokens": 16, "repeats": 1}
# Quick mode skips torch.compile: a fresh machine (CI) has no compilation cache, and compiling takes minutes.
QUICK_ENGINE_OPTIONS = {"enforce_eager": True}


def run_engine_figures(quick: bool):
    """Figures 1 and 3 on one engine (one engine start, also in quick mode)."""
    from benchmarks.suite import FigureResult, Row

    shape = QUICK if quick else FULL
    config = {
        "engine_options": {
            "extra_engine_args": {"disable_log_stats": False},
            **(QUICK_ENGINE_OPTIONS if quick else {}),
        },
        "measurements": [
            {"kind": "overhead", **shape},
            {"kind": "prefix", **shape},
        ],
    }
    result = run_worker(config)
    overhead, prefix = result["measurements"]
    ratio = overhead["seconds_per_token_ratio"]
    bare, harness = overhead["bare"], overhead["harness"]
    workload = f"{shape['prompts']} GSM8K x {shape['n']}, {shape['max_tokens']} max tokens"
    rows = [
        Row(
            "1 sampling overhead",
            f"harness / bare vLLM, time per output token ({workload})",
            ratio,
            "x",
            target=f"<= {OVERHEAD_TARGET}",
            met=ratio <= OVERHEAD_TARGET,
            detail=f"harness {harness['median_tokens_per_s']:.0f} tok/s, bare {bare['median_tokens_per_s']:.0f} tok/s; "
            f"wall {harness['median_seconds']:.1f} s vs {bare['median_seconds']:.1f} s "
            f"(ratio {overhead['wall_time_ratio']:.3f}); median of {overhead['repeats']}, same warm engine",
        ),
        Row(
            "3 prefix sharing",
            "prompt tokens computed: n requests of 1 / one request of n",
            prefix["computed_ratio"],
            "x",
            target="harness uses one request of n",
            met=True,
            detail=f"computed {prefix['one_request_n']['prompt_tokens_computed']:.0f} vs "
            f"{prefix['separate_requests']['prompt_tokens_computed']:.0f} of "
            f"{prefix['one_request_n']['prompt_tokens']:.0f} prompt tokens (prefix cache on); wall "
            f"{prefix['one_request_n']['seconds']:.1f} s vs {prefix['separate_requests']['seconds']:.1f} s",
        ),
    ]
    return FigureResult(rows, result)


if __name__ == "__main__":
    outcome = worker_main(json.loads(sys.argv[1]))
    print(RESULT_MARKER + json.dumps(outcome), flush=True)
