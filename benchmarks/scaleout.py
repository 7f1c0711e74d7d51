"""Figure 7: scale-out on Ray (``--engines N``): how throughput grows with replicas, and what the driver costs.

Every measurement goes through the real path of ``ttc sample --engines N``: ``prepare`` + ``sample_run`` on a
run directory in a temporary folder, so the driver plans the requests, ``RayEnginePool`` starts the replicas as
Ray actors and feeds them from its queue, and every result is stored by ``RunStore.write_samples`` as it
arrives. Each part runs in its own process (``python -m benchmarks.scaleout CONFIG_JSON``), which starts one
local Ray cluster for all its replica counts (the engine's environment, ``TTC_FAKE_DELAY``, is set before Ray
starts, so every replica inherits it) and takes it down on exit.

* ``fixed`` (figure 7a, scaling efficiency): the fake engine of the tests (``tests.support.fake_engine:FakeEngine``),
  which sleeps ``TTC_FAKE_DELAY`` seconds per request whatever it holds: a fixed-latency engine, so N replicas
  can at best be N times as fast as one. N = 1, 2, 4, 8 replicas (N = 1 also through Ray, and once in-process
  without Ray as the reference), 40 requests of 8 samples per replica (GSM8K test problems, one request each).
  Throughput is samples/s over three spans: from the engine being ready (the first dispatch) to the last result
  stored (the headline), from the first result to the last (samples after the first result), and the whole
  wall time including the replicas' start. Efficiency = throughput(N) / (N x throughput(1 replica)).
* ``overhead`` (figure 7b, the driver's cost): the same with ``TTC_FAKE_DELAY=0``, so the replicas answer at
  once and the driver is the bottleneck: the driver's CPU time (``time.process_time``, every thread of the
  driver process, Ray's included) from engine ready to the last result stored, per request and per sample, and
  the part of it spent in ``RunStore.write_samples``; at 8 and at 1,024 samples per request, which splits the
  cost into a part per request and a part per sample (the fake engine's texts are short, about 46 characters).
  What travels per request is measured as Ray pickles it: the chunk of requests sent and each result returned.
* ``vllm`` (figure ``scaleout-vllm``): the real engine (``vllm``, the embedded default model) at N = 1 (in
  process, as ``ttc run`` without ``--engines``) and N = 2 (two Ray replicas, each bound to its share of the
  cores) on a small GSM8K workload: output tokens/s of each, recorded as measured. On a 2-core machine two
  replicas share the two cores one engine would use, so no speed-up is to be expected. The run's stored texts
  give the bytes a sample takes on the wire.
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import RESULT_MARKER, run_json_worker
from benchmarks.suite import FigureResult, Row

FAKE_ENGINE = "tests.support.fake_engine:FakeEngine"
EFFICIENCY_TARGET = 0.9

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.core.records import Prompt
    from harness.pipeline.options import SampleOptions
    from harness.store import RunStore

# Each part's configuration, as JSON goes to its worker process.
FULL_FIXED: dict[str, Any] = {"delay": 0.2, "replicas": [1, 2, 4, 8], "requests_per_replica": 40, "samples": 8}
QUICK_FIXED: dict[str, Any] = {"delay": 0.05, "replicas": [1, 2], "requests_per_replica": 20, "samples": 8}
# 8 samples per request, and 1,024: the largest request the sample step makes (MAX_SAMPLES_PER_REQUEST)
FULL_OVERHEAD: dict[str, Any] = {
    "replicas": 4,
    "requests": 1200,
    "samples": 8,
    "large_requests": 200,
    "large_samples": 1024,
}
QUICK_OVERHEAD: dict[str, Any] = {
    "replicas": 2,
    "requests": 200,
    "samples": 8,
    "large_requests": 50,
    "large_samples": 256,
}
# 8 problems x 8 samples; a replica's engine holds at most 8 samples at once, so the pool's chunks (about twice
# that) spread the 8 requests over both replicas (with vLLM's default, 2 x max_num_seqs, one chunk could hold them all)
FULL_VLLM: dict[str, Any] = {
    "replicas": [1, 2],
    "problems": 8,
    "samples": 8,
    "max_tokens": 64,
    "max_inflight_samples": 8,
}


def gsm8k_data(name: str = "gsm8k_test.jsonl") -> str:
    """GSM8K's test split (1,319 problems) in the shared data folder: one request per problem."""
    from benchmarks.verification import default_data_path

    return str(default_data_path().parent / name)


