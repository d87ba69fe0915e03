"""Exercise ``wordpiece_encoding``: BERT's WordPiece encoder (week 2).

Mirrors :func:`dl2llm.tokenizers.wordpiece.split_word` and
:meth:`dl2llm.tokenizers.wordpiece.WordPieceTokenizer.encode`; the reference is
``transformers.BertTokenizerFast`` on MiniLM's uncased ``vocab.txt``.
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise wordpiece_encoding: WordPiece, longest-match-first (Wu et al., 2016).

Each word is split into the longest vocabulary entry that starts it, then the
longest entry (with a "##" prefix) that continues it, and so on:
"unaffable" -> ["una", "##ffa", "##ble"]. If some part cannot be matched, or
the word is longer than 100 characters, the whole word becomes "[UNK]".

BERT's normalisation and pre-tokenisation (lowercase, strip accents, split off
punctuation, space out CJK characters) are not the lesson: use the two helpers
imported below. Check with: dl2llm exercise check wordpiece_encoding
"""

from dl2llm.tokenizers.wordpiece import bert_normalize, bert_pre_tokenize

MAX_INPUT_CHARS_PER_WORD = 100


def split_word(word: str, vocab: dict[str, int], unk_token: str = "[UNK]") -> list[str]:
    """The WordPiece pieces of one pre-tokenised word, e.g. ["una", "##ffa", "##ble"]."""
    # start = 0
    # while start < len(word): find the longest piece word[start:end] (## after the first)
    raise NotImplementedError


def encode(text: str, vocab: dict[str, int]) -> list[int]:
    """Token ids of ``text`` wrapped in [CLS] ... [SEP], like BertTokenizerFast.encode.

    words = bert_pre_tokenize(bert_normalize(text)); every word -> split_word -> ids.
    """
    raise NotImplementedError
'''


@cache
def _vocab() -> dict[str, int]:
    from dl2llm.assets import asset_file

    lines = asset_file("minilm", "vocab.txt").read_text(encoding="utf-8").splitlines()
    return {token: i for i, token in enumerate(lines)}


@cache
def _bert():
    from dl2llm.assets import asset_file
    from dl2llm.tokenizers.reference import bert_tokenizer_fast

    return bert_tokenizer_fast(asset_file("minilm", "vocab.txt"))


def _library() -> SimpleNamespace:
    from dl2llm.tokenizers.wordpiece import WordPieceTokenizer, split_word

    return SimpleNamespace(
        split_word=lambda word, vocab, unk_token="[UNK]": split_word(word, vocab, unk_token),
        encode=lambda text, vocab: WordPieceTokenizer(vocab).encode(text),
    )


def _cases() -> list[Case]:
    words = ["unaffable", "playing", "schoolmaster", "matsuyama", "xqzjv"]
    texts = {
        "an English sentence": "The schoolmaster's unaffable reply puzzled everyone, didn't it?",
        "accents and punctuation": "Café naïve -- résumé!! (déjà vu)",
        "CJK characters and digits": "東京 has 13,960,000 people; 大阪 fewer.",
        "a word of 101 characters becomes [UNK]": "short " + "a" * 101 + " end",
        "control characters and tabs": "tab\there\x00 and\nnewline",
        "empty text": "",
    }
    cases = [
        Case(
            f"split_word({word!r}) vs BertTokenizerFast.tokenize",
            lambda code, word=word: code.split_word(word, _vocab()),
            lambda word=word: _bert().tokenize(word),
        )
        for word in words
    ]
    cases += [
        Case(
            f"encode: {name} vs BertTokenizerFast.encode",
            lambda code, text=text: code.encode(text, _vocab()),
            lambda text=text: _bert().encode(text),
        )
        for name, text in texts.items()
    ]
    return cases


EXERCISE = Exercise(
    name="wordpiece_encoding",
    title="WordPiece encoding",
    week=2,
    mirrors=(
        "dl2llm.tokenizers.wordpiece.split_word",
        "dl2llm.tokenizers.wordpiece.WordPieceTokenizer.encode",
    ),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
