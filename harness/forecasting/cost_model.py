"""Memory-aware inference cost: FLOPs, bytes moved and eFLOPs of generating with a decoder, from its config.json.

Counting 2 x parameters per token (``costs.inference_flops``) undercounts long generations: every decode step
also reads the whole KV cache of its context from memory, and at long contexts that traffic, not the matrix
multiplies, sets the time. Kinetics (Sadhukhan et al. 2025, "Kinetics: Rethinking Test-Time Scaling Laws",
arXiv:2506.05333) folds both into one figure, equivalent FLOPs,

    eFLOPs = FLOPs + bytes x I,        I = peak FLOP/s / memory bandwidth (bytes/s) of the hardware,

that is the hardware's peak rate times the time the work takes when compute and memory traffic do not overlap.

Per generated token whose query attends over ``c`` keys (the prompt, the tokens before it and itself):

* FLOPs = 2 A + 4 c x layers x heads x head_dim: the matrix multiplies of the A active parameters (the input
  embedding is a lookup, the output head a multiply) and attention's scores and weighted sum;
* bytes = W / batch + c x 2 x layers x kv_heads x head_dim x kv_dtype_bytes: the weights W read once per decode
  step and shared by the ``batch`` sequences decoded together, and the K and V cache of the context.

The t-th generated token of a sample with an L-token prompt has c = L + t, so a sample of g tokens sums to
closed forms (arithmetic series): ``L g + g (g + 1) / 2`` keys. The samples of one request share their prompt:
it is prefilled once, and (``shared_prompt``, as Kinetics counts it) its KV cache is read once per decode step
for all of them, over the request's mean generated length. A mixture-of-experts model multiplies only the
experts each token is routed to (A), but a decode step reads every expert that some token of the batch uses:
with uniform routing, E (1 - (1 - e/E)^batch) of the E experts per layer (an upper bound: real routing is
skewed, so fewer distinct experts are read).

Kinetics' own cost model (``cost_model/utils.py: dense_cost``) is this one at an infinite batch (weights read
for free) with their parameter count and I = 562.5; ``tests/unit/forecasting/test_cost_model.py`` reproduces
their number for Qwen3-8B.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import OptionError, check_number

# Decode batch: the sequences that share one read of the weights per step. vLLM's default max_num_seqs.
DEFAULT_BATCH = 256

DTYPE_BYTES = {
    "float32": 4.0,
    "float": 4.0,
    "bfloat16": 2.0,
    "float16": 2.0,
    "half": 2.0,
    "float8_e4m3fn": 1.0,
    "float8_e5m2": 1.0,
}

# Families whose config.json the cost model reads: attention with (grouped-query) K/V heads, a gated MLP
# (gate, up and down projections), and for the MoE ones routed experts of the same shape.
DENSE_FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
MOE_FAMILIES = ("qwen3_moe", "mixtral")


@dataclass(frozen=True)
class Hardware:
    """An accelerator's peak dense FLOP/s and memory bandwidth (bytes/s); ``intensity`` is their ratio."""

    name: str
    flops_per_s: float
    bytes_per_s: float
    source: str = ""

    def __post_init__(self) -> None:
        check_number("flops_per_s", self.flops_per_s, above=0)
        if self.bytes_per_s != math.inf:  # infinite bandwidth: memory traffic is free and eFLOPs are FLOPs
            check_number("bytes_per_s", self.bytes_per_s, above=0)

    @property
    def intensity(self) -> float:
        """FLOPs the hardware could do in the time it moves one byte (0 at infinite bandwidth)."""
        return self.flops_per_s / self.bytes_per_s

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "flops_per_s": self.flops_per_s,
            "bytes_per_s": self.bytes_per_s,
            "intensity": self.intensity,
            "source": self.source,
        }


