"""Checks of a written answer: citations, support by a passage, junk.

The service runs these on what the language model writes before showing it
(:class:`dl2llm.rag.generate.LLMGenerator` falls back to the evidence when a
check fails), and the evaluation (:mod:`dl2llm.evaluation.judge`) scores every
system's answers with the same definitions.

Citations are written ``【1】``, so they cannot be mistaken for code
(``argv[0]``, ``lst[5]``); the ``[1]`` a language model writes is read as a
citation only where it cannot be an index (not right after a name, a bracket
or a quote).
"""

from __future__ import annotations

import re
from collections import Counter

from dl2llm.rag.bm25 import tokenize

CITATION_MARK = "【{}】"
MARKER = re.compile(r"【(\d+)】|(?<![\w\])}'\"])\[(\d+)\]")
REFUSAL = re.compile(r"\bi don'?t know\b|\bdo(?:es)? not (?:cover|document)\b", re.I)
ECHO_FRAGMENTS = (
    "using only the passages",
    "using only the evidence",
    "answer the question",
    "passages above",
    "evidence above",
    "passages:",
    "question:",
    "evidence:",
    "cite the passage",
)
SUPPORT_RECALL = 0.75  # share of a sentence's content words that its passage must contain
REPEATED_NGRAM, REPEATS = 4, 3
MARKER_SHARE = 0.3
_CODE_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|\w+\(\)|\w*_\w+")


def cite(number: int) -> str:
    """The citation marker of passage ``number`` (1-based): ``【1】``."""
    return CITATION_MARK.format(number)


def citations(text: str) -> list[int]:
    """The passage numbers cited in ``text``, in order.

    >>> citations("Use sys.argv[0] 【2】 or [1].")
    [2, 1]
    """
    return [int(a or b) for a, b in MARKER.findall(text)]


def strip_markers(text: str) -> str:
    """``text`` without its citation markers, white space collapsed.

    >>> strip_markers("Use `argv[0]` 【2】, see [1].")
    'Use `argv[0]`, see.'
    """
    return " ".join(re.sub(rf"\s*(?:{MARKER.pattern})", "", text).split())


def is_refusal(text: str) -> bool:
    """Does the answer decline ("I don't know", "the docs do not cover ...")?"""
    return bool(REFUSAL.search(text))


def supported(sentence: str, passage: str) -> bool:
    """Does ``passage`` support ``sentence``? The project's documented criterion.

    Supported when the passage contains at least ``SUPPORT_RECALL`` of the
    sentence's content words (BM25's terms: lower case, stop words dropped) and
    every code name in it (``os.path.join``, ``cache_info()``, ``max_size``).
    A paraphrase in other words fails it; an invented API always does.

    >>> supported("lru_cache keeps the maxsize most recent calls.",
    ...           "Decorator that saves up to the maxsize most recent calls (lru_cache).")
    True
    >>> supported("Use the tomlkit.parse function.", "tomllib.load reads a TOML file.")
    False
    """
    words = set(tokenize(strip_markers(sentence)))
    if not words:
        return True
    present = set(tokenize(passage))
    if len(words & present) / len(words) < SUPPORT_RECALL:
        return False
    lowered = passage.lower()
    return all(name.lower().rstrip("()") in lowered for name in _CODE_NAME.findall(sentence))


def junk_kind(answer: str) -> str | None:
    """Why ``answer`` is junk -- ``empty``, ``echo``, ``marker_soup``, ``repetition`` -- or None.

    >>> junk_kind("[1]\\n[2]\\n[3]\\n[xi]\\n[li]"), junk_kind("Use pairwise(). 【1】")
    ('marker_soup', None)
    """
    words = re.findall(r"\w+", MARKER.sub(" ", answer))
    markers = len(re.findall(r"[\[【][^\]】\s]{0,6}[\]】]", answer))
    if markers >= 3 and markers / (markers + len(words)) > MARKER_SHARE:
        return "marker_soup"
    if len(words) < 2:
        return "empty"
    lowered = answer.lower()
    if any(fragment in lowered for fragment in ECHO_FRAGMENTS):
        return "echo"
    tokens = [w.lower() for w in words]
    grams = Counter(
        tuple(tokens[i : i + REPEATED_NGRAM]) for i in range(len(tokens) - REPEATED_NGRAM + 1)
    )
    if grams and max(grams.values()) >= REPEATS:
        return "repetition"
    return None
