"""Figure 6: the run store at paper scale (1,000 problems x 10,000 samples: 10M rows of text).

Samples go through the real write path (``RunStore.write_samples``, one atomic shard per engine request of at
most ``MAX_SAMPLES_PER_REQUEST`` samples, as ``ttc sample`` writes them). The run is written up to 99%, then
resumed as ``ttc sample`` resumes: open the directory, scan the shard footers for what is stored, plan the
missing 1%. The resume is timed, and checked to read only footers: the bytes this process reads meanwhile
(``/proc/self/io`` rchar) are compared with the size of the store, and no stored shard may change. Then the
missing 1% is written and everything is read back: all rows through ``read_samples`` with the columns the
analysis reads, and every text shard by shard (10M texts at once would take several GB of memory).

Texts are real GSM8K model solutions cut at random offsets and lengths (so they compress like model output,
not like repeated strings), assembled with numpy into Arrow buffers without a Python object per row.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import median
from benchmarks.suite import FigureResult, Row
from harness.core.jsonl import read_jsonl
from harness.core.records import Problem, SamplingSettings
from harness.pipeline.sample import plan_requests
from harness.store import RunStore
from harness.store.config import RunConfig

FULL_SHAPE = (1000, 10_000)
QUICK_SHAPE = (20, 2000)
STORED_FRACTION = 0.99
MEAN_TEXT_CHARS = 400  # SmolLM2 GSM8K completions at 256 max tokens average a few hundred characters


def text_corpus(data_folder: Path) -> np.ndarray:
    """ASCII bytes of real model solutions (GSM8K), the material sample texts are cut from."""
    records = read_jsonl(data_folder / "gsm8k_example_model_solutions.jsonl")
    texts = [
        value["solution"]
        for record in records
        for value in record.values()
        if isinstance(value, dict) and isinstance(value.get("solution"), str)
    ]
    return np.frombuffer("\n".join(texts).encode("ascii", "ignore"), dtype=np.uint8)


def sample_table(problem_id: str, first: int, count: int, corpus: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """``count`` samples of one problem as the sampling step stores them, texts cut from ``corpus``."""
    lengths = rng.integers(MEAN_TEXT_CHARS // 4, 7 * MEAN_TEXT_CHARS // 4, size=count)
    starts = rng.integers(0, corpus.size - lengths.max(), size=count)
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
    texts = pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(corpus[positions]))
    finish = pa.array(np.where(lengths > MEAN_TEXT_CHARS * 3 // 2, "length", "stop"))
    return pa.table(
        {
            "problem_id": pa.array([problem_id] * count, pa.string()),
            "sample_idx": pa.array(np.arange(first, first + count, dtype=np.int32)),
            "text": texts,
            "n_tokens": pa.array((lengths // 4).astype(np.int32)),
            "finish_reason": finish,
            "logprob_sum": pa.array(-rng.random(count) * lengths / 10),
            "prompt_tokens": pa.array(np.full(count, 150, dtype=np.int32)),
            "seed": pa.array(np.full(count, 1234, dtype=np.int64)),
            "session": pa.array(["a1b2c3d4e5f6"] * count, pa.string()),
        }
    )


def _config(problems: int, samples: int) -> RunConfig:
    return RunConfig(
        task="bench",
        task_description={"name": "synthetic store benchmark"},
        model="none",
        engine="none",
        sampling=SamplingSettings(max_tokens=256),
        problems=problems,
        samples=samples,
    )


def _read_bytes() -> int:
    """Bytes this process has read through read() calls so far (page cache included)."""
    with open("/proc/self/io", encoding="ascii") as handle:
        return int(next(line for line in handle if line.startswith("rchar")).split()[1])


def small_files_bytes(folder: Path) -> int:
    return sum((folder / name).stat().st_size for name in ("manifest.json", "problems.jsonl"))


def index_bytes(folder: Path) -> int:
    """What a resume has to read: every shard's footer (the index), the manifest and problems.jsonl."""
    total = small_files_bytes(folder)
    for path in (folder / "samples").glob("part-*.parquet"):
        with path.open("rb") as handle:
            handle.seek(-8, 2)
            total += int.from_bytes(handle.read(4), "little") + 8
    return total


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.glob("part-*.parquet")}


def _write(store: RunStore, requests, corpus: np.ndarray, rng: np.random.Generator) -> tuple[float, int]:
    """Write each request's samples as the sampling step does; returns seconds spent in the store only."""
    seconds, rows = 0.0, 0
    for request in requests:
        table = sample_table(request.problem_id, request.first_index, request.n, corpus, rng)
        start = time.perf_counter()
        store.write_samples(table)
        seconds += time.perf_counter() - start
        rows += request.n
    return seconds, rows


