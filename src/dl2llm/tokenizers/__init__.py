"""Tokenizers from scratch: byte-level BPE, WordPiece and the Unigram LM.

- :mod:`dl2llm.tokenizers.bpe` -- GPT-2's byte-level BPE (same ids as ``tiktoken``).
- :mod:`dl2llm.tokenizers.wordpiece` -- BERT's WordPiece (same ids as ``BertTokenizerFast``).
- :mod:`dl2llm.tokenizers.unigram` -- SentencePiece's Unigram LM (EM training, Viterbi).
- :mod:`dl2llm.tokenizers.evaluation` -- bytes/token, fertility, unknown rate, speed.
- :mod:`dl2llm.tokenizers.reference` -- the libraries they are checked against.

Inside this package ``import tokenizers`` still means Hugging Face's library
(imports are absolute); ours is always ``dl2llm.tokenizers``.
"""

from dl2llm.tokenizers.bpe import ByteBPETokenizer
from dl2llm.tokenizers.unigram import UnigramTokenizer
from dl2llm.tokenizers.wordpiece import WordPieceTokenizer

__all__ = ["ByteBPETokenizer", "UnigramTokenizer", "WordPieceTokenizer"]