# -- in the suite's process ----------------------------------------------------------------------------------


def run_worker(config: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 1800) -> dict[str, Any]:
    """Run one part in a subprocess of its own (its own Ray cluster); returns its measurements."""
    return run_json_worker("benchmarks.scaleout", config, {**os.environ, **(env or {})}, timeout)


def run_figure(quick: bool) -> FigureResult:
    """Figures 7a and 7b with the fake engine: scaling efficiency at a fixed latency, and the driver's cost."""
    fixed_config = QUICK_FIXED if quick else FULL_FIXED
    fixed = run_worker({"part": "fixed", **fixed_config}, env={"TTC_FAKE_DELAY": str(fixed_config["delay"])})
    overhead_config = QUICK_OVERHEAD if quick else FULL_OVERHEAD
    overhead = run_worker({"part": "overhead", **overhead_config}, env={"TTC_FAKE_DELAY": "0"})

    runs = {run["label"]: run for run in fixed["runs"]}
    large = overhead["runs"][1]
    largest = max(fixed_config["replicas"])
    top = runs[f"ray-{largest}"]

    def listing(key: str) -> str:
        return ", ".join(f"N={n} {runs[f'ray-{n}'][key]:.2f}" for n in fixed_config["replicas"])

    delay, per = fixed_config["delay"], fixed_config["requests_per_replica"]
    rows = [
        Row(
            "7 scale-out",
            f"scaling efficiency at N={largest} replicas, {delay:g} s/request engine (dispatch to last result)",
            top["efficiency"]["generation"],
            "x",
            f">= {EFFICIENCY_TARGET}",
            top["efficiency"]["generation"] >= EFFICIENCY_TARGET,
            f"{listing('generation_samples_per_s')} samples/s ({per} requests x {fixed_config['samples']} samples "
            f"per replica; ideal {fixed_config['samples'] / delay:.0f}/s per replica); first-to-last-result "
            f"efficiency {top['efficiency']['first_to_last']:.3f}; in-process engine "
            f"{runs['in-process']['generation_samples_per_s']:.2f}/s",
        ),
        Row(
            "7 scale-out",
            f"efficiency at N={largest} counting the replicas' start (wall of the whole sample step)",
            top["efficiency"]["wall"],
            "x",
            "",
            None,
            f"pool start {listing('engine_start_seconds')} s; wall {listing('wall_seconds')} s",
        ),
        Row(
            "7 scale-out",
            f"driver CPU per request ({overhead['requests']} requests x {overhead['samples']} samples, "
            f"zero-latency engine, N={overhead['replicas']})",
            overhead["driver_cpu_ms_per_request"],
            "ms",
            "",
            None,
            f"{overhead['driver_cpu_us_per_sample']:.0f} us per sample; {overhead['store_share']:.0%} of it in "
            f"RunStore.write_samples; driver sustained {overhead['requests_per_s']:.0f} requests/s "
            f"({overhead['samples_per_s']:.0f} samples/s) on {overhead['cpus']} shared cores; on the wire a "
            f"request ~{overhead['wire']['request_out_bytes']:.0f} B out, a sample its text + "
            f"{overhead['wire']['completion_overhead_bytes']:.0f} B back",
        ),
        Row(
            "7 scale-out",
            f"driver CPU per sample, {overhead['large_samples']} samples per request ({overhead['large_requests']} "
            f"requests, short texts, zero-latency engine, N={overhead['replicas']})",
            large["driver_cpu_us_per_sample"],
            "us",
            "",
            None,
            f"{large['driver_cpu_ms_per_request']:.2f} ms per request, {large['store_share']:.0%} in "
            f"RunStore.write_samples; sustained {large['samples_per_s']:.0f} samples/s; fitted through both sizes: "
            f"{overhead['fit']['ms_per_request']:.2f} ms per request + {overhead['fit']['us_per_sample']:.2f} us "
            f"per sample",
        ),
    ]
    return FigureResult(rows, {"fixed_latency": fixed, "driver_overhead": overhead})


