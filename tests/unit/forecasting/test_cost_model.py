"""The memory-aware cost model: config.json in, FLOPs, bytes and eFLOPs out.

The config fixtures (``tests/model_configs.py``) hold the architecture fields of the named models' config.json
files; their parameter counts are checked against the counts the model cards publish and, for
Qwen3, against the counts in Kinetics' cost model (``cost_model/best_of_N/cost_model_ntrial.py``,
``model_sizes``: 0.752e9 for Qwen3-0.6B, 8.19e9 for Qwen3-8B).
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from harness.core.errors import OptionError
from harness.forecasting.cost_model import (
    HARDWARE,
    CostModel,
    Hardware,
    ModelArchitecture,
    resolve_hardware,
)
from tests.support.model_configs import QWEN3_0_6B, QWEN3_8B, QWEN3_30B_A3B, R1_DISTILL_LLAMA_8B, R1_DISTILL_QWEN_7B

# Kinetics' arithmetic intensity I = 562.5 FLOPs per byte ("E_flops" in cost_model/*/cost_model_*.py), B200's
# 4.5e15 FLOP/s over 8e12 bytes/s.
KINETICS_B200 = Hardware("kinetics-b200", 4.5e15, 8e12, "Kinetics cost_model: E_flops = 562.5")
KINETICS_QWEN3_8B_PARAMETERS = 8.19e9  # Kinetics' model_sizes["8B"]


@pytest.mark.parametrize(
    "config, total, active, non_embedding",
    [
        (QWEN3_8B, 8.19e9, None, 6.95e9),  # model card: 8.2B, 6.95B non-embedding; Kinetics: 8.19e9
        (QWEN3_0_6B, 0.596e9, None, 0.44e9),  # model card: 0.6B, 0.44B non-embedding
        (QWEN3_30B_A3B, 30.5e9, 3.3e9, 29.9e9),  # model card: 30.5B, 3.3B activated, 29.9B non-embedding
        (R1_DISTILL_QWEN_7B, 7.61e9, None, 6.53e9),  # Qwen2.5-7B card: 7.61B, 6.53B non-embedding
        (R1_DISTILL_LLAMA_8B, 8.03e9, None, None),  # Llama 3.1 8B: 8.03B
    ],
    ids=["qwen3-8b", "qwen3-0.6b", "qwen3-30b-a3b", "r1-distill-qwen-7b", "r1-distill-llama-8b"],
)
def test_parameter_counts_match_the_published_ones(config, total, active, non_embedding):
    architecture = ModelArchitecture.from_config(config)
    assert architecture.total_parameters == pytest.approx(total, rel=0.005)
    embedding = architecture.embedding_parameters
    if non_embedding is not None:
        non_embedding_count = architecture.total_parameters - embedding * (1 if config["tie_word_embeddings"] else 2)
        assert non_embedding_count == pytest.approx(non_embedding, rel=0.005)
    if active is not None:  # model cards count the activated weights with both embeddings
        assert architecture.active_parameters + embedding == pytest.approx(active, rel=0.02)
    assert architecture.head_dim == 128 and architecture.dtype_bytes == 2


def test_kinetics_parameter_counts_are_the_multiplied_weights_plus_the_embedding():
    # Kinetics counts the input embedding and the output head each once, tied or not
    for config, theirs in ((QWEN3_0_6B, 0.752e9), (QWEN3_8B, 8.19e9)):
        architecture = ModelArchitecture.from_config(config)
        assert architecture.active_parameters + architecture.embedding_parameters == pytest.approx(theirs, rel=0.001)


def test_config_is_read_from_a_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(QWEN3_8B))
    assert ModelArchitecture.from_config(path) == ModelArchitecture.from_config(QWEN3_8B)


@pytest.mark.parametrize(
    "field",
    [
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "intermediate_size",
    ],
)
def test_a_missing_field_is_named(field):
    config = {key: value for key, value in QWEN3_8B.items() if key != field}
    with pytest.raises(OptionError, match=f"has no '{field}'") as error:
        ModelArchitecture.from_config(config)
    assert error.value.option == "model_config"


@pytest.mark.parametrize("field", ["num_experts", "num_experts_per_tok", "moe_intermediate_size"])
def test_a_missing_moe_field_is_named(field):
    config = {key: value for key, value in QWEN3_30B_A3B.items() if key != field}
    with pytest.raises(OptionError, match=f"has no '{field}'"):
        ModelArchitecture.from_config(config)


def test_no_figure_is_guessed():
    no_dtype = {key: value for key, value in QWEN3_8B.items() if key != "torch_dtype"}
    with pytest.raises(OptionError, match="has no 'torch_dtype'"):
        ModelArchitecture.from_config(no_dtype)
    assert ModelArchitecture.from_config(no_dtype, dtype_bytes=2) == ModelArchitecture.from_config(QWEN3_8B)
    with pytest.raises(OptionError, match="quantization_config"):
        ModelArchitecture.from_config({**QWEN3_8B, "quantization_config": {"quant_method": "awq", "bits": 4}})
    with pytest.raises(OptionError, match="sliding-window"):
        ModelArchitecture.from_config({**QWEN3_8B, "use_sliding_window": True})
    with pytest.raises(OptionError, match="latent attention"):
        ModelArchitecture.from_config({**QWEN3_8B, "kv_lora_rank": 512})
    with pytest.raises(OptionError, match="model_type 'gpt_oss' is not one"):
        ModelArchitecture.from_config({**QWEN3_8B, "model_type": "gpt_oss"})
    with pytest.raises(OptionError, match="'hidden_size' must be a positive number"):
        ModelArchitecture.from_config({**QWEN3_8B, "hidden_size": "4096"})
    # without intermediate_size, a parameter count is the alternative
    no_mlp = {key: value for key, value in QWEN3_8B.items() if key != "intermediate_size"}
    assert ModelArchitecture.from_config(no_mlp, parameters=7e9).active_parameters == 7e9
    with pytest.raises(OptionError, match="active count comes from its config") as error:
        ModelArchitecture.from_config(QWEN3_30B_A3B, parameters=3e9)
    assert error.value.option == "parameters"


def test_unreadable_config_files_are_named(tmp_path):
    with pytest.raises(OptionError, match=r"cannot read .*absent\.json"):
        ModelArchitecture.from_config(tmp_path / "absent.json")
    broken = tmp_path / "config.json"
    broken.write_text('{\n  "hidden_size": 4096,\n  oops\n}')
    with pytest.raises(OptionError, match=r"config.json:3: not valid JSON"):
        ModelArchitecture.from_config(broken)


def test_kinetics_dense_cost_for_qwen3_8b_is_reproduced():
    """Kinetics, ``cost_model/utils.py: dense_cost`` with their Qwen3-8B settings (``cost_model_ntrial.py``:
    nparams = 8.19e9, num_attn_heads = 32, num_kv_heads = 8, head_dim = 128 x 36 layers, E_flops = 562.5),
    context_length = 128, generation_length = 32768: compute_cost + memory_cost = 45733.99 (units of 1e12
    eFLOPs) for num_trials = 1 and 363436.64 for num_trials = 8. Their model reads the weights for free (an
    infinite batch), counts no prefill and sums the context as a continuous L g + g^2 / 2, where we count the
    discrete L g + g (g + 1) / 2: a relative difference of 1 / (2 L + g), 3e-5 here."""
    architecture = ModelArchitecture.from_config(QWEN3_8B, parameters=KINETICS_QWEN3_8B_PARAMETERS)
    model = CostModel(architecture, batch=math.inf)
    assert KINETICS_B200.intensity == 562.5
    for trials, theirs in ((1, 45733.98636586598), (8, 363436.64447009587)):
        ours = model.decode_request(128, np.full(trials, 32768.0)).eflops(KINETICS_B200) / 1e12
        assert ours == pytest.approx(theirs, rel=1e-4)
        assert abs(ours / theirs - 1) == pytest.approx(1 / (2 * 128 + 32768), rel=0.05)
    # compute alone: their compute_cost 855.873 for one trial
    assert model.decode_request(128, np.full(1, 32768.0)).flops / 1e12 == pytest.approx(855.873089961984, rel=1e-4)


def test_kv_traffic_overtakes_the_weights_at_the_length_kinetics_implies():
    """Kinetics' per-token cost of a token with c keys is 2 P (linear modules) + I x D_bytes x c (KV access),
    D_bytes = 2 x 36 x 8 x 128 x 2 bytes for Qwen3-8B: the KV term overtakes at c = 2 P / (I D_bytes) = 197.5
    keys; over a whole generation without a prompt, their I D_bytes g^2 / 2 overtakes 2 P g at g = 395 tokens
    (ours, counting the g (g + 1) / 2 keys discretely, one token earlier). Ours, at their settings, crosses there.
    """
    architecture = ModelArchitecture.from_config(QWEN3_8B, parameters=KINETICS_QWEN3_8B_PARAMETERS)
    model = CostModel(architecture, batch=math.inf)
    intensity = KINETICS_B200.intensity
    crossing = 2 * KINETICS_QWEN3_8B_PARAMETERS / (intensity * 2 * 36 * 8 * 128 * 2)
    assert crossing == pytest.approx(197.5, abs=0.05)
    contexts = np.arange(1, 2000)
    token = model.token(contexts)
    kv_term = token.kv_bytes * intensity
    linear_term = 2 * architecture.active_parameters
    assert np.all(np.diff(kv_term / linear_term) > 0)
    assert contexts[np.argmax(kv_term > linear_term)] == math.ceil(crossing) == 198
    generated = np.arange(1, 2000)
    whole = model.decode(generated)
    assert generated[np.argmax(whole.kv_bytes * intensity > 2 * architecture.active_parameters * generated)] == 394
    assert 2 * crossing == pytest.approx(395, abs=0.1)


def test_kv_bytes_overtake_the_weight_bytes_as_the_generation_grows():
    """In bytes moved (the weights read once per step and shared by the batch): a token's KV bytes exceed its
    share of the weight bytes beyond ``crossover_context`` = weight bytes / (batch x KV bytes per token), and a
    whole generation's beyond twice that."""
    architecture = ModelArchitecture.from_config(QWEN3_8B)
    for batch, expected in ((1, 102_649), (64, 1_604), (256, 401)):
        model = CostModel(architecture, batch=batch)
        weights = architecture.active_parameters * 2 / batch
        assert model.crossover_context == pytest.approx(weights / (2 * 36 * 8 * 128 * 2))
        assert model.crossover_context == pytest.approx(expected, abs=1)
        generated = np.arange(1, 4 * int(model.crossover_context))
        whole = model.decode(generated)
        share = whole.kv_bytes / whole.bytes
        assert np.all(np.diff(share) > 0)
        first = generated[np.argmax(whole.kv_bytes > whole.weight_bytes)]
        assert first == math.floor(2 * model.crossover_context - 1) + 1


