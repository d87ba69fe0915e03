"""Judging one answer: is it right, cited, faithful, or junk?

These are the per-answer criteria of the capstone's evaluation
(:mod:`dl2llm.evaluation.harness` averages them, with intervals):

- **key-term accuracy** -- the answer names one of the question's key API
  terms (``maxsize``, ``pairwise``), as a whole word, ignoring case;
- **citation accuracy** -- each citation points at a passage that contains a
  key term or supports the sentence it closes; an answer that cites nothing
  scores 0 (not citing is no way to be right);
- **faithfulness** -- the share of the answer's sentences supported by the
  passages they cite (:func:`~dl2llm.rag.checks.supported`; a sentence without
  a citation of its own is judged against every passage the answer cites). No
  NLI cross-encoder can be had offline, so support is a documented lexical
  criterion, checked against answers labelled by hand in
  ``data/capstone_qa/faithfulness_labels.jsonl`` (the agreement is reported
  with the evaluation);
- **junk** -- empty, an echo of the prompt, repetition, or a soup of markers
  (:func:`~dl2llm.rag.checks.junk_kind`).

The citation, support and junk definitions live in :mod:`dl2llm.rag.checks`,
because the service checks the language model's output with the same ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dl2llm.rag.checks import citations, is_refusal, junk_kind, strip_markers, supported

_LIST_ITEM = re.compile(r"(?<=】)\s*[,;]\s*")  # "`a` 【1】, `b` 【2】": two claims
_LABEL = re.compile(r"^\s*See also:\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?:])(?:\s*(?:【\d+】|\[\d+\]))*\s+(?!【|\[\d+\])(?=\S)|\n+")

__all__ = [
    "citation_accuracy",
    "claims",
    "criterion_agreement",
    "faithfulness",
    "is_refusal",
    "junk_kind",
    "mentions",
    "names_key_term",
]


def mentions(text: str, term: str) -> bool:
    """Is ``term`` in ``text`` as a whole word (case ignored)?

    >>> mentions("Pass maxsize=None to lru_cache.", "maxsize"), mentions("a maxsizer", "maxsize")
    (True, False)
    """
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) is not None


def names_key_term(answer: str, key_terms: Sequence[str]) -> bool:
    """Key-term accuracy of one answer: it names at least one key term."""
    return any(mentions(answer, term) for term in key_terms)


def claims(answer: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences with the citations that close each of them.

    >>> claims("It caches calls. 【1】 Use maxsize. 【2】")
    [('It caches calls.', [1]), ('Use maxsize.', [2])]

    A list of cited names is one claim per name (the "See also:" label is not one):

    >>> claims("See also: `f(x)` 【3】, `g(y)` 【4】.")
    [('`f(x)`', [3]), ('`g(y)`.', [4])]
    """
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(answer):
        pieces.append(answer[start : match.end()])
        start = match.end()
    pieces.append(answer[start:])
    result = []
    for piece in (part for whole in pieces for part in _LIST_ITEM.split(whole)):
        sentence = strip_markers(_LABEL.sub("", piece))
        if len(re.findall(r"\w+", sentence)) >= 2:
            result.append((sentence, citations(piece)))
    return result


def faithfulness(answer: str, passages: Sequence[str]) -> float | None:
    """Share of the answer's sentences supported by the passages they cite (1-based numbers).

    ``None`` when there is nothing to judge (a refusal, or no sentence).
    """
    found = claims(answer)
    if not found or is_refusal(answer):
        return None
    cited_anywhere = sorted({n for _, cited in found for n in cited})
    scores = []
    for sentence, cited in found:
        sources = [passages[n - 1] for n in (cited or cited_anywhere) if 1 <= n <= len(passages)]
        scores.append(any(supported(sentence, source) for source in sources))
    return sum(scores) / len(scores)


def citation_accuracy(
    answer: str, passages: Sequence[str], key_terms: Sequence[str]
) -> float | None:
    """Share of citations whose passage has a key term or supports their sentence.

    0.0 for an answer that cites nothing; ``None`` for a refusal.
    """
    if is_refusal(answer):
        return None
    checks = []
    for sentence, cited in claims(answer):
        for n in cited:
            passage = passages[n - 1] if 1 <= n <= len(passages) else None
            checks.append(
                passage is not None
                and (names_key_term(passage, key_terms) or supported(sentence, passage))
            )
    return sum(checks) / len(checks) if checks else 0.0


def criterion_agreement(labels: Sequence[dict]) -> dict:
    """How well :func:`~dl2llm.rag.checks.supported` agrees with a person's judgement.

    ``labels``: rows ``{"sentence", "passage", "supported": bool}``, the human
    verdict on whether the passage states what the sentence says. Returns the
    raw agreement, Cohen's kappa (agreement beyond chance), and the criterion's
    precision and recall on the "supported" class.

    >>> criterion_agreement([
    ...     {"sentence": "It caches calls.", "passage": "It caches calls to f.", "supported": True},
    ...     {"sentence": "It sorts lists.", "passage": "It caches calls to f.", "supported": False},
    ... ])["agreement"]
    1.0
    """
    from sklearn.metrics import cohen_kappa_score, precision_score, recall_score

    human = [bool(row["supported"]) for row in labels]
    criterion = [supported(row["sentence"], row["passage"]) for row in labels]
    return {
        "n": len(labels),
        "human_supported": sum(human),
        "agreement": sum(h == c for h, c in zip(human, criterion, strict=True)) / len(labels),
        "kappa": float(cohen_kappa_score(human, criterion)),
        "precision": float(precision_score(human, criterion, zero_division=0)),
        "recall": float(recall_score(human, criterion, zero_division=0)),
    }