def run_vllm_figure(quick: bool) -> FigureResult:
    """Figure 7c: real vLLM at N = 1 and N = 2 replicas. Skipped in --quick mode (it starts three engines, minutes
    each on CPU, more than the quick suite's budget); the skip is recorded in the JSON, not as a row without a
    value (the quick suite's rows all carry values)."""
    if quick:
        return FigureResult([], {"skipped": "--quick: three vLLM engine starts do not fit the quick suite's budget"})
    result = run_worker({"part": "vllm", **FULL_VLLM}, timeout=3000)
    runs = {run["replicas"]: run for run in result["runs"]}
    rows = []
    for replicas, run in sorted(runs.items()):
        per_replica = "; ".join(
            f"replica {figure['replica']}: {figure['samples']} samples, {figure['tokens_per_second'] or 0:.1f} tok/s"
            for figure in run.get("replica_figures", [])
        )
        rows.append(
            Row(
                "7 scale-out (vLLM)",
                f"output tok/s, N={replicas} {'replica (in process)' if replicas == 1 else 'Ray replicas'}, "
                f"{FULL_VLLM['problems']} GSM8K x {FULL_VLLM['samples']}, {FULL_VLLM['max_tokens']} max tokens",
                run["tokens_per_s"],
                "tok/s",
                "",
                None,
                f"{run['output_tokens']} tokens in {run['sampling_seconds']:.0f} s; engine start "
                f"{run['engine_start_seconds']:.0f} s; {run['cpus']} cores"
                + (f"; {per_replica}" if per_replica else ""),
            )
        )
    return FigureResult(rows, result)


# -- inside the worker process -------------------------------------------------------------------------------


class _Probe:
    """Timestamps and CPU times of the sample step, taken through the functions it calls: the engine's start
    (``harness.pipeline.sample.start_engine``) and every store write (``RunStore.write_samples``)."""

    def __init__(self) -> None:
        from harness.pipeline import sample as sample_module
        from harness.store import RunStore

        self.reset()
        original_start = sample_module.start_engine
        original_write = RunStore.write_samples
        probe = self

        def start_engine(*args: Any, **kwargs: Any) -> Any:
            probe.engine_started = time.perf_counter()
            engine = original_start(*args, **kwargs)
            probe.engine_ready, probe.cpu_at_ready = time.perf_counter(), time.process_time()
            return engine

        def write_samples(store: RunStore, table: pa.Table) -> None:
            cpu = time.process_time()
            original_write(store, table)
            now = time.perf_counter()
            probe.writes.append((now, table.num_rows))
            probe.cpu_in_writes += time.process_time() - cpu
            probe.cpu_at_last_write = time.process_time()

        sample_module.start_engine = start_engine
        RunStore.write_samples = write_samples  # type: ignore[method-assign, assignment]  # the probe times each write

    def reset(self) -> None:
        self.engine_started = self.engine_ready = 0.0
        self.cpu_at_ready = self.cpu_at_last_write = self.cpu_in_writes = 0.0
        self.writes: list[tuple[float, int]] = []


def _fake_model(root: Path) -> str:
    model = root / "fake-model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["Fake"]}))
    return str(model)


def _fake_gsm8k(root: Path, problems: int, samples: int, out: str, scale: Any) -> Any:
    """The sampling options of GSM8K on the fake engine: ``problems`` x ``samples`` into ``root/out`` on ``scale``."""
    from harness.pipeline.options import SampleOptions

    model = _fake_model(root)
    return SampleOptions(
        task="gsm8k",
        data=gsm8k_data(),
        model=model,
        engine=FAKE_ENGINE,
        problems=problems,
        samples=samples,
        out=root / out,
        scale=scale,
    )


def _sample(probe: _Probe, options: SampleOptions) -> dict[str, Any]:
    """One ``ttc sample`` of ``options``: wall time, engine start, the stored results' times, the session."""
    from harness.pipeline.prepare import open_run, prepare
    from harness.pipeline.sample import sample_run

    probe.reset()
    start = time.perf_counter()
    prepared = prepare(options)
    with open_run(prepared) as store:
        report = sample_run(store, prepared, progress="quiet", log=lambda message: None)
        end = time.perf_counter()
        texts = store.read_samples(columns=["text"]).column("text").to_pylist()
    session = report["session"]
    if session is None:
        raise RuntimeError(f"{options.out}: the benchmark's sample step sampled nothing")
    samples = sum(rows for _, rows in probe.writes)
    first, last = probe.writes[0][0], probe.writes[-1][0]
    return {
        "samples": samples,
        "requests": len(probe.writes),
        "output_tokens": session["output_tokens"],
        "wall_seconds": end - start,
        "engine_start_seconds": probe.engine_ready - probe.engine_started,
        "generation_seconds": last - probe.engine_ready,
        "first_to_last_seconds": last - first,
        "samples_after_first_result": samples - probe.writes[0][1],
        "driver_cpu_seconds": probe.cpu_at_last_write - probe.cpu_at_ready,
        "driver_cpu_in_store_seconds": probe.cpu_in_writes,
        "session_seconds": session["seconds"],
        "replica_figures": (session["engine_figures"] or {}).get("replicas", []),
        "mean_text_chars": statistics.fmean(len(text) for text in texts) if texts else 0.0,
        "mean_text_utf8_bytes": statistics.fmean(len(text.encode()) for text in texts) if texts else 0.0,
    }


