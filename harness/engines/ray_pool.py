"""Replicas of an engine on Ray: one run directory, many engines, many machines.

``RayEnginePool`` is an ``Engine``: the sample step uses it as it uses one engine, and nothing else changes.
Each replica is a Ray actor holding one engine, built in the actor as ``build_engine`` builds it here (a vLLM
engine gets its own GPUs through Ray's resource accounting; on CPU a share of the cores). The driver keeps the
requests in one queue and hands each replica a chunk of about as many samples as its engine works on at once,
with the next chunk already queued behind it, so no replica waits on the driver and a slow replica simply
takes fewer chunks. Results stream back through Ray (``num_returns="streaming"``) as each request finishes,
and the driver alone writes the run directory: the cluster needs no shared filesystem. A replica that dies
has the requests it had not returned put back in the queue; the run goes on with the others.

Ray is imported only by this module's functions, when ``--engines`` / ``--ray-address`` ask for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import EngineError, OptionError, check_number
from harness.core.forcing import BudgetForcing
from harness.core.options import check_fields
from harness.core.records import SamplingSettings
from harness.engines import models
from harness.engines.base import (
    Engine,
    GenerationRequest,
    GenerationResult,
    TokenCallback,
    accepts_on_tokens,
    request_seed,
)
from harness.engines.forcing import BudgetForcingEngine
from harness.engines.models import ModelRef
from harness.engines.registry import build_engine, engine_class
from harness.engines.watchdog import ensure_watchdog

#: How long joining a Ray cluster may take before the address is reported unreachable.
RAY_CONNECT_SECONDS = 30.0
#: How often a replica reports the tokens its engine generated (progress), while requests run.
TOKEN_REPORT_SECONDS = 1.0
#: Most requests per chunk for engines that do not say how many samples they work on at once.
DEFAULT_CHUNK_REQUESTS = 4
#: How long replicas may take to close their engines before they are killed (their watchdogs then stop the
#: engines' processes): an interrupted run must not wait on the chunks still running.
CLOSE_SECONDS = 15.0
#: Environment variables that reach the replicas (an existing cluster's workers do not inherit ours).
FORWARDED_ENV_PREFIXES = ("TTC_", "VLLM_", "HF_", "TRANSFORMERS_", "OPENAI_")


@dataclass(frozen=True)
class ScaleOut:
    """Where a run's engines run: ``engines`` replicas, on the Ray cluster at ``ray_address`` (``"auto"``: the
    cluster this machine belongs to; None: a local one started for the run). The default, one engine and no
    address, runs the engine in this process without Ray. Not part of the run's configuration: a run may be
    resumed with any number of replicas."""

    engines: int = 1
    ray_address: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        check_number("engines", self.engines, at_least=1)
        if self.ray_address is not None and not self.ray_address.strip():
            raise OptionError("ray_address", "is empty: give host:port, ray://host:port or auto")

    @property
    def uses_ray(self) -> bool:
        return self.engines > 1 or self.ray_address is not None


def connect(address: str | None, timeout: float = RAY_CONNECT_SECONDS) -> None:
    """Join the Ray cluster at ``address`` (``"auto"``: this machine's), or start a local one (None).

    Raises ``OptionError("ray_address", ...)`` when no cluster answers there within ``timeout`` seconds.
    A local cluster's processes descend from this one, so the watchdog ends them if this process is killed.
    """
    import logging

    import ray

    if ray.is_initialized():
        return
    if address not in (None, "auto", "local"):
        _check_reachable(address, timeout)
    ensure_watchdog()
    env = {name: value for name, value in os.environ.items() if name.startswith(FORWARDED_ENV_PREFIXES)}
    # the driver's own import path, so that module:Class engines, tasks and verifiers it imports (a
    # repository's tests.support.fake_engine) import on the workers too
    installed = {os.path.realpath(prefix) for prefix in (sys.prefix, sys.base_prefix)}
    own_path = [
        os.path.abspath(entry or ".")
        for entry in sys.path
        if not any(os.path.realpath(entry or ".").startswith(prefix) for prefix in installed)
    ]
    given = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    if own_path or given:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(own_path + given))
    try:
        ray.init(
            address=address,
            log_to_driver=False,  # replicas log to Ray's session folder; the terminal is ttc's
            include_dashboard=False,
            logging_level=logging.ERROR,  # not its notices (token authentication) on the user's terminal
            runtime_env={"env_vars": env} if env else None,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = "on this machine (auto)" if address == "auto" else f"at {address}"
        raise OptionError("ray_address", f"no Ray cluster reachable {where}: {_first_line(error)}") from None


def _check_reachable(address: str, timeout: float) -> None:
    """Refuse an address whose port does not accept a connection within ``timeout`` (ray.init retries for
    minutes)."""
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise OptionError("ray_address", f"{address!r} is not host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise OptionError("ray_address", f"no Ray cluster reachable at {address}: {error}") from None


def check_cluster(kind: str, scale: ScaleOut, engine_options: Mapping[str, Any]) -> None:
    """Join the cluster and check that it can hold the replicas, before anything is written or started."""
    connect(scale.ray_address)
    replica_resources(engine_class(kind), scale.engines, engine_options)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ---------------------------------------------------------------------------------------------- the replica


_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class EngineReplica:
    """One engine inside a Ray actor (budget-forced there, with ``forcing``)."""

    def __init__(
        self,
        kind: str,
        model: ModelRef,
        engine_options: Mapping[str, Any],
        session_seed: int,
        forcing: BudgetForcing | None = None,
    ) -> None:
        model = _model_on_this_node(model)
        self.engine = build_engine(kind, model, engine_options, session_seed)
        if forcing is not None and forcing.active:
            self.engine = BudgetForcingEngine(self.engine, forcing)

    def info(self) -> dict[str, Any]:
        import ray

        return {
            "description": self.engine.describe(),
            "node": ray.get_runtime_context().get_node_id()[:12],
            "address": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "concurrent_samples": self.engine.concurrent_samples(),
        }

    def generate(self, requests: list[GenerationRequest], settings: SamplingSettings) -> Iterator[tuple[str, Any]]:
        """Stream ``("tokens", n)`` about every second while tokens are generated, and ``("result", result)`` as
        each request finishes. The engine runs in a thread so that token counts flow between results."""
        events: queue.Queue = queue.Queue()
        counted = [0]
        lock = threading.Lock()

        def add_tokens(count: int) -> None:
            with lock:
                counted[0] += count

        def work() -> None:
            streaming = {"on_tokens": add_tokens} if accepts_on_tokens(self.engine) else {}
            try:
                for result in self.engine.generate(requests, settings, **streaming):
                    # the driver has the request: its prompt need not travel back
                    events.put(dataclasses.replace(result, request=dataclasses.replace(result.request, prompt="")))
            except BaseException as error:  # noqa: BLE001 - reaches the driver, which raises it as this call's error
                events.put(_Failure(error))
            finally:
                events.put(_DONE)

        threading.Thread(target=work, name="engine", daemon=True).start()
        while True:
            try:
                item = events.get(timeout=TOKEN_REPORT_SECONDS)
            except queue.Empty:
                item = None
            with lock:
                tokens, counted[0] = counted[0], 0
            if tokens:
                yield ("tokens", tokens)
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            if item is not None:
                yield ("result", item)

    def close(self) -> None:
        self.engine.close()


# ------------------------------------------------------------------------------------------------- the pool


@dataclass
class _ReplicaState:
    index: int
    handle: Any
    node: str = ""
    address: str = ""
    chunk_samples: int = 0
    calls: list[_Call] = field(default_factory=list)
    samples: int = 0
    output_tokens: int = 0
    requests: int = 0
    first_dispatch: float | None = None
    last_result: float | None = None
    error: str | None = None

    def figures(self) -> dict[str, Any]:
        seconds = self.last_result - self.first_dispatch if self.last_result and self.first_dispatch else 0.0
        return {
            "replica": self.index,
            "node": self.node,
            "address": self.address,
            "samples": self.samples,
            "requests": self.requests,
            "output_tokens": self.output_tokens,
            "seconds": round(seconds, 3),
            "tokens_per_second": round(self.output_tokens / seconds, 3) if seconds > 0 else None,
            "status": "failed: " + self.error if self.error else "ok",
        }


@dataclass
class _Call:
    replica: _ReplicaState
    stream: Any  # ray.ObjectRefGenerator
    unreturned: dict[str, GenerationRequest]


def replica_resources(cls: type[Engine], engines: int, engine_options: Mapping[str, Any]) -> dict[str, float]:
    """Ray resources of one replica: its GPUs (tensor x pipeline parallel size) where the engine runs on an
    accelerator and the cluster has GPUs, else an equal share of the cluster's CPUs. Refuses more GPU replicas
    than the cluster has GPUs for, naming how many it has."""
    import ray

    cluster = ray.cluster_resources()
    gpus, cpus = float(cluster.get("GPU", 0)), float(cluster.get("CPU", 1))
    per_replica = int(engine_options.get("tensor_parallel_size", 1)) * int(
        engine_options.get("pipeline_parallel_size", 1)
    )
    if cls.uses_accelerator and gpus > 0:
        if engines * per_replica > gpus:
            raise OptionError(
                "engines",
                f"{engines} replicas x {per_replica} GPU(s) each need {engines * per_replica} GPUs; "
                f"the Ray cluster has {gpus:g}",
            )
        return {"num_gpus": per_replica, "num_cpus": 1}
    if cls.uses_accelerator and per_replica > 1:
        raise OptionError("tensor_parallel_size", f"{per_replica} GPUs per replica: the Ray cluster has no GPU")
    return {"num_cpus": max(cpus / engines, 0.01)}


class RayEnginePool(Engine):
    """``scale.engines`` replicas of the engine ``kind`` on Ray, used as one engine.

    Args:
        kind, model, engine_options, session_seed: as for ``build_engine``; replica i of an engine that draws
            from one engine-wide stream gets its own seed derived from ``session_seed`` and i, recorded with
            each of its samples.
        scale: the number of replicas and the Ray cluster's address.
        log: where the pool says what it does (replicas started, a replica lost).
        forcing: budget forcing, done by each replica on its own samples (``harness.engines.forcing``).
    """

    def __init__(
        self,
        kind: str,
        model: ModelRef,
        engine_options: Mapping[str, Any],
        session_seed: int,
        scale: ScaleOut,
        log: Callable[[str], None] = print,
        forcing: BudgetForcing | None = None,
    ) -> None:
        import ray

        connect(scale.ray_address)
        cls = engine_class(kind)
        resources = replica_resources(cls, scale.engines, engine_options)
        self.scale, self._log = scale, log
        cores = _local_core_shares(scale) if cls.uses_accelerator and "num_gpus" not in resources else None
        actor = ray.remote(EngineReplica)
        self._replicas: list[_ReplicaState] = []
        for index in range(scale.engines):
            options: dict[str, Any] = dict(resources, max_restarts=0)
            if cores is not None:  # vLLM on CPU binds its threads to these cores instead of all of them
                options["runtime_env"] = {"env_vars": {"VLLM_CPU_OMP_THREADS_BIND": cores[index]}}
            seed = request_seed(session_seed, "replica", index)
            handle = actor.options(**options).remote(kind, model, dict(engine_options), seed, forcing)
            self._replicas.append(_ReplicaState(index=index, handle=handle))
        self._description: dict[str, Any] = {}
        self._start_replicas()

    def _start_replicas(self) -> None:
        import ray

        calls = {replica.handle.info.remote(): replica for replica in self._replicas}
        errors = []
        for ref, replica in calls.items():
            try:
                info = ray.get(ref)
            except ray.exceptions.RayError as error:  # a replica that cannot start is left out
                replica.error = _first_line(error)
                errors.append(f"replica {replica.index}: {replica.error}")
                continue
            replica.node, replica.address = info["node"], info["address"]
            replica.chunk_samples = int(info["concurrent_samples"] or 0)
            self._description = self._description or dict(info["description"])
        alive = [replica for replica in self._replicas if replica.error is None]
        if not alive:
            self.close()
            raise EngineError("no engine replica started: " + "; ".join(errors))
        for message in errors:
            self._log(f"engine {message} (going on with {len(alive)})")
        nodes = len({replica.node for replica in alive})
        self._log(f"engines: {len(alive)} replicas on {nodes} node(s) of the Ray cluster")

    def describe(self) -> dict[str, Any]:
        return {
            **self._description,
            "replicas": self.scale.engines,
            "ray_address": self.scale.ray_address or "local",
        }

    def session_figures(self) -> dict[str, Any]:
        return {"replicas": [replica.figures() for replica in self._replicas]}

    def generate(
        self,
        requests: Iterable[GenerationRequest],
        settings: SamplingSettings,
        on_tokens: TokenCallback | None = None,
    ) -> Iterator[GenerationResult]:
        import ray

        pending = deque(requests)
        pending_samples = sum(request.n for request in pending)
        calls: dict[Any, _Call] = {}  # by stream

        def dispatch(replica: _ReplicaState, most_calls: int = 2) -> None:
            """Keep one chunk running and one queued on the replica, while requests are left."""
            nonlocal pending_samples
            while pending and len(replica.calls) < most_calls:
                alive = sum(r.error is None for r in self._replicas)
                # a full batch for the engine, but no more than an even share of what is left
                share = -(-pending_samples // (2 * alive))
                target = min(2 * replica.chunk_samples, share) if replica.chunk_samples else share
                chunk = _take_chunk(pending, target, DEFAULT_CHUNK_REQUESTS if not replica.chunk_samples else None)
                pending_samples -= sum(request.n for request in chunk)
                stream = replica.handle.generate.options(num_returns="streaming").remote(chunk, settings)
                call = _Call(replica, stream, {_request_key(r): r for r in chunk})
                replica.calls.append(call)
                calls[stream] = call
                replica.first_dispatch = replica.first_dispatch or time.monotonic()

        def feed(most_calls: int = 2) -> None:
            for replica in self._replicas:
                if replica.error is None:
                    dispatch(replica, most_calls)

        def lose(replica: _ReplicaState, error: BaseException) -> None:
            """A dead replica's unreturned requests go back to the front of the queue."""
            nonlocal pending_samples
            replica.error = _first_line(error)
            for call in replica.calls:
                calls.pop(call.stream, None)
                pending.extendleft(reversed(list(call.unreturned.values())))
                pending_samples += sum(request.n for request in call.unreturned.values())
            replica.calls.clear()
            alive = [r for r in self._replicas if r.error is None]
            self._log(
                f"engine replica {replica.index} on {replica.node or '?'} failed ({replica.error}); "
                f"its requests go back to the queue ({len(alive)} replicas left)"
            )
            if not alive:
                raise EngineError(f"every engine replica failed; the last: {replica.error}")

        try:
            feed(1)  # a chunk for each replica first, then one queued behind each
            feed(2)
            while calls:
                ready, _ = ray.wait(list(calls), num_returns=1, timeout=TOKEN_REPORT_SECONDS)
                for stream in ready:
                    call = calls.get(stream)
                    if call is None:
                        continue
                    replica = call.replica
                    try:
                        kind, value = ray.get(next(call.stream))
                    except StopIteration:
                        del calls[stream]
                        replica.calls.remove(call)
                        if call.unreturned:  # an engine that returned less than it was asked for
                            raise EngineError(
                                f"engine replica {replica.index} ended a chunk without {len(call.unreturned)} requests"
                            ) from None
                        dispatch(replica)
                        continue
                    except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as error:
                        lose(replica, error)
                        feed()  # replicas left idle by an empty queue take the lost requests
                        continue
                    except ray.exceptions.RayTaskError as error:  # the engine itself failed: so does the run
                        raise EngineError(f"engine replica {replica.index}: {_first_line(error.cause)}") from None
                    if kind == "tokens":
                        if on_tokens is not None:
                            on_tokens(value)
                        continue
                    key = _request_key(value.request)
                    if key not in call.unreturned:
                        raise EngineError(f"engine replica {replica.index} returned {key}, which it was not asked for")
                    result = dataclasses.replace(value, request=call.unreturned.pop(key))
                    replica.samples += result.request.n
                    replica.requests += 1
                    replica.output_tokens += sum(completion.n_tokens for completion in result.completions)
                    replica.last_result = time.monotonic()
                    yield result
        finally:
            for stream in list(calls):  # an interrupted run: stop what the replicas are doing
                # best effort (the replica may be gone): an error here must not replace the one that stopped the run
                with contextlib.suppress(Exception):
                    ray.cancel(stream)

    def close(self) -> None:
        import ray

        if not ray.is_initialized():
            return
        closing = [replica.handle.close.remote() for replica in self._replicas if replica.error is None]
        # best effort, whatever fails: every replica is killed below all the same
        with contextlib.suppress(Exception):
            ray.get(closing, timeout=CLOSE_SECONDS)
        for replica in self._replicas:
            ray.kill(replica.handle, no_restart=True)


def _model_on_this_node(model: ModelRef) -> ModelRef:
    """The driver's model as this node has it: the embedded model is converted into each node's own cache (the
    driver's cache path need not exist here); any other local checkpoint must be at the same path."""
    if "://" in model.path or not os.path.isabs(model.path) or os.path.exists(model.path):
        return model  # a Hub id, or present here
    embedded = models.embedded_model(convert=False)
    if model.identity == embedded.identity:
        return models.embedded_model()
    raise FileNotFoundError(f"model {model.path} is not on this node: put it at the same path or use a Hub id")


def _request_key(request: GenerationRequest) -> str:
    return f"{request.problem_id}@{request.first_index}"


def _take_chunk(pending: deque, samples: int, most_requests: int | None) -> list[GenerationRequest]:
    """The next requests from the queue: at least one, up to ``samples`` samples (and ``most_requests``)."""
    chunk = [pending.popleft()]
    total = chunk[0].n
    while pending and total + pending[0].n <= samples and (most_requests is None or len(chunk) < most_requests):
        total += pending[0].n
        chunk.append(pending.popleft())
    return chunk


def _local_core_shares(scale: ScaleOut) -> list[str] | None:
    """On a local cluster (this machine only), each CPU replica's own cores, as vLLM's thread binding takes
    them ("0,1"); None elsewhere (each node's engines then bind as vLLM decides)."""
    if scale.ray_address is not None:
        return None
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    if len(cores) < scale.engines:
        return None
    share = len(cores) // scale.engines
    return [",".join(str(core) for core in cores[i * share : (i + 1) * share]) for i in range(scale.engines)]
