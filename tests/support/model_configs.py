"""The architecture fields of published models' Hugging Face config.json files (what the cost model reads).

Written here, not downloaded: the values of each model's config.json on the Hugging Face Hub, and checked in
``tests/test_cost_model.py`` against the parameter counts their model cards publish.
"""

from __future__ import annotations

from benchmarks.planner import QWEN3_8B_CONFIG  # the model the planner benchmark prices for

QWEN3_8B = {"architectures": ["Qwen3ForCausalLM"], **QWEN3_8B_CONFIG, "use_sliding_window": False}
QWEN3_0_6B = {
    **QWEN3_8B,
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "tie_word_embeddings": True,
}
QWEN3_30B_A3B = {
    "architectures": ["Qwen3MoeForCausalLM"],
    "model_type": "qwen3_moe",
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "num_hidden_layers": 48,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
# DeepSeek-R1-Distill-Qwen-7B is a Qwen2.5-Math-7B: a qwen2 config without head_dim (hidden / heads = 128).
R1_DISTILL_QWEN_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_sliding_window": False,
}
# DeepSeek-R1-Distill-Llama-8B is a Llama-3.1-8B.
R1_DISTILL_LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
