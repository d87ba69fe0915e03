"""Every tiny test model, built in one place (like Hugging Face's ``ModelTester`` classes).

Each builder (but :func:`tiny_transformer`) seeds ``torch.manual_seed(seed)`` and then
constructs the model, so a test that calls it gets the same weights, and leaves the
global generator in the same state, as one that seeds and constructs by hand. Models come
back in eval mode, except with ``training=True`` and where a docstring says "train mode"
(models built to be trained). Keyword arguments override the default config fields.
Test files import this module directly (``from tiny import ...``): pytest puts ``tests/``
on ``sys.path``. ``transformers`` is imported only when a builder needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from dl2llm.gpt import GPT, GPTConfig

if TYPE_CHECKING:
    from transformers import (
        BertForSequenceClassification,
        BertModel,
        GPT2Config,
        GPT2ForSequenceClassification,
        GPT2LMHeadModel,
        LlamaForCausalLM,
    )

    from dl2llm.transformer import Transformer


# --- dl2llm.gpt.GPT (our own GPT-2) ---------------------------------------------------------


def tiny_gpt_config(**fields) -> GPTConfig:
    """A ``GPTConfig`` of 1 layer, 2 heads, width 16 and 32 positions; ``fields`` override.

    Without ``vocab_size`` it keeps GPT-2's vocabulary (50,257, so GPT-2's tokenizer fits);
    dropout is GPTConfig's default, 0.
    """
    return GPTConfig(**{"context_length": 32, "n_layer": 1, "n_head": 2, "n_embd": 16, **fields})


def tiny_gpt(config: GPTConfig | None = None, seed: int = 0, *, training: bool = False) -> GPT:
    """A random :class:`~dl2llm.gpt.GPT` of ``config`` (default :func:`tiny_gpt_config`)."""
    torch.manual_seed(seed)
    model = GPT(tiny_gpt_config() if config is None else config)
    return model if training else model.eval()


# --- Hugging Face GPT-2 ---------------------------------------------------------------------


def tiny_gpt2_config(
    *,
    vocab_size: int = 64,
    n_layer: int = 2,
    n_head: int = 2,
    n_embd: int = 32,
    n_positions: int = 32,
    special_token: int | None = 0,
    **fields,
) -> GPT2Config:
    """A ``GPT2Config``: 2 layers, 2 heads, width 32, 32 positions, vocabulary 64.

    ``special_token`` is both the BOS and the EOS id (``None``: no such token; 50256 is
    GPT2Config's own default). ``fields``: any other GPT2Config field.
    """
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        n_positions=n_positions,
        bos_token_id=special_token,
        eos_token_id=special_token,
        **fields,
    )


def tiny_gpt2(seed: int = 0, **config) -> GPT2LMHeadModel:
    """A random ``GPT2LMHeadModel`` of ``tiny_gpt2_config(**config)``, in eval mode."""
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(tiny_gpt2_config(**config)).eval()


def tiny_gpt2_untied(seed: int = 0) -> GPT2LMHeadModel:
    """:func:`tiny_gpt2` whose output layer no longer shares the token embedding table."""
    model = tiny_gpt2(seed)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    return model


def tiny_gpt2_classifier(seed: int = 0) -> GPT2ForSequenceClassification:
    """:func:`tiny_gpt2`'s shape with a 2-label head (pad id 0), in train mode (to fine-tune)."""
    from transformers import GPT2ForSequenceClassification

    torch.manual_seed(seed)
    return GPT2ForSequenceClassification(tiny_gpt2_config(num_labels=2, pad_token_id=0))


# --- Hugging Face Llama ---------------------------------------------------------------------


def tiny_llama(seed: int = 0, **fields) -> LlamaForCausalLM:
    """A random ``LlamaForCausalLM``, eval mode: 2 layers, width 32, 4 heads (2 key-value).

    Feed-forward 64, vocabulary 64, 32 positions, token 0 as BOS and EOS; ``fields``
    override any LlamaConfig field.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        **{
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 64,
            "max_position_embeddings": 32,
            "bos_token_id": 0,
            "eos_token_id": 0,
            **fields,
        }
    )
    return LlamaForCausalLM(config).eval()


def tiny_smollm2_llama(seed: int = 0) -> LlamaForCausalLM:
    """:func:`tiny_llama` with SmolLM2's vocabulary (49,152, EOS 2), for its real tokenizer.

    Positions (2048) and BOS (1) are LlamaConfig's defaults.
    """
    return tiny_llama(
        seed, vocab_size=49152, max_position_embeddings=2048, bos_token_id=1, eos_token_id=2
    )


# --- Hugging Face BERT ----------------------------------------------------------------------


def tiny_bert(vocab_size: int, seed: int = 0, layers: int = 1, hidden: int = 64) -> BertModel:
    """A random ``BertModel`` (no head), eval mode: ``hidden // 32`` heads, feed-forward 4x."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 32),
        intermediate_size=4 * hidden,
        max_position_embeddings=512,
    )
    return BertModel(config).eval()


def tiny_bert_classifier(
    seed: int = 0, *, training: bool = False, **fields
) -> BertForSequenceClassification:
    """A random 2-label ``BertForSequenceClassification``: 2 layers, width 32, 4 heads.

    Feed-forward 64, vocabulary 100, BertConfig's dropout (0.1); ``fields`` override any
    BertConfig field.
    """
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        **{
            "vocab_size": 100,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 64,
            "num_labels": 2,
            **fields,
        }
    )
    model = BertForSequenceClassification(config)
    return model if training else model.eval()


def tiny_bert_fine_tune(seed: int = 0) -> BertForSequenceClassification:
    """A 2-layer, 32-wide BERT classifier (2 heads) over BERT's 30,522-token vocabulary.

    No dropout, so training is deterministic; in train mode, as fine-tuning starts.
    """
    return tiny_bert_classifier(
        seed,
        training=True,
        vocab_size=30522,
        num_attention_heads=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


# --- dl2llm.transformer (encoder-decoder) ---------------------------------------------------


def tiny_transformer(vocab=7, d_model=16, max_len=12, n_layers=2) -> Transformer:
    """A train-mode encoder-decoder: 4 heads, feed-forward 32, no dropout, shared vocabulary.

    Not seeded here: ``test_transformer.py`` seeds every test with an autouse fixture.
    """
    from dl2llm.transformer import Transformer

    return Transformer(vocab, vocab, d_model, 4, n_layers, 32, dropout=0.0, max_len=max_len)
