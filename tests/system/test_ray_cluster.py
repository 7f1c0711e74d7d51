"""A two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``): replicas run on both nodes and the
driver alone writes the run; verification as Ray tasks gives the verdicts a local verification gives; the
cluster's GPUs are counted before any replica starts."""

from __future__ import annotations

import shutil

import pytest

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

from ray.cluster_utils import Cluster  # noqa: E402 - imported once Ray is known to be installed

from harness import sample, verify  # noqa: E402 - imported once Ray is known to be installed
from harness.core.errors import OptionError  # noqa: E402 - imported once Ray is known to be installed
from harness.engines.ray_pool import replica_resources  # noqa: E402 - imported once Ray is known to be installed
from harness.engines.vllm_engine import VLLMEngine  # noqa: E402 - imported once Ray is known to be installed
from harness.store import RunStore  # noqa: E402 - imported once Ray is known to be installed
from tests.support.helpers import fake_sample_arguments  # noqa: E402 - imported once Ray is known to be installed


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
    report = sample(
        "gsm8k",
        **fake_sample_arguments(
            shared_data,
            tmp_path,
            problems=16,
            samples=6,
            engine_options={"delay": 0.05},
            engines=2,
            ray_address=two_nodes,
        ),
    ).sampling
    replicas = report["session"]["engine_figures"]["replicas"]
    assert len({replica["node"] for replica in replicas}) == 2, "one replica per node (2 CPUs each)"
    assert all(replica["samples"] > 0 for replica in replicas)
    run = tmp_path / "run"
    table = RunStore.open(run).read_samples(columns=["problem_id", "sample_idx"])
    keys = list(zip(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist()))
    assert len(keys) == len(set(keys)) == 16 * 6

    local_copy = tmp_path / "local"
    shutil.copytree(run, local_copy)
    verifier = "tests.support.where_verifier:WhereVerifier"
    on_ray = verify(run, verifier, progress="quiet", ray_address=two_nodes)
    local = verify(local_copy, verifier, progress="quiet", workers=2)
    on_ray_key, local_key = on_ray["verdict_set"], local["verdict_set"]
    assert on_ray_key == local_key and on_ray["verified"] == local["verified"] == 16 * 6
    assert verdict_rows(run, on_ray_key) == verdict_rows(local_copy, local_key)
    assert any(row[2] for row in verdict_rows(run, on_ray_key)), "some samples are right"
    judged_at = set(RunStore.open(run).verdicts(on_ray_key).read().column("detail").to_pylist())
    assert judged_at and all(place.startswith("ray:") for place in judged_at), "judged in Ray workers"
    assert set(RunStore.open(local_copy).verdicts(local_key).read().column("detail").to_pylist()) == {"local"}


def test_gpu_replicas_are_counted_against_the_clusters_gpus(two_nodes):
    assert replica_resources(VLLMEngine, 2, {}) == {"num_gpus": 1, "num_cpus": 1}
    assert replica_resources(VLLMEngine, 1, {"tensor_parallel_size": 2}) == {"num_gpus": 2, "num_cpus": 1}
    with pytest.raises(OptionError, match="need 4 GPUs; the Ray cluster has 2") as refused:
        replica_resources(VLLMEngine, 2, {"tensor_parallel_size": 2})
    assert refused.value.option == "engines"
