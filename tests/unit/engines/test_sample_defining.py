"""The dtype a vLLM run samples with is the one its configuration hash records (no vLLM is started here)."""

from __future__ import annotations

import io
import json
import sys
from types import SimpleNamespace

import pytest

from harness import sample
from harness.core.errors import RunStoreError
from harness.engines import vllm_adapter, vllm_engine
from harness.engines.vllm_engine import VLLMEngine, cpu_has_fast_bf16
from harness.pipeline.prepare import open_run, prepare
from tests.support.helpers import fake_sample_arguments, gsm8k_options

CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 {extra}\nbogomips\t: 4000\n"


def fake_cpuinfo(monkeypatch, extra_flags: str) -> None:
    """Serve /proc/cpuinfo with the given extra flags to ``cpu_has_fast_bf16`` (it reads through ``open``)."""

    def fake_open(path, *args, **kwargs):
        assert path == "/proc/cpuinfo"
        return io.StringIO(CPUINFO.format(extra=extra_flags))

    monkeypatch.setattr(vllm_engine, "open", fake_open, raising=False)


def machine(monkeypatch, *, cpu: bool, fast_bf16: bool) -> None:
    monkeypatch.setattr(vllm_engine, "is_cpu_platform", lambda: cpu)
    monkeypatch.setattr(vllm_engine, "cpu_has_fast_bf16", lambda: fast_bf16)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("", False), ("avx512f avx512_bf16", True), ("amx_tile amx_bf16", True), ("avx512f avx512_vnni", False)],
)
def test_cpu_bf16_detection_reads_cpuinfo_flags(monkeypatch, flags, expected):
    fake_cpuinfo(monkeypatch, flags)
    assert cpu_has_fast_bf16() is expected


def test_auto_resolves_from_faked_cpuinfo(monkeypatch):
    monkeypatch.setattr(vllm_engine, "is_cpu_platform", lambda: True)
    fake_cpuinfo(monkeypatch, "avx512f")
    assert VLLMEngine.resolve_sample_defining({}) == {"dtype": "float32"}
    fake_cpuinfo(monkeypatch, "avx512f avx512_bf16")
    assert VLLMEngine.resolve_sample_defining({}) == {"dtype": "auto"}


@pytest.mark.parametrize(
    ("cpu", "fast_bf16", "expected"),
    [(True, False, "float32"), (True, True, "auto"), (False, False, "auto"), (False, True, "auto")],
)
def test_auto_is_float32_only_on_cpus_without_native_bf16(monkeypatch, cpu, fast_bf16, expected):
    machine(monkeypatch, cpu=cpu, fast_bf16=fast_bf16)
    assert VLLMEngine.resolve_sample_defining({"dtype": "auto"}) == {"dtype": expected}
    assert VLLMEngine.resolve_sample_defining({}) == {"dtype": expected}


def test_an_explicit_dtype_is_kept_without_asking_the_platform(monkeypatch):
    def no_platform():
        raise AssertionError("an explicit dtype needs no platform check (it would import vLLM)")

    monkeypatch.setattr(vllm_engine, "is_cpu_platform", no_platform)
    for dtype in ("bfloat16", "float16", "float32"):
        assert VLLMEngine.resolve_sample_defining({"dtype": dtype, "max_num_seqs": 4}) == {"dtype": dtype}


def test_engine_runs_the_dtype_the_hash_records(monkeypatch):
    """``VLLMEngine.__init__`` hands vLLM the resolved dtype (vllm replaced by a stand-in that records it)."""
    started = {}

    class FakeLLM:
        def __init__(self, model, **kwargs):
            started.update(kwargs)
            scheduler = SimpleNamespace(max_num_seqs=8)
            self.llm_engine = SimpleNamespace(vllm_config=SimpleNamespace(scheduler_config=scheduler))

        def get_tokenizer(self):
            return None

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=FakeLLM, __version__="fake"))
    for module in (vllm_engine, vllm_adapter):  # the stand-in has none of vLLM's internals the adapter checks for
        monkeypatch.setattr(module, "check_vllm", lambda: "fake")
    # __init__ sets these by default; set them here so the test leaves the environment as it was
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "ERROR")
    monkeypatch.setenv("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    for cpu, fast_bf16 in ((True, False), (True, True), (False, False)):
        machine(monkeypatch, cpu=cpu, fast_bf16=fast_bf16)
        for dtype in ("auto", "bfloat16"):
            started.clear()
            engine = VLLMEngine("model", dtype=dtype)
            recorded = VLLMEngine.resolve_sample_defining({"dtype": dtype})["dtype"]
            assert started["dtype"] == engine.describe()["dtype"] == recorded


def test_prepare_records_the_resolved_dtype(shared_data, tmp_path, monkeypatch):
    machine(monkeypatch, cpu=True, fast_bf16=False)
    on_plain_cpu = prepare(gsm8k_options(shared_data, tmp_path, engine="vllm", out=None)).config
    assert on_plain_cpu.sample_defining == {"dtype": "float32"}
    machine(monkeypatch, cpu=True, fast_bf16=True)
    on_bf16_cpu = prepare(gsm8k_options(shared_data, tmp_path, engine="vllm", out=None))
    assert on_bf16_cpu.config.sample_defining == {"dtype": "auto"}
    # the default run directory is named by the hash, so the two never share one
    assert on_plain_cpu.config_hash() != on_bf16_cpu.config.config_hash()
    assert on_bf16_cpu.config.config_hash()[:8] in on_bf16_cpu.out.name
    explicit = prepare(gsm8k_options(shared_data, tmp_path, engine="vllm", engine_options={"dtype": "bfloat16"}))
    assert explicit.config.sample_defining == {"dtype": "bfloat16"}


def test_engines_without_the_classmethod_record_their_options_as_given(shared_data, tmp_path):
    assert prepare(gsm8k_options(shared_data, tmp_path)).config.sample_defining == {"dtype": "auto"}
    given = prepare(gsm8k_options(shared_data, tmp_path, engine_options={"dtype": "float16"}))
    assert given.config.sample_defining == {"dtype": "float16"}


def test_a_run_recorded_under_auto_is_refused_where_auto_means_float32(shared_data, tmp_path, monkeypatch):
    machine(monkeypatch, cpu=True, fast_bf16=True)
    open_run(prepare(gsm8k_options(shared_data, tmp_path, engine="vllm"))).close()
    run = tmp_path / "run"
    assert json.loads((run / "manifest.json").read_text())["config"]["sample_defining"] == {"dtype": "auto"}
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file() and p.name != ".lock"}

    machine(monkeypatch, cpu=True, fast_bf16=False)
    with pytest.raises(RunStoreError) as error:
        sample("gsm8k", **fake_sample_arguments(shared_data, tmp_path, engine="vllm"))
    message = str(error.value)
    assert "refusing to mix samples" in message
    assert "sample_defining.dtype: stored 'auto', requested 'float32'" in message
    assert "as the engine resolves them on this machine" in message
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before
