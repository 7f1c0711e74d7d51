"""A two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``): replicas run on both nodes and the
driver alone writes the run; verification as Ray tasks gives the verdicts a local verification gives; the
cluster's GPUs are counted before any replica starts."""

from __future__ import annotations

import shutil

import pytest

from harness.core.errors import OptionError
from harness.engines.ray_pool import ScaleOut, replica_resources
from harness.engines.vllm_engine import VLLMEngine
from harness.pipeline.prepare import prepare
from harness.pipeline.sample import sample_run
from harness.pipeline.verify import verify
from harness.store import RunStore
from tests.support.helpers import gsm8k_options

ray = pytest.importorskip("ray")  # the harness imports Ray only where it scales out
Cluster = pytest.importorskip("ray.cluster_utils").Cluster
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def two_nodes():
    """A head node and a second node, 2 CPUs each; the head declares 2 GPUs (none are used)."""
    ray.shutdown()  # a connection an earlier test left open
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 2})
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    yield cluster.address
    ray.shutdown()
    cluster.shutdown()


def verdict_rows(run, key: str) -> list[tuple]:
    table = RunStore.open(run).verdicts(key).read()
    columns = ("problem_id", "sample_idx", "correct", "reason", "answer")
    return sorted(zip(*(table.column(name).to_pylist() for name in columns)))


def test_replicas_on_two_nodes_write_one_run_and_ray_verification_matches_local(two_nodes, shared_data, tmp_path):
    options = gsm8k_options(
        shared_data,
        tmp_path,
        problems=16,
        samples=6,
        engine_options={"delay": 0.05},
        scale=ScaleOut(engines=2, ray_address=two_nodes),
    )
    report = sample_run(prepare(options), progress_mode="quiet", log=lambda message: None)
    report.store.close()
    replicas = report.session.engine_figures["replicas"]
    assert len({replica["node"] for replica in replicas}) == 2, "one replica per node (2 CPUs each)"
    assert all(replica["samples"] > 0 for replica in replicas)
    run = tmp_path / "run"
    table = RunStore.open(run).read_samples(columns=["problem_id", "sample_idx"])
    keys = list(zip(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist()))
    assert len(keys) == len(set(keys)) == 16 * 6

    local_copy = tmp_path / "local"
    shutil.copytree(run, local_copy)
    verifier = "tests.support.where_verifier:WhereVerifier"
    with RunStore.open(run, writable=True) as store:
        on_ray = verify(store, verifier, progress_mode="quiet", scale=ScaleOut(ray_address=two_nodes))
    with RunStore.open(local_copy, writable=True) as store:
        local = verify(store, verifier, progress_mode="quiet", workers=2)
    assert on_ray.key == local.key and on_ray.verified == local.verified == 16 * 6
    assert verdict_rows(run, on_ray.key) == verdict_rows(local_copy, local.key)
    assert any(row[2] for row in verdict_rows(run, on_ray.key)), "some samples are right"
    judged_at = set(RunStore.open(run).verdicts(on_ray.key).read().column("detail").to_pylist())
    assert judged_at and all(place.startswith("ray:") for place in judged_at), "judged in Ray workers"
    assert set(RunStore.open(local_copy).verdicts(local.key).read().column("detail").to_pylist()) == {"local"}


def test_gpu_replicas_are_counted_against_the_clusters_gpus(two_nodes):
    assert replica_resources(VLLMEngine, 2, {}) == {"num_gpus": 1, "num_cpus": 1}
    assert replica_resources(VLLMEngine, 1, {"tensor_parallel_size": 2}) == {"num_gpus": 2, "num_cpus": 1}
    with pytest.raises(OptionError, match="need 4 GPUs; the Ray cluster has 2") as refused:
        replica_resources(VLLMEngine, 2, {"tensor_parallel_size": 2})
    assert refused.value.option == "engines"
