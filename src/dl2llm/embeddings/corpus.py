"""The training text for static word vectors: sentences of lower-cased word tokens.

Word vectors learn from co-occurrence, so they need many words of ordinary
English. The course ships four texts (all offline, through :mod:`dl2llm.data`):

- ``botchan``: the novel *Botchan* (45k tokens),
- ``lee``: the Lee background corpus of 300 Australian news stories (58k tokens),
- ``movies``: 10,605 Rotten Tomatoes review snippets (191k tokens),
- ``python-docs``: the Python 3.11 documentation sources (1.35M tokens).

``CORPORA["small"]`` (Botchan + Lee, 103k tokens) is for quick runs: too small
for word vectors to show much structure (analogy scores there are noise).
``CORPORA["full"]`` adds the movie snippets and the Python docs (1.64M tokens):
tiny by word2vec standards (the paper used billions of words) but enough for
analogy and similarity scores to rise above chance. Every model in a comparison
is trained on the *same* tokenised sentences.

Tokenisation is gensim's ``simple_preprocess``: lower-case alphabetic tokens of
2 to 15 characters (so "a", "I" and numbers are dropped).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gensim.utils import simple_preprocess

from dl2llm.data import english_text, lee_background_lines, python_docs_texts, sentiment_records
from dl2llm.runtime import UsageError

Sentence = list[str]
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def tokenize(text: str) -> Sentence:
    """Lower-cased alphabetic word tokens (gensim's ``simple_preprocess``)."""
    return simple_preprocess(text)


def split_sentences(text: str) -> list[Sentence]:
    """Cut running text at ``.``, ``!`` or ``?`` and tokenise each piece.

    Pieces with fewer than two tokens are dropped: they hold no context pair.
    """
    pieces = SENTENCE_END.split(" ".join(text.split()))
    return [tokens for tokens in map(tokenize, pieces) if len(tokens) > 1]


def botchan_sentences() -> list[Sentence]:
    return split_sentences(english_text())


def lee_sentences() -> list[Sentence]:
    return [sentence for line in lee_background_lines() for sentence in split_sentences(line)]


def movie_sentences() -> list[Sentence]:
    return [sentence for text, _ in sentiment_records() for sentence in split_sentences(text)]


def python_docs_sentences() -> list[Sentence]:
    return [sentence for text in python_docs_texts() for sentence in split_sentences(text)]


SOURCES: dict[str, Callable[[], list[Sentence]]] = {
    "botchan": botchan_sentences,
    "lee": lee_sentences,
    "movies": movie_sentences,
    "python-docs": python_docs_sentences,
}
CORPORA: dict[str, tuple[str, ...]] = {
    "small": ("botchan", "lee"),
    "full": ("botchan", "lee", "movies", "python-docs"),
}


def load_corpus(name: str) -> list[Sentence]:
    """The sentences of a preset in :data:`CORPORA` or of one source in :data:`SOURCES`."""
    if name in CORPORA:
        return [sentence for source in CORPORA[name] for sentence in SOURCES[source]()]
    if name in SOURCES:
        return SOURCES[name]()
    known = ", ".join([*CORPORA, *SOURCES])
    raise UsageError(f"unknown corpus '{name}' (known: {known})")


def count_tokens(sentences: list[Sentence]) -> int:
    """Total number of tokens."""
    return sum(len(sentence) for sentence in sentences)