def _utf8_bytes(prompt: Prompt) -> int:
    """A prompt's text in UTF-8 bytes (a chat prompt's: its messages' contents)."""
    texts = [prompt] if isinstance(prompt, str) else [message["content"] for message in prompt]
    return sum(len(text.encode()) for text in texts)


def _wire_bytes(data: str, problems: int, samples: int, seed: int = 0) -> dict[str, float]:
    """Bytes Ray pickles per request: a chunk of 4 requests (prompt + settings) going out, and a result coming
    back (the completions: text, token count, finish reason, logprob sum; and the request it answers, prompt
    included). ``completion_overhead_bytes``: what a completion takes beyond its text's bytes, so that a sample
    of real text costs about its text's UTF-8 bytes plus this."""
    from harness.core.records import SamplingSettings
    from harness.pipeline.sample import plan_requests
    from tasks import load_task
    from tests.support.fake_engine import FakeEngine

    task = load_task("gsm8k", data=data)
    requests = plan_requests(task.problems()[:problems], {}, samples, seed)
    settings = SamplingSettings(max_tokens=256, stop=tuple(task.stop))
    chunk = requests[:4]
    results = list(FakeEngine("none").generate(requests, settings))
    text_bytes = [sum(len(c.text.encode()) for c in result.completions) for result in results]
    completions = [len(pickle.dumps(result.completions, protocol=5)) for result in results]
    return {
        "prompt_utf8_bytes": statistics.fmean(_utf8_bytes(request.prompt) for request in requests),
        "request_out_bytes": len(pickle.dumps((chunk, settings), protocol=5)) / len(chunk),
        "result_back_bytes": statistics.fmean(len(pickle.dumps(("result", r), protocol=5)) for r in results),
        "request_in_result_bytes": statistics.fmean(len(pickle.dumps(r.request, protocol=5)) for r in results),
        "completion_overhead_bytes": statistics.fmean((c - t) / samples for c, t in zip(completions, text_bytes)),
        "samples_per_request": samples,
    }


def _fixed_part(config: dict[str, Any], root: Path) -> dict[str, Any]:
    from harness.engines.ray_pool import ScaleOut, connect

    probe = _Probe()
    connect(None)  # one local Ray cluster for every replica count; TTC_FAKE_DELAY is already in the environment
    import ray

    cluster_cpus = ray.cluster_resources().get("CPU")
    samples = config["samples"]
    runs = []
    # N = 1 through Ray (an address makes one replica a Ray actor; Ray is already up, so it is not dialled), then
    # the engine in this process without Ray, last (the first run pays for first-time imports)
    variants = [
        (f"ray-{n}", n, ScaleOut(engines=n, ray_address="local" if n == 1 else None)) for n in config["replicas"]
    ] + [("in-process", 1, ScaleOut())]
    for label, replicas, scale in variants:
        requests = config["requests_per_replica"] * replicas
        run = _sample(probe, _fake_gsm8k(root, requests, samples, f"run-{label}", scale))
        run.update(label=label, replicas=replicas)
        run["generation_samples_per_s"] = run["samples"] / run["generation_seconds"]
        run["first_to_last_samples_per_s"] = run["samples_after_first_result"] / run["first_to_last_seconds"]
        run["wall_samples_per_s"] = run["samples"] / run["wall_seconds"]
        runs.append(run)
        print(f"[scaleout] {label}: {run['generation_samples_per_s']:.1f} samples/s", file=sys.stderr, flush=True)
    one = next(run for run in runs if run["label"] == "ray-1")
    for run in runs:
        run["efficiency"] = {
            span: run[f"{span}_samples_per_s"] / (run["replicas"] * one[f"{span}_samples_per_s"])
            for span in ("generation", "first_to_last", "wall")
        }
    return {
        "engine": FAKE_ENGINE,
        "delay_seconds_per_request": float(os.environ.get("TTC_FAKE_DELAY", "0")),
        "ideal_samples_per_s_per_replica": samples / float(os.environ.get("TTC_FAKE_DELAY", "1") or 1),
        "cluster_cpus": cluster_cpus,
        "cpus": len(os.sched_getaffinity(0)),
        "config": config,
        "runs": runs,
    }