def test_eflops_reduce_to_flops_at_infinite_bandwidth():
    model = CostModel(ModelArchitecture.from_config(QWEN3_30B_A3B), batch=32)
    rng = np.random.default_rng(0)
    request = model.request(rng.integers(10, 500, size=20), rng.integers(1, 30_000, size=(20, 16)))
    unlimited = Hardware("unlimited", 1e15, math.inf)
    assert unlimited.intensity == 0.0
    np.testing.assert_array_equal(request.eflops(unlimited), request.flops)
    assert np.all(request.eflops(HARDWARE["h100"]) > request.flops)


def test_closed_forms_equal_the_sum_over_tokens():
    architecture = ModelArchitecture.from_config(R1_DISTILL_QWEN_7B)
    hardware = HARDWARE["h200"]
    for shared in (True, False):
        model = CostModel(architecture, batch=8, shared_prompt=shared)
        prompt, generated = 37, np.array([1, 5, 640, 2000])
        request = model.request(prompt, generated)
        flops = weight_bytes = kv_bytes = 0.0
        for g in generated:  # token t of a sample attends over the prompt, the t - 1 before it, and itself
            tokens = model.token(prompt + np.arange(1, g + 1))
            flops += tokens.flops.sum()
            weight_bytes += tokens.weight_bytes.sum()
            kv_bytes += tokens.kv_bytes.sum() - (model.kv_bytes_per_token * prompt * g if shared else 0.0)
        if shared:  # the prompt's KV cache read once per step for all samples, over their mean length
            kv_bytes += model.kv_bytes_per_token * prompt * generated.mean()
        prefill = model.token(np.arange(1, prompt + 1))  # prompt tokens: causal attention over the prompt
        flops += prefill.flops.sum()
        weight_bytes += model.weight_bytes_per_token  # one step's share of the weights
        kv_bytes += model.kv_bytes_per_token * prompt  # the prompt's KV cache written
        assert request.flops == pytest.approx(flops, rel=1e-12)
        assert request.weight_bytes == pytest.approx(weight_bytes, rel=1e-12)
        assert request.kv_bytes == pytest.approx(kv_bytes, rel=1e-12)
        assert request.eflops(hardware) == pytest.approx(flops + (weight_bytes + kv_bytes) * hardware.intensity)
    # vectorised: a batch of requests at once equals them one by one
    model = CostModel(architecture)
    prompts, generated = np.array([10, 200]), np.array([[5, 7, 9], [100, 3000, 1]])
    together = model.request(prompts, generated)
    for row in range(2):
        alone = model.request(prompts[row], generated[row])
        assert together.flops[row] == pytest.approx(alone.flops) and together.bytes[row] == pytest.approx(alone.bytes)


