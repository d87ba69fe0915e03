"""The training text for static word vectors: sentences of lower-cased word tokens.

Word vectors learn from co-occurrence, so they need many words of ordinary
English. The course ships these general-English texts (all offline, through
:mod:`dl2llm.data`):

- ``botchan``: the novel *Botchan* (45k tokens),
- ``lee``: the Lee background corpus of 300 Australian news stories (58k tokens),
- ``wikipedia``: 200 English Wikipedia articles, gensim's test sample (about 450k tokens),
- ``snippets``: review, tweet and editorial snippets of the VADER ground truth
  (Hutto & Gilbert, 2014): 10,605 movie reviews, 3,708 Amazon reviews, 5,190 NYT
  editorial snippets and 4,200 tweets.

``CORPORA["small"]`` (Botchan + Lee, 103k tokens) is for quick runs: too small
for word vectors to show much structure (analogy scores there are noise).
``CORPORA["full"]`` is all four: under a million tokens, tiny by word2vec
standards (the paper used billions of words; GloVe 6B, six billion) but enough
for analogy and similarity scores to rise above chance. The Python documentation
(``python-docs``) is kept as a source but left out of both presets: its
vocabulary is technical, not the English the evaluation sets ask about. Every
model in a comparison is trained on the *same* tokenised sentences.

Tokenisation is gensim's ``simple_preprocess``: lower-case alphabetic tokens of
2 to 15 characters (so "a", "I" and numbers are dropped).
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Callable

from gensim.corpora.wikicorpus import extract_pages, filter_wiki
from gensim.utils import simple_preprocess

from dl2llm.assets import WIKIPEDIA_SAMPLE
from dl2llm.data import (
    english_text,
    gensim_test_file,
    lee_background_lines,
    python_docs_texts,
    sentiment_records,
    unlabelled_sentiment_texts,
)
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


def wikipedia_sentences() -> list[Sentence]:
    """Article text of gensim's Wikipedia sample, markup stripped, redirects skipped."""
    with bz2.open(gensim_test_file(WIKIPEDIA_SAMPLE)) as dump:
        texts = [filter_wiki(text) for _, text, _ in extract_pages(dump, ("0",))]
    articles = [text for text in texts if not text.lstrip().upper().startswith("#REDIRECT")]
    return [sentence for text in articles for sentence in split_sentences(text)]


def snippet_sentences() -> list[Sentence]:
    """Movie, Amazon, NYT and tweet snippets, each text once."""
    texts = [text for text, _ in sentiment_records()]
    seen = set(texts)
    texts += [text for text in unlabelled_sentiment_texts() if text not in seen]
    return [sentence for text in texts for sentence in split_sentences(text)]


def python_docs_sentences() -> list[Sentence]:
    return [sentence for text in python_docs_texts() for sentence in split_sentences(text)]


SOURCES: dict[str, Callable[[], list[Sentence]]] = {
    "botchan": botchan_sentences,
    "lee": lee_sentences,
    "wikipedia": wikipedia_sentences,
    "snippets": snippet_sentences,
    "python-docs": python_docs_sentences,
}
CORPORA: dict[str, tuple[str, ...]] = {
    "small": ("botchan", "lee"),
    "full": ("botchan", "lee", "wikipedia", "snippets"),
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