def run_store_benchmark(problems: int, samples: int, data_folder: Path, folder: Path, seed: int = 0) -> dict[str, Any]:
    corpus = text_corpus(data_folder)
    rng = np.random.default_rng(seed)
    problem_list = [Problem(f"bench/{index}", "prompt", {"answer": "0"}) for index in range(problems)]
    config = _config(problems, samples)

    def create_or_resume() -> RunStore:
        return RunStore.create_or_resume(
            folder, config, problem_list, default_verifier="exact", model_info={"name": "none"}, versions={}
        )

    # 99% stored: every problem has its first 99% of samples (the interrupted run's shape under ttc sample)
    stored_per_problem = int(samples * STORED_FRACTION)
    store = create_or_resume()
    write_seconds, written = _write(store, plan_requests(problem_list, {}, stored_per_problem, seed), corpus, rng)
    store.close()
    size_bytes = sum(path.stat().st_size for path in (folder / "samples").glob("part-*.parquet"))
    needed_bytes = index_bytes(folder)
    before = _snapshot(folder / "samples")

    resume_runs = []
    for _ in range(3):
        read_before, start = _read_bytes(), time.perf_counter()
        store = create_or_resume()
        requests = plan_requests(problem_list, store.sample_ranges(), samples, seed)
        resume_runs.append({"seconds": time.perf_counter() - start, "bytes_read": _read_bytes() - read_before})
        store.close()
    missing = sum(request.n for request in requests)
    untouched = _snapshot(folder / "samples") == before
    store = create_or_resume()
    rest_seconds, rest_rows = _write(store, requests, corpus, rng)
    store.close()

    store = RunStore.open(folder)
    # the analysis path: every row, the columns counts and lengths need (no text)
    start = time.perf_counter()
    table = store.read_samples(columns=["n_tokens", "finish_reason"])
    read_seconds = time.perf_counter() - start
    if table.num_rows != problems * samples:
        raise RuntimeError(f"read back {table.num_rows} rows, wrote {problems * samples}")
    # every row with its text, shard by shard (all 10M texts at once would take several GB of memory)
    start, text_bytes, text_rows = time.perf_counter(), 0, 0
    for path in store.samples.shard_paths():
        texts = pq.read_table(path, columns=["text"]).column("text")
        text_rows += len(texts)
        text_bytes += sum(buffer.size for chunk in texts.chunks for buffer in chunk.buffers() if buffer is not None)
    text_seconds = time.perf_counter() - start
    shards = len(store.samples.shard_paths())
    total_bytes = sum(path.stat().st_size for path in store.samples.shard_paths())
    return {
        "problems": problems,
        "samples_per_problem": samples,
        "rows": problems * samples,
        "shards": shards,
        "mb_on_disk": total_bytes / 1e6,
        "text_mb_in_memory": text_bytes / 1e6,
        "write": {"rows": written, "seconds": write_seconds, "rows_per_s": written / write_seconds},
        "resume": {
            "stored_fraction": STORED_FRACTION,
            "store_mb": size_bytes / 1e6,
            "index_mb": needed_bytes / 1e6,
            "small_files_mb": small_files_bytes(folder) / 1e6,
            "runs": resume_runs,
            "median_seconds": median([run["seconds"] for run in resume_runs]),
            "max_bytes_read": max(run["bytes_read"] for run in resume_runs),
            "missing_samples_planned": missing,
            "stored_shards_untouched": untouched,
            "write_missing_seconds": rest_seconds,
            "write_missing_rows": rest_rows,
        },
        "read": {
            "rows": table.num_rows,
            "columns": ["problem_id", "sample_idx", "n_tokens", "finish_reason"],
            "seconds": read_seconds,
            "rows_per_s": table.num_rows / read_seconds,
        },
        "read_text": {"rows": text_rows, "seconds": text_seconds, "rows_per_s": text_rows / text_seconds},
    }


def run_figure(quick: bool) -> FigureResult:
    from benchmarks.verification import default_data_path

    problems, samples = QUICK_SHAPE if quick else FULL_SHAPE
    folder = Path(tempfile.mkdtemp(prefix="ttc-bench-store-"))
    try:
        figures = run_store_benchmark(problems, samples, default_data_path().parent, folder / "run")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    write, read, resume = figures["write"], figures["read"], figures["resume"]
    # at most the index: the footers once, the manifest and problems.jsonl (opening reads them twice) and the lock
    allowance = resume["index_mb"] * 1e6 + resume["small_files_mb"] * 1e6 + 65536
    footer_only = resume["stored_shards_untouched"] and resume["max_bytes_read"] <= allowance
    rows = [
        Row(
            "6 store",
            f"write / read rows/s, {problems} x {samples:,} samples",
            write["rows_per_s"],
            "rows/s",
            detail=f"read {read['rows_per_s']:,.0f} rows/s (keys, n_tokens), {figures['read_text']['rows_per_s']:,.0f} "
            f"rows/s with text; {figures['mb_on_disk']:.0f} MB on disk "
            f"({figures['text_mb_in_memory']:.0f} MB of text), {figures['shards']} shards",
        ),
        Row(
            "6 store",
            f"resume with {resume['stored_fraction']:.0%} stored (footer scan + plan)",
            resume["median_seconds"],
            "s",
            target="footers only",
            met=footer_only,
            detail=f"read {resume['max_bytes_read'] / 1e6:.2f} MB (index {resume['index_mb']:.2f} MB) of a "
            f"{resume['store_mb']:.0f} MB store; stored shards "
            f"{'untouched' if resume['stored_shards_untouched'] else 'CHANGED'}; {resume['missing_samples_planned']} "
            "samples planned; median of 3",
        ),
    ]
    return FigureResult(rows, figures)
