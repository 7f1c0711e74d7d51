"""The OpenAI-compatible engine against a scripted local server: exact samples, retries, fallbacks, and runs
that stop on a failing server with a clear error, nothing partial or duplicated stored, and resume after."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness import SamplingReport, sample
from harness.core.errors import OptionError
from harness.core.records import SamplingSettings
from harness.engines.base import GenerationRequest
from harness.engines.openai_engine import OpenAIEngine, OpenAIEngineError, split_by_length
from harness.pipeline.options import SampleOptions
from harness.pipeline.prepare import prepare
from harness.store import RunStore
from tasks import load_task
from tests.support import helpers
from tests.support.scripted_openai_server import MODEL, TOKEN_LOGPROB, Call, Fault, ScriptedServer, expected_text

PROBLEMS, SAMPLES = 5, 4
FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "request_timeout": 2.0, "max_retries": 2, "concurrency": 2}


@pytest.fixture(autouse=True)
def no_ambient_openai_settings(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def run(shared_data: Path, tmp_path: Path, server: ScriptedServer, **engine_options) -> SamplingReport:
    """``harness.sample`` of GSM8K from ``server``: what it sampled."""
    result = sample(
        "gsm8k",
        data=str(shared_data / "gsm8k_test.jsonl"),
        model=MODEL,
        engine="openai",
        engine_options={"base_url": server.base_url, **FAST, **engine_options},
        problems=PROBLEMS,
        samples=SAMPLES,
        max_tokens=64,
        out=tmp_path / "run",
        progress="quiet",
    )
    return result.sampling


PROMPT_INDEX: dict[str, int] = {}


@pytest.fixture(autouse=True)
def gsm8k_prompts(shared_data):
    if not PROMPT_INDEX:
        task = load_task("gsm8k", data=str(shared_data / "gsm8k_test.jsonl"))
        PROMPT_INDEX.update({problem.prompt: index for index, problem in enumerate(task.problems()[:PROBLEMS])})


def problem_index(call: Call) -> int:
    """Which GSM8K problem a call samples."""
    return PROMPT_INDEX[call.prompt]


def stored(run_dir: Path) -> list[dict]:
    return RunStore.open(run_dir).read_samples().to_pylist()


def assert_exact(run_dir: Path, problems: int = PROBLEMS) -> list[dict]:
    """Every stored sample is the server's answer for its problem's prompt and seed; none partial or twice."""
    store = RunStore.open(run_dir)
    prompts = {problem.problem_id: problem.prompt for problem in store.problems()}
    rows = store.read_samples().to_pylist()
    per_problem = Counter(row["problem_id"] for row in rows)
    assert len(per_problem) == problems and set(per_problem.values()) == {SAMPLES}, per_problem
    for row in rows:
        # one request per problem from index 0: sample i was sampled with seed request_seed + i
        assert row["text"] == expected_text(prompts[row["problem_id"]], row["seed"] + row["sample_idx"])
    raw = sum(pq.read_metadata(path).num_rows for path in store.samples.shard_paths())
    assert raw == len(rows), "no sample stored twice"
    return rows


@pytest.mark.parametrize("max_n", [128, 3])
def test_samples_are_stored_exactly_with_n_per_request(shared_data, tmp_path, max_n):
    with ScriptedServer() as server:
        report = run(shared_data, tmp_path, server, max_n_per_request=max_n)
    rows = assert_exact(tmp_path / "run")
    for row in rows:
        words = len(row["text"].split())
        assert row["n_tokens"] == words and row["logprob_sum"] == pytest.approx(TOKEN_LOGPROB * words)
        assert row["finish_reason"] == "stop" and row["prompt_tokens"] > 0
    calls = server.sampling_calls()
    chunks = [SAMPLES] if max_n >= SAMPLES else [3, 1]
    assert sorted(call.payload.get("n", 1) for call in calls) == sorted(chunks * PROBLEMS)
    assert all(call.path == "/v1/completions" and call.payload["logprobs"] == 0 for call in calls)
    assert all(call.payload["stream"] and call.payload["stream_options"] == {"include_usage": True} for call in calls)
    session = report["session"]
    assert session is not None and session["status"] == "complete" and session["samples"] == PROBLEMS * SAMPLES
    manifest = RunStore.open(tmp_path / "run").manifest
    assert manifest["config"]["model"] == f"{MODEL}@127.0.0.1" and manifest["config"]["engine"] == "openai"
    assert manifest["config"]["sample_defining"] == {}
    engine = manifest["engine"]
    assert engine["engine"] == "openai" and engine["base_url"] == server.base_url and engine["n_per_request"]
    assert engine["n_tokens_from"] == ["logprobs"] and engine["fallbacks"] == [] and engine["streaming"] is True
    assert engine["served_model"] == {"id": MODEL, "owned_by": "scripted", "max_model_len": 2048}


def test_transient_faults_are_retried_and_the_run_finishes(shared_data, tmp_path):
    faults = {
        0: Fault("status", 429, "rate limited", headers={"Retry-After": "0"}),
        1: Fault("status", 500),
        2: Fault("truncated"),
        3: Fault("hang", seconds=30),
        4: Fault("cut"),
    }

    def script(call: Call):
        index = problem_index(call)
        # problem 1 fails twice (the retry limit), the others once
        return faults[index] if call.attempt < (2 if index == 1 else 1) else None

    with ScriptedServer(script) as server:
        report = run(shared_data, tmp_path, server, request_timeout=0.5)
    assert report["session"]["status"] == "complete"
    assert_exact(tmp_path / "run")
    attempts = Counter(problem_index(call) for call in server.sampling_calls())
    assert attempts == {0: 2, 1: 3, 2: 2, 3: 2, 4: 2}


@pytest.mark.parametrize(
    "fault, message",
    [
        (Fault("status", 503, "overloaded"), "HTTP 503: overloaded"),
        (Fault("choices", choices=3), "3 choices for n=4"),
        (Fault("truncated"), "not valid JSON"),
        (Fault("hang", seconds=30), "no complete response within 0.5 s"),
    ],
    ids=["503", "wrong-choices", "truncated", "hang"],
)
def test_a_request_failing_for_good_stops_the_run_and_a_rerun_resumes(shared_data, tmp_path, fault, message):
    failing = 2
    with (
        ScriptedServer(lambda call: fault if problem_index(call) == failing else None) as server,
        pytest.raises(OpenAIEngineError) as error,
    ):
        run(shared_data, tmp_path, server, request_timeout=0.5, concurrency=1)
    text = str(error.value)
    assert f"gsm8k/test/{failing} samples 0..3" in text and "failed 3 times" in text and message in text
    assert Counter(problem_index(call) for call in server.sampling_calls())[failing] == 3
    rows = stored(tmp_path / "run")
    assert {row["problem_id"] for row in rows} == {"gsm8k/test/0", "gsm8k/test/1"}, "requests before the failure stay"
    manifest = RunStore.open(tmp_path / "run").manifest
    assert manifest["sessions"][-1]["status"] == "failed"

    with ScriptedServer() as healthy:
        report = run(shared_data, tmp_path, healthy)
    assert report["already_stored"] == 2 * SAMPLES and report["session"]["status"] == "complete"
    assert sorted(problem_index(call) for call in healthy.sampling_calls()) == [2, 3, 4], "only what was missing"
    assert_exact(tmp_path / "run")


def test_server_refusing_n_falls_back_to_one_request_per_sample(shared_data, tmp_path):
    def script(call: Call):
        return Fault("status", 400, "n must be 1") if call.payload.get("n", 1) > 1 else None

    with ScriptedServer(script) as server:
        run(shared_data, tmp_path, server)
    assert_exact(tmp_path / "run")  # the same samples as with n per request: seeds seed+i
    assert Counter(call.payload.get("n", 1) for call in server.sampling_calls())[1] == PROBLEMS * SAMPLES
    engine = RunStore.open(tmp_path / "run").manifest["engine"]
    assert engine["n_per_request"] is False and "n>1 refused (HTTP 400: n must be 1)" in engine["fallbacks"][0]


def test_server_ignoring_n_falls_back_to_one_request_per_sample(shared_data, tmp_path):
    def script(call: Call):
        return Fault("choices", choices=1) if call.payload.get("n", 1) > 1 else None

    with ScriptedServer(script) as server:
        run(shared_data, tmp_path, server)
    assert_exact(tmp_path / "run")
    assert RunStore.open(tmp_path / "run").manifest["engine"]["n_per_request"] is False


def test_server_refusing_logprobs_stores_null_logprobs_and_usage_token_counts(shared_data, tmp_path):
    def script(call: Call):
        return Fault("status", 400, "logprobs are not supported") if "logprobs" in call.payload else None

    with ScriptedServer(script) as server:
        run(shared_data, tmp_path, server)
    rows = assert_exact(tmp_path / "run")
    assert all(row["logprob_sum"] is None for row in rows)
    for problem_id in {row["problem_id"] for row in rows}:
        texts = [row["text"] for row in rows if row["problem_id"] == problem_id]
        counts = [row["n_tokens"] for row in rows if row["problem_id"] == problem_id]
        assert sum(counts) == sum(len(text.split()) for text in texts), "the usage total is kept"
    engine = RunStore.open(tmp_path / "run").manifest["engine"]
    assert engine["logprobs"] is False and engine["n_tokens_from"] == ["usage split by text length"]


def test_streamed_tokens_are_reported_while_the_answer_arrives():
    """A stream of 2 x 10 tokens, 0.1 s between events: ``on_tokens`` hears of tokens before the last one has
    arrived (the generating thread reports every 0.5 s), and in all of the tokens the completions hold."""
    requests = [GenerationRequest("p/0", "Question: 1 + 1?", n=2, first_index=0, seed=5)]
    reports: list[int] = []
    with ScriptedServer(lambda call: Fault("slow_stream", seconds=0.1)) as server:
        engine = OpenAIEngine(MODEL, base_url=server.base_url, **{**FAST, "request_timeout": 60.0})
        (result,) = list(engine.generate(requests, SamplingSettings(), on_tokens=reports.append))
        engine.close()
    assert [c.text for c in result.completions] == [expected_text("Question: 1 + 1?", 5 + i) for i in range(2)]
    assert [c.n_tokens for c in result.completions] == [10, 10] and sum(reports) == 20
    assert len(reports) >= 2 and reports[0] < 20, f"reported only once the answer was whole: {reports}"


def test_a_stream_that_ends_early_is_retried(shared_data, tmp_path):
    with ScriptedServer(lambda call: Fault("short_stream") if call.attempt == 0 else None) as server:
        report = run(shared_data, tmp_path, server)
    assert report["session"]["status"] == "complete"
    assert_exact(tmp_path / "run")
    assert Counter(problem_index(call) for call in server.sampling_calls()) == dict.fromkeys(range(PROBLEMS), 2)


@pytest.mark.parametrize("refuses", [False, True], ids=["answers-whole", "refuses-stream"])
def test_a_server_that_does_not_stream_is_sampled_all_the_same(shared_data, tmp_path, refuses):
    def script(call: Call):
        if refuses:
            return Fault("status", 400, "stream is not supported") if call.payload.get("stream") else None
        return Fault("plain")

    with ScriptedServer(script) as server:
        run(shared_data, tmp_path, server)
    assert_exact(tmp_path / "run")
    engine = RunStore.open(tmp_path / "run").manifest["engine"]
    assert engine["streaming"] is not refuses and engine["n_tokens_from"] == ["logprobs"]
    if refuses:
        assert engine["fallbacks"] == [
            "stream refused (HTTP 400: stream is not supported): answers arrive whole, no token progress while they run"
        ]
        assert not server.sampling_calls()[-1].payload.get("stream")


def test_api_key_is_read_from_the_named_variable_and_a_refusal_is_explained(shared_data, tmp_path, monkeypatch):
    with ScriptedServer(api_key="sekrit") as server:
        with pytest.raises(
            OpenAIEngineError, match=r"HTTP 401: Incorrect API key provided.*name its variable with api_key_env"
        ):
            run(shared_data, tmp_path, server)
        with pytest.raises(OptionError, match=r"api_key_env: \$TTC_TEST_KEY is not set"):
            run(shared_data, tmp_path, server, api_key_env="TTC_TEST_KEY")
        monkeypatch.setenv("TTC_TEST_KEY", "sekrit")
        run(shared_data, tmp_path, server, api_key_env="TTC_TEST_KEY")
    assert_exact(tmp_path / "run")
    assert all(call.headers["Authorization"] == "Bearer sekrit" for call in server.sampling_calls())
    manifest_text = (tmp_path / "run" / "manifest.json").read_text()
    assert "sekrit" not in manifest_text and '"api_key_env": "TTC_TEST_KEY"' in manifest_text


def test_a_model_the_server_does_not_serve_is_refused_before_sampling(shared_data, tmp_path):
    with (
        ScriptedServer(model="other-model") as server,
        pytest.raises(OpenAIEngineError, match=f"does not serve model '{MODEL}'; it serves: other-model"),
    ):
        run(shared_data, tmp_path, server)
    assert server.sampling_calls() == []


def test_model_names_a_served_model_never_a_local_checkpoint(shared_data, tmp_path, monkeypatch):
    import harness.engines.models

    def no_local_model(*args, **kwargs):
        raise AssertionError("no local model may be resolved, converted or downloaded for --engine openai")

    monkeypatch.setattr(harness.engines.models, "resolve_model", no_local_model)
    base = dict(task="gsm8k", data=str(shared_data / "gsm8k_test.jsonl"), engine="openai", out=tmp_path / "run")
    first = prepare(
        SampleOptions(model="Qwen/Qwen2.5-0.5B", engine_options={"base_url": "http://10.0.0.7:8000/v1"}, **base)
    )
    moved = prepare(
        SampleOptions(model="Qwen/Qwen2.5-0.5B", engine_options={"base_url": "http://10.0.0.7:9001/v1/"}, **base)
    )
    assert first.model.identity == "Qwen/Qwen2.5-0.5B@10.0.0.7" and first.model.name == "Qwen2.5-0.5B"
    assert first.config.config_hash() == moved.config.config_hash(), "a server restarted on another port resumes"
    elsewhere = prepare(
        SampleOptions(model="Qwen/Qwen2.5-0.5B", engine_options={"base_url": "https://api.example.com/v1"}, **base)
    )
    assert elsewhere.config.config_hash() != first.config.config_hash()
    with pytest.raises(OptionError, match="model: the openai engine needs the name the server serves"):
        prepare(SampleOptions(model=None, engine_options={"base_url": "http://10.0.0.7:8000/v1"}, **base))
    with pytest.raises(OptionError, match="base_url: the openai engine needs the server's API root"):
        prepare(SampleOptions(model="m", **base))
    with pytest.raises(OptionError, match=r"base_url: '10\.0\.0\.7:8000' is not an http"):
        prepare(SampleOptions(model="m", engine_options={"base_url": "10.0.0.7:8000"}, **base))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("concurrency", 0, "must be at least 1, got 0"),
        ("request_timeout", 0.0, "must be positive, got 0.0"),
        ("max_retries", -1, "must be at least 0, got -1"),
        ("max_n_per_request", 0, "must be at least 1, got 0"),
        ("concurrency", "8", "must be an integer, got '8'"),
    ],
)
def test_bad_options_are_named_before_any_connection(shared_data, tmp_path, option, value, message):
    with pytest.raises(OptionError, match=f"^engine_options.{option}: {message}$") as error:
        sample(
            "gsm8k",
            data=str(shared_data / "gsm8k_test.jsonl"),
            model=MODEL,
            engine="openai",
            engine_options={"base_url": "http://127.0.0.1:1/v1", option: value},
            out=tmp_path / "run",
        )
    assert error.value.option == f"engine_options.{option}"
    assert not (tmp_path / "run").exists()
    with pytest.raises(OptionError, match=f"^{option}: {message}$"):
        OpenAIEngine.check_options({option: value})


def test_an_unreachable_server_is_reported_before_sampling():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    with pytest.raises(OpenAIEngineError, match=r"GET /models at .* failed 3 times .*Connection refused"):
        OpenAIEngine(MODEL, base_url=base_url, **FAST)


def test_retry_after_is_honoured():
    requests = [GenerationRequest("p/0", "Question: 1 + 1?", n=2, first_index=0, seed=5)]

    def script(call: Call) -> Fault | None:
        return Fault("status", 429, headers={"Retry-After": "1"}) if call.attempt == 0 else None

    with ScriptedServer(script) as server:
        engine = OpenAIEngine(MODEL, base_url=server.base_url, **FAST)  # its own backoff is 0.01 s
        began = time.monotonic()
        (result,) = list(engine.generate(requests, SamplingSettings()))
        waited = time.monotonic() - began
        engine.close()
    assert waited >= 1.0 and [c.text for c in result.completions] == [
        expected_text("Question: 1 + 1?", 5 + i) for i in range(2)
    ]


def test_chat_prompts_go_to_chat_completions():
    messages = [{"role": "user", "content": "What is 2 + 3?"}]
    requests = [GenerationRequest("chat/0", messages, n=3, first_index=0, seed=11)]
    with ScriptedServer() as server:
        engine = OpenAIEngine(MODEL, base_url=server.base_url, **FAST)
        try:
            (result,) = list(engine.generate(requests, SamplingSettings(max_tokens=32)))
        finally:
            engine.close()
    assert [c.text for c in result.completions] == [expected_text(messages, 11 + i) for i in range(3)]
    assert all(c.logprob_sum == pytest.approx(TOKEN_LOGPROB * c.n_tokens) for c in result.completions)
    (call,) = server.sampling_calls()
    assert call.path == "/v1/chat/completions" and call.payload["logprobs"] is True and call.payload["n"] == 3


def test_split_by_length_keeps_the_total():
    assert split_by_length(10, ["aaaa", "a", ""]) == [8, 2, 0]
    assert split_by_length(7, ["ab", "ab", "ab"]) == [3, 2, 2]
    assert split_by_length(3, ["", ""]) in ([2, 1], [1, 2])


def ttc(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    return helpers.ttc(*args, env=env)


def cli_args(shared_data: Path, tmp_path: Path, server: ScriptedServer, command: str = "run") -> list[str]:
    return [
        command,
        "--engine",
        "openai",
        "--base-url",
        server.base_url,
        "--model",
        MODEL,
        "--task",
        "gsm8k",
        "--data",
        str(shared_data / "gsm8k_test.jsonl"),
        "--problems",
        str(PROBLEMS),
        "--samples",
        str(SAMPLES),
        "--out",
        str(tmp_path / "run"),
        "--concurrency",
        "3",
        "--workers",
        "1",
    ]


def test_cli_run_against_a_server_with_json_output(shared_data, tmp_path):
    # every problem's first attempt is rate limited: the retries are reported as JSON log events
    with ScriptedServer(
        lambda call: Fault("status", 429, headers={"Retry-After": "0"}) if call.attempt == 0 else None
    ) as server:
        done = ttc(*cli_args(shared_data, tmp_path, server), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["ok"] and result["sampling"]["session"]["samples"] == PROBLEMS * SAMPLES
    assert result["verification"]["verified"] == PROBLEMS * SAMPLES
    events = [json.loads(line) for line in done.stderr.splitlines()]
    retries = [e for e in events if e["event"] == "log" and e["level"] == "warning"]
    assert len(retries) == PROBLEMS and all("HTTP 429" in e["message"] for e in retries)
    assert_exact(tmp_path / "run")


def test_cli_stops_with_a_clear_error_when_the_server_keeps_failing(shared_data, tmp_path):
    with ScriptedServer(lambda call: Fault("status", 503, "overloaded", headers={"Retry-After": "0"})) as server:
        failed = ttc(*cli_args(shared_data, tmp_path, server, "sample"), "--max-retries", "1", "--quiet")
    assert failed.returncode == 2
    assert "error: request for gsm8k/test/" in failed.stderr and "failed 2 times (max_retries=1)" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert stored(tmp_path / "run") == []
    with ScriptedServer() as server:
        done = ttc(*cli_args(shared_data, tmp_path, server, "sample"), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_exact(tmp_path / "run")


def test_cli_refuses_server_options_for_other_engines(shared_data, tmp_path):
    refused = ttc("sample", "--engine", "vllm", "--base-url", "http://127.0.0.1:1/v1", "--concurrency", "4")
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith(
        "error: --base-url: engine 'vllm' does not accept this option; its options: dtype,"
    )
    parallel = ttc("sample", "--engine", "openai", "--model", MODEL, "--tensor-parallel-size", "2", "--quiet")
    assert (
        parallel.returncode == 2 and "error: --tensor-parallel-size: engine 'openai' does not accept" in parallel.stderr
    )
