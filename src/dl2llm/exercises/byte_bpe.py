"""Exercise ``byte_bpe``: byte-level BPE training and encoding (week 2).

Mirrors :meth:`dl2llm.tokenizers.bpe.ByteBPETokenizer.train` and
:meth:`~dl2llm.tokenizers.bpe.ByteBPETokenizer.encode_ordinary`. Encoding is
checked against ``tiktoken`` built from the same ranks; training against the
library's trainer (Hugging Face's trainer breaks ties between equally frequent
pairs differently, so it cannot give the exact list).
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

from dl2llm.exercises.framework import Case, Exercise
from dl2llm.models import GPT2_PATTERN

TEMPLATE = '''"""Exercise byte_bpe: byte-level BPE (Sennrich et al., 2016; Radford et al., 2019).

Text is split into pieces by GPT-2's regular expression, each piece becomes
its UTF-8 bytes (ids 0..255), and training repeatedly merges the most frequent
adjacent pair of tokens (counted over all pieces) into a new token with the
next id, 256, 257, ... Encoding splits the same way and, inside each piece,
repeatedly merges the adjacent pair whose concatenation has the lowest id.
Check with: dl2llm exercise check byte_bpe
"""

import regex

from dl2llm.models import GPT2_PATTERN  # GPT-2's pre-tokenizer regular expression


def train_bpe(text: str, vocab_size: int) -> dict[bytes, int]:
    """The vocabulary after ``vocab_size - 256`` merges: byte string -> id.

    bytes([b]) -> b for the 256 single bytes, then each merged token -> 256, 257, ...
    Ties between equally frequent pairs go to the smaller pair of ids (compare as tuples).
    Stop early when no pair is left.
    """
    # pieces = Counter(regex.findall(GPT2_PATTERN, text))   # piece -> count
    # words = [list(piece.encode("utf-8")) ...]              # ids per piece
    raise NotImplementedError


def encode(text: str, ranks: dict[bytes, int]) -> list[int]:
    """Token ids of ``text`` under the vocabulary ``ranks`` (as tiktoken would give them)."""
    raise NotImplementedError
'''


def _library() -> SimpleNamespace:
    from dl2llm.tokenizers.bpe import ByteBPETokenizer

    return SimpleNamespace(
        train_bpe=lambda text, vocab_size: ByteBPETokenizer.train(text, vocab_size).ranks,
        encode=lambda text, ranks: ByteBPETokenizer(ranks).encode_ordinary(text),
    )


@cache
def _novel_excerpt() -> str:
    from dl2llm.data import english_text

    return english_text()[:4000]


@cache
def _trained_ranks() -> dict[bytes, int]:
    from dl2llm.tokenizers.bpe import ByteBPETokenizer

    return ByteBPETokenizer.train(_novel_excerpt(), 400).ranks


def _tiktoken_ids(text: str) -> list[int]:
    import tiktoken

    encoding = tiktoken.Encoding(
        name="exercise", pat_str=GPT2_PATTERN, mergeable_ranks=_trained_ranks(), special_tokens={}
    )
    return encoding.encode_ordinary(text)


def _vocabulary(ranks: dict[bytes, int]) -> list[tuple[int, bytes]]:
    return sorted((i, token) for token, i in ranks.items())


def _library_vocabulary(text: str, vocab_size: int) -> list[tuple[int, bytes]]:
    return _vocabulary(_library().train_bpe(text, vocab_size))


def _cases() -> list[Case]:
    trainings = {
        "'aaabdaaabac', 3 merges": ("aaabdaaabac", 259),
        "'low lower lowest newer wider' x 20, 14 merges": (
            "low lower lowest newer wider " * 20,
            270,
        ),
        "vocab_size 256: no merges": ("hello world", 256),
        "UTF-8 text (accents, CJK), 12 merges": ("naïve café 東京 東京 naïve " * 5, 268),
        "4000 characters of Botchan, 64 merges": (None, 320),
    }
    cases = [
        Case(
            f"train_bpe on {name}: ids and tokens vs the library trainer",
            lambda code, t=text, n=size: _vocabulary(code.train_bpe(t or _novel_excerpt(), n)),
            lambda t=text, n=size: _library_vocabulary(t or _novel_excerpt(), n),
        )
        for name, (text, size) in trainings.items()
    ]
    encodings = {
        "an English sentence": "I was sent to the school in the country, and a new position.",
        "words never seen in training": "Quixotic zebras juxtapose 42 vexing sphinxes!",
        "multi-byte characters (accents, CJK, emoji)": "naïve café 東京 🙂",
        "runs of whitespace and newlines": "  a\n\n   b\t\tc   ",
        "empty text": "",
    }
    cases += [
        Case(
            f"encode {name} vs tiktoken with the same ranks",
            lambda code, t=text: code.encode(t, dict(_trained_ranks())),
            lambda t=text: _tiktoken_ids(t),
        )
        for name, text in encodings.items()
    ]
    return cases


EXERCISE = Exercise(
    name="byte_bpe",
    title="Byte-level BPE training and encoding",
    week=2,
    mirrors=(
        "dl2llm.tokenizers.bpe.ByteBPETokenizer.train",
        "dl2llm.tokenizers.bpe.ByteBPETokenizer.encode_ordinary",
    ),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
