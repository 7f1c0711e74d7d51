"""Tiny reward models with random weights, built offline for tests of the scoring backends.

The tokenizer is a byte-level BPE trained on a few sentences (any text tokenizes; nothing is downloaded),
with a chat template and a step separator token ``<step>`` for process reward models.
"""

from __future__ import annotations

from pathlib import Path

STEP_TOKEN = "<step>"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_CORPUS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "The answer is 72. First compute 48 / 2 = 24, then 48 + 24 = 72.",
    "sample gsm8k/test/0#3 seed 1234\n#### 18",
    "Let x be the number of apples. Then 3x + 2 = 11, so x = 3.",
]


def build_tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<|end|>", STEP_TOKEN]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_CORPUS, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", additional_special_tokens=[STEP_TOKEN]
    )
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.save_pretrained(folder)
    return wrapped


def _llama_config(tokenizer, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,  # head size 32: the smallest vLLM's CPU attention supports
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
        **extra,
    )


def tiny_outcome_reward_model(folder: Path, seed: int = 0) -> Path:
    """A 2-layer ``LlamaForSequenceClassification`` with one output (a scalar reward), saved in ``folder``."""
    import torch
    from transformers import LlamaForSequenceClassification

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(folder)
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(_llama_config(tokenizer, num_labels=1))
    model.save_pretrained(folder)
    return folder


def tiny_process_reward_model(folder: Path, seed: int = 0) -> Path:
    """A 2-layer ``LlamaForTokenClassification`` with two labels (step wrong / right), saved in ``folder``."""
    import torch
    from transformers import LlamaForTokenClassification

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(folder)
    torch.manual_seed(seed)
    # no bias on the head: vLLM's token-classification adapter has none, so both backends load the same head
    model = LlamaForTokenClassification(_llama_config(tokenizer, num_labels=2, token_classification_bias=False))
    model.save_pretrained(folder)
    return folder