_DATASHEET = "NVIDIA datasheet: dense BF16 Tensor Core peak (half the 'with sparsity' figure), HBM bandwidth"
HARDWARE: dict[str, Hardware] = {
    "a100": Hardware("a100", 312e12, 2.039e12, f"A100 SXM4 80GB; {_DATASHEET}"),
    "h100": Hardware("h100", 989e12, 3.35e12, f"H100 SXM5; {_DATASHEET}"),
    "h200": Hardware("h200", 989e12, 4.8e12, f"H200 SXM; {_DATASHEET}"),
    "b200": Hardware("b200", 2.25e15, 8e12, f"B200 (HGX B200, per GPU); {_DATASHEET}"),
}


def resolve_hardware(
    name: str | None = None, flops_per_s: float | None = None, bytes_per_s: float | None = None
) -> Hardware:
    """A preset (``a100``, ``h100``, ``h200``, ``b200``), with either figure replaced where given; or, without
    a name, the hardware both figures describe."""
    if name is None:
        if flops_per_s is None or bytes_per_s is None:
            raise OptionError("hardware", f"name a preset ({', '.join(HARDWARE)}) or give flops_per_s and bytes_per_s")
        return Hardware("custom", flops_per_s, bytes_per_s, "given")
    preset = HARDWARE.get(name.lower())
    if preset is None:
        raise OptionError("hardware", f"unknown hardware {name!r}; choose one of {', '.join(HARDWARE)}")
    if flops_per_s is None and bytes_per_s is None:
        return preset
    return Hardware(
        f"{preset.name} (adjusted)",
        preset.flops_per_s if flops_per_s is None else flops_per_s,
        preset.bytes_per_s if bytes_per_s is None else bytes_per_s,
        f"{preset.source}; figures given override it",
    )