def test_a_mixture_of_experts_reads_the_experts_its_batch_routes_to():
    architecture = ModelArchitecture.from_config(QWEN3_30B_A3B)
    one = architecture.weights_read_per_step(1)
    everything = architecture.weights_read_per_step(math.inf)
    assert one == pytest.approx(architecture.active_parameters * 2)
    assert everything == pytest.approx((architecture.total_parameters - architecture.embedding_parameters) * 2)
    batches = [1, 2, 8, 64, 512]
    reads = [architecture.weights_read_per_step(batch) for batch in batches]
    assert all(a < b for a, b in itertools.pairwise(reads)) and reads[-1] < everything
    # each token's share still falls with the batch
    shares = [CostModel(architecture, batch=batch).weight_bytes_per_token for batch in batches]
    assert all(a > b for a, b in itertools.pairwise(shares))
    # FLOPs count only the routed experts
    assert CostModel(architecture).token(0).flops == pytest.approx(2 * architecture.active_parameters)


def test_hardware_presets_and_explicit_figures():
    assert HARDWARE["h100"].intensity == pytest.approx(295.2, abs=0.1)
    assert set(HARDWARE) == {"a100", "h100", "h200", "b200"}
    assert all(preset.source for preset in HARDWARE.values())
    assert resolve_hardware("H200") is HARDWARE["h200"]
    custom = resolve_hardware(flops_per_s=1e15, bytes_per_s=2e12)
    assert custom.intensity == 500
    assert resolve_hardware("h100", bytes_per_s=1e12).intensity == pytest.approx(989)
    with pytest.raises(OptionError, match="unknown hardware 'tpu'") as error:
        resolve_hardware("tpu")
    assert error.value.option == "hardware"
    with pytest.raises(OptionError, match="give flops_per_s and bytes_per_s"):
        resolve_hardware(flops_per_s=1e15)
    with pytest.raises(OptionError) as error:
        Hardware("broken", 1e15, 0)
    assert error.value.option == "bytes_per_s"
    with pytest.raises(OptionError) as error:
        CostModel(ModelArchitecture.from_config(QWEN3_8B), batch=0)
    assert error.value.option == "batch"
