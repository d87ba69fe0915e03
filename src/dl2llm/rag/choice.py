"""The language model's choice among the evidence: the prompt it reads, and the checks on its reply.

With ``--generator llm`` (``style="evidence"``), SmolLM2 reads the question and
one line per candidate API entry (:func:`candidate_line`: ``- `signature`:
sentence``) and answers in one sentence that names the entry it chose. Its
reply is shown only when :func:`check_phrasing` passes it; the entry it names
(:func:`named_candidate`) is then moved to the front of the evidence
(:func:`promote`). The same lines are the training targets of the capstone's
LoRA fine-tuning (:mod:`dl2llm.finetune.grounded_qa`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dl2llm.rag.checks import junk_kind, supported
from dl2llm.rag.evidence import Evidence, api_signatures, context_of, readable
from dl2llm.rag.retrieve import Hit  # noqa: F401 (used by the doctests)

EVIDENCE_INSTRUCTION = (
    "Answer the question in one sentence using only the evidence above, and name the "
    "function, class or module it is about."
)
EVIDENCE_ENTRIES = 5  # the entries the model chooses among (dev: a key term in 66% of top 5)


def evidence_candidates(
    evidence: Sequence[Evidence], most: int = EVIDENCE_ENTRIES
) -> list[Evidence]:
    """The best sentence of each of the ``most`` best entries (API entries or sections)."""
    seen, candidates = set(), []
    for item in evidence:
        key = (item.hit.doc_id, item.hit.anchor)
        if key not in seen and len(candidates) < most:
            seen.add(key)
            candidates.append(item)
    return candidates


def candidate_line(item: Evidence) -> str:
    """How a candidate is shown to the model (and how a trained answer restates it).

    >>> hit = Hit(0, "d", "d", "functools.cache", "functools > cache(user_function)", "", 1.0)
    >>> candidate_line(Evidence(1, hit, "Simple lightweight unbounded function cache.", 0.7))
    '`functools.cache(user_function)`: Simple lightweight unbounded function cache.'
    """
    signatures = api_signatures(item.hit)
    lead = f"`{signatures[0]}`: " if signatures else ""
    return lead + readable(item.sentence)


def build_evidence_messages(question: str, candidates: Sequence[Evidence]) -> list[dict[str, str]]:
    """The evidence prompt: the question, one line per candidate entry, the task."""
    lines = "\n".join(f"- {candidate_line(item)}" for item in candidates)
    content = f"Question: {question}\n\nEvidence:\n{lines}\n\n{EVIDENCE_INSTRUCTION}"
    return [{"role": "user", "content": content}]


def api_names(item: Evidence) -> tuple[str, ...]:
    """The names an answer may call ``item``'s API entry by: qualified, then last part."""
    if not api_signatures(item.hit):
        return ()
    qualified = context_of(item.hit).lower()
    return qualified, qualified.rpartition(".")[2]


def _words(text: str) -> set[str]:
    return {w.lower().rstrip(".") for w in re.findall(r"[\w.]+", text)}


def named_candidate(text: str, candidates: Sequence[Evidence]) -> Evidence | None:
    """The candidate whose API ``text`` names: by qualified name first, then by last part
    (the longest such name: "the lru_cache cache" names ``lru_cache``, not ``cache``).

    >>> hits = [Hit(n, "d", "d", f"m.{name}", f"m > {name}()", "", 1.0) for n, name in
    ...         enumerate(("chain", "pairwise"))]
    >>> candidates = [Evidence(1, hit, "", 0.0) for hit in hits]
    >>> named_candidate("Use `m.pairwise()` here.", candidates).hit.anchor
    'm.pairwise'
    """
    words = _words(text)
    named = [item for item in candidates if api_names(item) and api_names(item)[0] in words]
    if named:
        return named[0]
    named = [item for item in candidates if api_names(item) and api_names(item)[1] in words]
    return max(named, key=lambda item: len(api_names(item)[1]), default=None)


def restates(text: str, item: Evidence) -> bool:
    """Does ``text`` only repeat ``item``'s line (it holds the sentence, or is part of the line)?

    >>> hit = Hit(0, "d", "d", "m.f", "m > f(x)", "", 1.0)
    >>> item = Evidence(1, hit, "Return the first item.", 0.5)
    >>> restates("`m.f(x)`: Return the first item.", item), restates("Use m.f for it.", item)
    (True, False)
    """

    def plain(words: str) -> str:
        return " ".join(re.findall(r"\w+", words.lower()))

    said = plain(text)
    return plain(readable(item.sentence)) in said or said in plain(candidate_line(item))


def promote(evidence: Sequence[Evidence], chosen: Evidence) -> list[Evidence]:
    """``evidence`` with the chosen entry's sentences first, the others after in their order."""
    key = (chosen.hit.doc_id, chosen.hit.anchor)
    first = [e for e in evidence if (e.hit.doc_id, e.hit.anchor) == key]
    return first + [e for e in evidence if (e.hit.doc_id, e.hit.anchor) != key]


def check_phrasing(text: str, candidates: Sequence[Evidence]) -> str | None:
    """Why the model's sentence may not be shown, or None when it passes.

    It must not be junk (:func:`~dl2llm.rag.checks.junk_kind`), must be
    supported by the candidates (:func:`~dl2llm.rag.checks.supported`), must
    not say "I don't know" while there is evidence, and -- when a candidate is
    an API entry -- must name one of their APIs.
    """
    if kind := junk_kind(text):
        return kind
    if re.search(r"\bdon'?t know\b", text, re.IGNORECASE):
        return "refused"
    source = " ".join(
        f"{item.hit.title} {candidate_line(item)} {item.sentence}" for item in candidates
    )
    if not supported(text, source):
        return "unsupported"
    if any(api_names(item) for item in candidates) and named_candidate(text, candidates) is None:
        return "names no API of the evidence"
    return None