@dataclass(frozen=True)
class ModelArchitecture:
    """What the cost model needs of a decoder (``from_config`` reads it from a Hugging Face config.json).

    ``dense_parameters``: weights multiplied for every token outside the routed experts (attention, dense MLPs,
    routers, the output head). ``expert_parameters``: one routed expert's weights summed over the MoE layers
    (0 for a dense model). Norms and biases (well under 0.1% of the weights) are left out.
    """

    name: str
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    dense_parameters: float
    embedding_parameters: float  # the input embedding table: a lookup, no multiply
    tied_embeddings: bool
    dtype_bytes: float
    kv_dtype_bytes: float
    expert_parameters: float = 0.0
    experts: int = 0
    experts_per_token: int = 0

    def __post_init__(self) -> None:
        for option in ("layers", "hidden_size", "attention_heads", "kv_heads", "head_dim"):
            check_number(option, getattr(self, option), at_least=1)
        for option in ("dense_parameters", "dtype_bytes", "kv_dtype_bytes"):
            check_number(option, getattr(self, option), above=0)
        if self.attention_heads % self.kv_heads:
            raise OptionError("kv_heads", f"{self.kv_heads} does not divide {self.attention_heads} attention heads")
        if self.experts and not 1 <= self.experts_per_token <= self.experts:
            raise OptionError("experts_per_token", f"must lie in 1..{self.experts}, got {self.experts_per_token}")

    @property
    def active_parameters(self) -> float:
        """Weights multiplied per token: 2 x this is the FLOPs of the matrix multiplies."""
        return self.dense_parameters + self.experts_per_token * self.expert_parameters

    @property
    def total_parameters(self) -> float:
        """All weights, the input embedding included once (the model card's count)."""
        embedding = 0.0 if self.tied_embeddings else self.embedding_parameters
        return self.dense_parameters + self.experts * self.expert_parameters + embedding

    def weights_read_per_step(self, batch: float) -> float:
        """Bytes of weights one decode step reads for ``batch`` sequences: the dense weights and every expert
        some token routes to (uniform routing)."""
        if not self.experts:
            return self.dense_parameters * self.dtype_bytes
        if batch == math.inf:
            touched = float(self.experts)
        else:
            touched = self.experts * -math.expm1(batch * math.log1p(-self.experts_per_token / self.experts))
        return (self.dense_parameters + touched * self.expert_parameters) * self.dtype_bytes

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__} | {
            "active_parameters": self.active_parameters,
            "total_parameters": self.total_parameters,
        }

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | str | Path,
        *,
        name: str | None = None,
        parameters: float | None = None,
        dtype_bytes: float | None = None,
        kv_dtype_bytes: float | None = None,
    ) -> ModelArchitecture:
        """Read a Hugging Face ``config.json`` (a path or its parsed mapping).

        ``parameters`` replaces the active parameter count (dense models: the weights multiplied per token),
        for a config without ``intermediate_size`` or to match a published count. ``dtype_bytes`` replaces the
        weights' bytes (needed for quantized checkpoints); ``kv_dtype_bytes`` the KV cache's (default: the
        weights' dtype, e.g. 1 for an fp8 cache). A field the model needs and the config lacks raises
        ``OptionError("model_config", ...)`` naming the field: no figure is ever guessed.
        """
        config, where = _load_config(config)
        family = config.get("model_type")
        if family not in DENSE_FAMILIES + MOE_FAMILIES:
            raise OptionError(
                "model_config",
                f"{where}: model_type {family!r} is not one the cost model reads "
                f"({', '.join(DENSE_FAMILIES + MOE_FAMILIES)}); describe it with ModelArchitecture(...)",
            )
        _refuse_unmodelled(config, where)

        def field(key: str, why: str) -> Any:
            value = config.get(key)
            if value is None:
                raise OptionError("model_config", f"{where} has no '{key}' ({why})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise OptionError("model_config", f"{where}: '{key}' must be a positive number, got {value!r}")
            return value

        layers = int(field("num_hidden_layers", "the number of layers"))
        hidden = int(field("hidden_size", "the width of every projection"))
        heads = int(field("num_attention_heads", "attention FLOPs per key"))
        kv_heads = int(field("num_key_value_heads", "KV-cache bytes per token"))
        vocab = int(field("vocab_size", "the output head's weights"))
        if config.get("head_dim") is not None:
            head_dim = int(field("head_dim", "the width of a head"))
        elif hidden % heads == 0:  # the definition of the head width where a config leaves it out
            head_dim = hidden // heads
        else:
            raise OptionError("model_config", f"{where} has no 'head_dim' and {heads} heads do not divide {hidden}")

        if dtype_bytes is None:
            if config.get("quantization_config") is not None:
                raise OptionError(
                    "model_config", f"{where} has a 'quantization_config': give dtype_bytes (bytes per weight)"
                )
            dtype = config.get("torch_dtype", config.get("dtype"))
            if dtype is None:
                raise OptionError("model_config", f"{where} has no 'torch_dtype' (bytes per weight); give dtype_bytes")
            if dtype not in DTYPE_BYTES:
                raise OptionError(
                    "model_config", f"{where}: 'torch_dtype' {dtype!r} is not one of {', '.join(DTYPE_BYTES)}"
                )
            dtype_bytes = DTYPE_BYTES[dtype]
        check_number("dtype_bytes", dtype_bytes, above=0)
        if kv_dtype_bytes is not None:
            check_number("kv_dtype_bytes", kv_dtype_bytes, above=0)

        attention = layers * hidden * head_dim * (2 * heads + 2 * kv_heads)  # q, o; k, v
        head = float(vocab * hidden)
        tied = bool(config.get("tie_word_embeddings", False))
        expert = 0.0
        experts = per_token = 0
        if family in MOE_FAMILIES:
            if parameters is not None:
                raise OptionError("parameters", "a mixture-of-experts model's active count comes from its config")
            experts = int(field("num_local_experts" if family == "mixtral" else "num_experts", "routed experts"))
            per_token = int(field("num_experts_per_tok", "experts each token is routed to"))
            moe_layers = _moe_layers(config, family, layers)
            expert_width = int(
                field("intermediate_size" if family == "mixtral" else "moe_intermediate_size", "an expert's width")
            )
            expert = float(moe_layers * 3 * hidden * expert_width)
            dense_mlp = 0.0
            if moe_layers < layers:
                dense_mlp = (layers - moe_layers) * 3 * hidden * field("intermediate_size", "the dense MLP layers")
            dense = attention + dense_mlp + moe_layers * hidden * experts + head  # routers: hidden x experts
        elif parameters is not None:
            check_number("parameters", parameters, above=0)
            dense = float(parameters)
        else:
            mlp = layers * 3 * hidden * field("intermediate_size", "the MLP's width; or give parameters")
            dense = float(attention + mlp + head)
        return cls(
            name=name or str(config.get("_name_or_path") or family),
            layers=layers,
            hidden_size=hidden,
            attention_heads=heads,
            kv_heads=kv_heads,
            head_dim=head_dim,
            dense_parameters=dense,
            embedding_parameters=head,
            tied_embeddings=tied,
            dtype_bytes=float(dtype_bytes),
            kv_dtype_bytes=float(dtype_bytes if kv_dtype_bytes is None else kv_dtype_bytes),
            expert_parameters=expert,
            experts=experts,
            experts_per_token=per_token,
        )


def _load_config(config: Mapping[str, Any] | str | Path) -> tuple[Mapping[str, Any], str]:
    if isinstance(config, Mapping):
        return config, "config.json"
    path = Path(config)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise OptionError("model_config", f"cannot read {path}: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise OptionError("model_config", f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(loaded, dict):
        raise OptionError("model_config", f"{path}: expected a JSON object, got {type(loaded).__name__}")
    return loaded, str(path)


def _refuse_unmodelled(config: Mapping[str, Any], where: str) -> None:
    """Architectures whose KV traffic this model would miscount: say so rather than print a wrong figure."""
    if config.get("use_sliding_window"):
        raise OptionError(
            "model_config", f"{where}: 'use_sliding_window' is on; sliding-window attention is not modelled"
        )
    layer_types = config.get("layer_types") or []
    if any(kind != "full_attention" for kind in layer_types):
        raise OptionError("model_config", f"{where}: 'layer_types' has layers other than full attention; not modelled")
    if config.get("kv_lora_rank") is not None:
        raise OptionError("model_config", f"{where}: 'kv_lora_rank' (latent attention) is not modelled")


def _moe_layers(config: Mapping[str, Any], family: str, layers: int) -> int:
    if family == "mixtral":
        return layers
    step = int(config.get("decoder_sparse_step") or 1)
    dense_only = set(config.get("mlp_only_layers") or [])
    return sum(1 for layer in range(layers) if layer not in dense_only and (layer + 1) % step == 0)


@dataclass(frozen=True)
class Tally:
    """FLOPs and bytes moved (weights, KV cache); floats or arrays of one shape."""

    flops: Any
    weight_bytes: Any
    kv_bytes: Any

    @property
    def bytes(self) -> Any:
        return self.weight_bytes + self.kv_bytes

    def eflops(self, hardware: Hardware) -> Any:
        """FLOPs + bytes x the hardware's arithmetic intensity (Kinetics' equivalent FLOPs)."""
        return self.flops + self.bytes * hardware.intensity

    def seconds(self, hardware: Hardware) -> Any:
        """Time at peak, compute and memory traffic not overlapped: eFLOPs / peak FLOP/s."""
        return self.eflops(hardware) / hardware.flops_per_s

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.flops + other.flops, self.weight_bytes + other.weight_bytes, self.kv_bytes + other.kv_bytes)

    def sum(self, axis: int | None = None) -> Tally:
        return Tally(*(np.sum(part, axis=axis) for part in (self.flops, self.weight_bytes, self.kv_bytes)))


@dataclass(frozen=True)
class CostModel:
    """What generating costs with ``architecture``, decoding ``batch`` sequences per step (math.inf: weights
    read for free, as Kinetics counts), the prompt's KV cache read once per step for all samples of a request
    when ``shared_prompt``."""

    architecture: ModelArchitecture
    batch: float = DEFAULT_BATCH
    shared_prompt: bool = True

    def __post_init__(self) -> None:
        if self.batch != math.inf:
            check_number("batch", self.batch, at_least=1)

    def with_batch(self, batch: float) -> CostModel:
        return replace(self, batch=batch)

    @property
    def attention_flops_per_key(self) -> float:
        a = self.architecture
        return 4.0 * a.layers * a.attention_heads * a.head_dim

    @property
    def kv_bytes_per_token(self) -> float:
        """Bytes of K and V cached per token (all layers)."""
        a = self.architecture
        return 2.0 * a.layers * a.kv_heads * a.head_dim * a.kv_dtype_bytes

    @property
    def weight_bytes_per_token(self) -> float:
        """The weights read per decode step, shared by the batch: each sequence's share."""
        return self.architecture.weights_read_per_step(self.batch) / self.batch

    @property
    def crossover_context(self) -> float:
        """Context length (keys) beyond which a token's KV-cache bytes exceed its share of the weight bytes."""
        return self.weight_bytes_per_token / self.kv_bytes_per_token

    def token(self, context: Any) -> Tally:
        """One generated token whose query attends over ``context`` keys (arrays broadcast)."""
        context = np.asarray(context, dtype=np.float64)
        flops = 2.0 * self.architecture.active_parameters + self.attention_flops_per_key * context
        return Tally(flops, np.full_like(context, self.weight_bytes_per_token), self.kv_bytes_per_token * context)

    def decode(self, generated: Any, prompt_tokens: Any = 0.0) -> Tally:
        """Generating ``generated`` tokens after a ``prompt_tokens`` prompt, one sample (arrays broadcast),
        closed form. With ``shared_prompt`` the prompt's KV reads are left out (``request`` adds them once)."""
        g, prompt = np.broadcast_arrays(
            np.asarray(generated, dtype=np.float64), np.asarray(prompt_tokens, dtype=np.float64)
        )
        own_keys = g * (g + 1.0) / 2.0  # sum over t = 1..g of the generated keys seen by token t
        keys = prompt * g + own_keys
        flops = 2.0 * self.architecture.active_parameters * g + self.attention_flops_per_key * keys
        kv_keys = own_keys if self.shared_prompt else keys
        return Tally(flops, self.weight_bytes_per_token * g, self.kv_bytes_per_token * kv_keys)

    def prefill(self, prompt_tokens: Any) -> Tally:
        """Prefilling a prompt once: its tokens' multiplies, causal attention over it, its KV cache written,
        and one step's share of the weight reads."""
        prompt = np.asarray(prompt_tokens, dtype=np.float64)
        keys = prompt * (prompt + 1.0) / 2.0
        flops = 2.0 * self.architecture.active_parameters * prompt + self.attention_flops_per_key * keys
        return Tally(flops, np.full_like(prompt, self.weight_bytes_per_token), self.kv_bytes_per_token * prompt)

    def shared_prompt_reads(self, prompt_tokens: Any, mean_generated: Any) -> Tally:
        """The prompt's KV cache read once per decode step for all samples of a request (``shared_prompt``),
        over its mean generated length (Kinetics' count); nothing when the prompt is not shared."""
        prompt, steps = np.broadcast_arrays(
            np.asarray(prompt_tokens, dtype=np.float64), np.asarray(mean_generated, dtype=np.float64)
        )
        zero = np.zeros(prompt.shape)
        return Tally(zero, zero, self.kv_bytes_per_token * prompt * steps if self.shared_prompt else zero)

    def decode_request(self, prompt_tokens: Any, generated: Any) -> Tally:
        """Decoding one request: its samples' generated tokens on the last axis of ``generated``."""
        g = np.asarray(generated, dtype=np.float64)
        prompt = np.asarray(prompt_tokens, dtype=np.float64)
        samples = self.decode(g, prompt[..., None]).sum(axis=-1)
        return samples + self.shared_prompt_reads(prompt, g.mean(axis=-1))

    def request(self, prompt_tokens: Any, generated: Any) -> Tally:
        """One request: its prompt prefilled once, then its samples (generated tokens on the last axis)."""
        return self.prefill(prompt_tokens) + self.decode_request(prompt_tokens, generated)