def _overhead_part(config: dict[str, Any], root: Path) -> dict[str, Any]:
    """The driver's CPU at two request sizes (``samples`` per request, and ``large_samples`` per request), so
    that its cost splits into a part per request and a part per sample: cpu = requests x a + samples x b."""
    from harness.engines.ray_pool import ScaleOut, connect

    probe = _Probe()
    connect(None)
    runs = []
    sizes = ((config["requests"], config["samples"]), (config["large_requests"], config["large_samples"]))
    for requests, samples in sizes:
        run = _sample(
            probe, _fake_gsm8k(root, requests, samples, f"run-overhead-{samples}", ScaleOut(config["replicas"]))
        )
        cpu = run["driver_cpu_seconds"]
        run.update(
            samples_per_request=samples,
            driver_cpu_ms_per_request=1000 * cpu / run["requests"],
            driver_cpu_us_per_sample=1e6 * cpu / run["samples"],
            store_cpu_ms_per_request=1000 * run["driver_cpu_in_store_seconds"] / run["requests"],
            store_share=run["driver_cpu_in_store_seconds"] / cpu if cpu else 0.0,
            requests_per_s=run["requests"] / run["generation_seconds"],
            samples_per_s=run["samples"] / run["generation_seconds"],
        )
        runs.append(run)
    small, large = runs
    # cpu per request = a + b x samples per request, through the two sizes
    per_sample = (large["driver_cpu_ms_per_request"] - small["driver_cpu_ms_per_request"]) / (
        large["samples_per_request"] - small["samples_per_request"]
    )
    per_request = small["driver_cpu_ms_per_request"] - per_sample * small["samples_per_request"]
    return {
        **config,
        "cpus": len(os.sched_getaffinity(0)),
        "runs": runs,
        **{
            key: small[key]
            for key in (
                "driver_cpu_seconds",
                "driver_cpu_ms_per_request",
                "driver_cpu_us_per_sample",
                "store_cpu_ms_per_request",
                "store_share",
                "requests_per_s",
                "samples_per_s",
            )
        },
        "fit": {"ms_per_request": per_request, "us_per_sample": 1000 * per_sample},
        "wire": _wire_bytes(gsm8k_data(), 50, config["samples"]),
    }


def _vllm_part(config: dict[str, Any], root: Path) -> dict[str, Any]:
    from harness.engines.ray_pool import ScaleOut
    from harness.pipeline.options import SampleOptions

    probe = _Probe()
    runs = []
    for replicas in config["replicas"]:
        options = SampleOptions(
            task="gsm8k",
            data=gsm8k_data(),
            model=None,
            engine="vllm",
            engine_options={"max_inflight_samples": config["max_inflight_samples"]},
            problems=config["problems"],
            samples=config["samples"],
            max_tokens=config["max_tokens"],
            out=root / f"run-vllm-{replicas}",
            scale=ScaleOut(engines=replicas),
        )
        run = _sample(probe, options)
        run.update(replicas=replicas, cpus=len(os.sched_getaffinity(0)))
        run["sampling_seconds"] = run["generation_seconds"]
        run["tokens_per_s"] = run["output_tokens"] / run["generation_seconds"]
        run["mean_text_bytes_per_token"] = run["mean_text_utf8_bytes"] * run["samples"] / max(run["output_tokens"], 1)
        runs.append(run)
        print(f"[scaleout] vllm N={replicas}: {run['tokens_per_s']:.1f} tok/s", file=sys.stderr, flush=True)
    return {"config": config, "runs": runs}


PARTS = {"fixed": _fixed_part, "overhead": _overhead_part, "vllm": _vllm_part}


def worker_main(config: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ttc-bench-scaleout-") as scratch:
        try:
            return PARTS[config["part"]](config, Path(scratch))
        finally:
            if "ray" in sys.modules:
                import ray

                ray.shutdown()


if __name__ == "__main__":
    outcome = worker_main(json.loads(sys.argv[1]))
    print(RESULT_MARKER + json.dumps(outcome), flush=True)
