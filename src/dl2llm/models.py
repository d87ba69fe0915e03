"""Loading models: one function per model family, offline by default.

Each loader takes ``name_or_path``: ``None`` means the offline asset (see
:mod:`dl2llm.assets`); a local folder or a Hugging Face hub name works too, for
learners who are online and want a bigger model.

- :func:`load_llm` -- the instruct decoder (SmolLM2-135M-Instruct offline).
- :func:`load_encoder` -- the BERT-family sentence encoder (all-MiniLM-L6-v2).
- :func:`load_gpt2_tokenizer` -- the real GPT-2 byte-level BPE (via tiktoken).
"""

from __future__ import annotations

from pathlib import Path

import torch

from dl2llm.assets import AssetError, asset_dir, asset_file

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_EOT = "<|endoftext|>"
GPT2_EOT_ID = 50256


def _resolve(name_or_path: str | Path | None, asset: str) -> str:
    if name_or_path is None:
        return str(asset_dir(asset))
    path = Path(name_or_path).expanduser()
    if path.exists():
        return str(path)
    if str(name_or_path).startswith((".", "/", "~")):
        raise AssetError(f"model path '{name_or_path}' does not exist")
    return str(name_or_path)


def load_llm(name_or_path: str | Path | None = None, dtype: torch.dtype = torch.float32):
    """``(model, tokenizer)`` of a causal LM; offline default SmolLM2-135M-Instruct."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _resolve(name_or_path, "smollm2")
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    model.eval()
    return model, tokenizer


def load_encoder(name_or_path: str | Path | None = None):
    """``(model, tokenizer)`` of a BERT-family encoder; offline default all-MiniLM-L6-v2."""
    from transformers import AutoModel, AutoTokenizer

    source = _resolve(name_or_path, "minilm")
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(source)
    model.eval()
    return model, tokenizer


def encoder_path(name_or_path: str | Path | None = None) -> str:
    """Where the encoder lives (for ``SentenceTransformer(...)`` and friends)."""
    return _resolve(name_or_path, "minilm")


def llm_path(name_or_path: str | Path | None = None) -> str:
    """Where the LLM lives (a folder or a hub name)."""
    return _resolve(name_or_path, "smollm2")


def load_gpt2_tokenizer():
    """The real GPT-2 tokenizer as a ``tiktoken.Encoding`` built from the offline ranks.

    ``tiktoken.get_encoding("gpt2")`` would download the ranks; we build the same
    encoding from the file shipped in the ``openai-whisper`` sdist.
    """
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(asset_file("gpt2-bpe", "gpt2.tiktoken")))
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={GPT2_EOT: GPT2_EOT_ID},
    )
