"""Evidence-first answers: the API entry and the sentence that answer the question, cited.

A 135M-parameter model asked to answer from five passages mostly paraphrases
the wrong one, echoes its prompt or invents an API. The documentation itself
is better material: it is structured (``.. function:: name(signature)``
followed by a description), and retrieval already finds the right document
for almost every question. So the answer is *built from the evidence*:

1. every sentence of the :data:`EVIDENCE_CANDIDATES` best retrieved passages
   is a candidate, read with its context (the API name or the section title
   it belongs to);
2. the encoder scores each candidate against the question -- the cosine of
   their MiniLM vectors, a bi-encoder standing in for a cross-encoder (Nogueira
   & Cho, 2019, "Passage Re-ranking with BERT", re-rank with one);
3. the answer leads with the best candidate's API name and signature, then
   the sentence itself and the next best sentence of the same entry, each
   closed by a citation of its passage: ``【1】``, a marker that never occurs
   in code (``argv[0]`` and ``lst[5]`` survive untouched).

Nothing in such an answer is invented, so it is faithful by construction,
and it takes milliseconds. :class:`dl2llm.rag.generate.LLMGenerator` can
rephrase it; :mod:`dl2llm.rag.pipeline` checks what the model wrote against
this evidence and falls back to it when the check fails.

Before answering, :func:`out_of_scope` asks whether the question is about
something the corpus does not document (``requests.get``, ``DataFrame``,
``itertools.batched``, Python 3.12): the docs cannot answer that, whatever
retrieval finds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from dl2llm.rag.checks import cite
from dl2llm.rag.retrieve import Hit

MAX_EVIDENCE_SENTENCES = 2
EVIDENCE_CANDIDATES = 10  # passages whose sentences compete (dev: the key term is in 92% of them)
MIN_SENTENCE_WORDS = 4
SECOND_SENTENCE_MARGIN = 0.1  # the second sentence must score within this of the best
RELATED_ENTRIES = 2  # other API entries named after the answer
PROSE_HANDICAP = 0.05  # a prose sentence must beat an API entry's by this to lead (dev: +1 of 71)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(`'\"])")
_API_ANCHOR = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*")
_NEWER_SYNTAX = re.compile(r"\btype\s+[A-Z]\w*\s*=|\b(?:def|class)\s+\w+\[")  # PEP 695
_NEWER_VERSION = re.compile(r"\b(?:python\s*)?3\.(1[2-9])\b", re.IGNORECASE)


@dataclass(frozen=True)
class Evidence:
    """A sentence of a shown passage that answers the question, and how well."""

    number: int  # the passage's position in the prompt and the sources list, from 1
    hit: Hit
    sentence: str
    score: float


def api_signatures(hit: Hit) -> list[str]:
    """The signatures of the API entry ``hit`` belongs to, module-qualified; [] for prose.

    An API entry's chunk has Sphinx's id as its anchor (``functools.lru_cache``)
    and the signatures, joined by ``" / "``, as the last part of its title.
    """
    entry = hit.title.rpartition(" > ")[2]
    name = hit.anchor.rpartition(".")[2]
    if not _API_ANCHOR.fullmatch(hit.anchor) or "." not in hit.anchor:
        return []
    signatures = [s.strip() for s in entry.split(" / ")]
    if not all(re.match(rf"(?:[\w.]+\.)?{re.escape(name)}\b", s) for s in signatures):
        return []
    prefix = hit.anchor[: -len(name)]
    qualified = []
    for signature in signatures:
        bare = signature[signature.index(name) :] if name in signature else signature
        qualified.append(prefix + bare)
    return qualified


def context_of(hit: Hit) -> str:
    """What a candidate sentence is read with: its API name, or its section's title.

    >>> context_of(Hit(0, "d", "d", "functools.cache", "functools > cache(user_function)", "", 1))
    'functools.cache'
    """
    signatures = api_signatures(hit)
    return signatures[0].split("(")[0] if signatures else hit.title.rpartition(" > ")[2]


def sentences_of(text: str) -> list[str]:
    """The sentences of a passage with at least ``MIN_SENTENCE_WORDS`` words."""
    return [s for s in _SENTENCE.split(text) if len(s.split()) >= MIN_SENTENCE_WORDS]


def readable(sentence: str) -> str:
    """``sentence`` as an answer shows it: a flattened interpreter session is cut to its
    first example, as code.

    The sentence is scored whole (the example often names the API), but a run
    of ``>>>`` lines flattened into one line reads as noise; the sources show it all.

    >>> readable("Return an array of bytes. >>> (1024).to_bytes(2, 'big') b'\\x04' >>> x = 1")
    "Return an array of bytes. `>>> (1024).to_bytes(2, 'big') b'\\x04'`"
    """
    prose, _, session = sentence.partition(">>>")
    if not session:
        return sentence
    example = f"`>>> {session.split('>>>')[0].strip()}`"
    return f"{prose.strip()} {example}" if prose.strip() else example


def select_evidence(question: str, hits: Sequence[Hit], embed) -> list[Evidence]:
    """Every candidate sentence of ``hits``, scored against ``question``, best first.

    ``embed(texts) -> (n, dim)`` unit vectors (the retrieval encoder). The order
    handicaps prose (sentences outside an API entry) by :data:`PROSE_HANDICAP`:
    people ask for the function that does it; ``score`` stays the cosine.
    """
    candidates = [
        (number, hit, sentence)
        for number, hit in enumerate(hits, start=1)
        for sentence in sentences_of(hit.text)
    ]
    if not candidates:
        return []
    texts = [f"{context_of(hit)}: {sentence}" for _, hit, sentence in candidates]
    vectors = embed([question, *texts])  # (1 + n, dim)
    scores = vectors[1:] @ vectors[0]  # (n,) cosines
    prose = np.array([not api_signatures(hit) for _, hit, _ in candidates])  # (n,)
    order = np.argsort(-(scores - PROSE_HANDICAP * prose), kind="stable")
    return [Evidence(*candidates[i][:2], candidates[i][2], float(scores[i])) for i in order]


def related_entries(evidence: Sequence[Evidence], most: int = RELATED_ENTRIES) -> list[Evidence]:
    """The best evidence of up to ``most`` other API entries than the lead one, best first."""
    seen = {(evidence[0].hit.doc_id, evidence[0].hit.anchor)} if evidence else set()
    related = []
    for item in evidence[1:]:
        key = (item.hit.doc_id, item.hit.anchor)
        if len(related) < most and key not in seen and api_signatures(item.hit):
            seen.add(key)
            related.append(item)
    return related


def lead_evidence(evidence: Sequence[Evidence]) -> list[Evidence]:
    """The best sentence and, within :data:`SECOND_SENTENCE_MARGIN`, one more of its entry,
    in reading order."""
    if not evidence:
        return []
    best = evidence[0]
    chosen = [best]
    for other in evidence[1:]:
        if len(chosen) == MAX_EVIDENCE_SENTENCES:
            break
        same_entry = other.hit.chunk_id == best.hit.chunk_id or (
            other.hit.anchor == best.hit.anchor and other.hit.doc_id == best.hit.doc_id
        )
        if same_entry and best.score - other.score <= SECOND_SENTENCE_MARGIN:
            chosen.append(other)
    return sorted(chosen, key=lambda e: (e.number, e.hit.text.find(e.sentence)))


def evidence_answer(evidence: Sequence[Evidence], related: int = RELATED_ENTRIES) -> str:
    """The extractive answer: signature, best sentence, one more of the same entry, cited;
    then "See also" the ``related`` next best API entries among the passages.

    >>> hit = Hit(0, "library/functools.rst", "library/functools.rst", "functools.cache",
    ...           "functools > cache(user_function)", "Simple cache. Returns the same.", 1.0)
    >>> evidence_answer([Evidence(1, hit, "Simple lightweight unbounded function cache.", 0.7)])
    '`functools.cache(user_function)`: Simple lightweight unbounded function cache. 【1】'
    """
    if not evidence:
        return ""
    signatures = api_signatures(evidence[0].hit)
    lead = " or ".join(f"`{s}`" for s in signatures) + ": " if signatures else ""
    chosen = lead_evidence(evidence)
    answer = lead + " ".join(f"{readable(e.sentence)} {cite(e.number)}" for e in chosen)
    if others := related_entries(evidence, related):
        names = ", ".join(f"`{api_signatures(e.hit)[0]}` {cite(e.number)}" for e in others)
        answer += f"\n\nSee also: {names}."
    return answer


def shown_passages(
    hits: Sequence[Hit], evidence: Sequence[Evidence], k: int
) -> tuple[list[Hit], list[Evidence]]:
    """``k`` sources: the passages the answer cites, then the best others; evidence renumbered.

    Evidence is drawn from more passages than the ``k`` sources a user asked
    for. The lead passages come first, then the "See also" entries' passages,
    then uncited ones in rank order, until there are ``k``; evidence of a
    passage left out is dropped, so the answer cites only what is shown.

    >>> hits = [Hit(n, "d", "d", f"a{n}", f"t{n}", "x", 1.0) for n in range(4)]
    >>> shown, renumbered = shown_passages(hits, [Evidence(4, hits[3], "A long sentence.", 1)], 2)
    >>> [h.chunk_id for h in shown], renumbered[0].number
    ([0, 3], 2)
    """
    lead = sorted({e.number for e in lead_evidence(evidence)})
    cited = lead + [e.number for e in related_entries(evidence) if e.number not in lead]
    priority = cited + [n for n in range(1, len(hits) + 1) if n not in cited]
    keep = sorted(priority[: max(k, len(lead))])
    new_number = {old: new for new, old in enumerate(keep, start=1)}
    shown = [hits[n - 1] for n in keep]
    renumbered = [replace(e, number=new_number[e.number]) for e in evidence if e.number in keep]
    return shown, renumbered


def out_of_scope(question: str, modules: set[str], names: set[str]) -> list[str]:
    """What in ``question`` the Python 3.11 docs cannot answer about; [] when nothing.

    - a third-party package (:data:`THIRD_PARTY`; names that are also English
      words, like *requests* or *click*, only when written as code:
      ``requests.get``, ``import click``, "the requests library");
    - a dotted name the docs never document (:func:`undocumented`:
      ``itertools.batched``, ``Path.walk``): ``modules`` are the documented
      modules, ``names`` every name in the corpus, both lower case;
    - a CamelCase name the corpus never mentions (``DataFrame``, not ``NaN``);
    - a Python version after 3.11, or its syntax (``type Point = ...``,
      ``def first[T](...)``).

    >>> out_of_scope("How do I set a timeout on requests.get?", {"json"}, {"get"})
    ['requests']
    >>> out_of_scope("Is itertools.batched available?", {"itertools"}, {"itertools.chain"})
    ['itertools.batched']
    >>> out_of_scope("How do I handle HTTP requests with http.server?", {"http.server"}, set())
    []
    """
    found = []
    for word in re.findall(r"[A-Za-z][\w-]*", question):
        if word.lower() in THIRD_PARTY and word.lower() not in found:
            found.append(word.lower())
    for word in ENGLISH_NAMED_PACKAGES:
        if re.search(
            rf"\b{word}\.\w|\bimport {word}\b|\b{word} (?:library|package|module)\b",
            question,
            re.IGNORECASE,
        ) or re.search(rf"(?<=[a-z,] ){word.capitalize()}\b", question):  # a proper noun
            found.append(word)
    for dotted in re.findall(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", question):
        if undocumented(dotted, modules, names):
            found.append(dotted)
    for camel in re.findall(r"\b[A-Z][a-z]{2,}[A-Z]\w*\b", question):  # not NaN
        if camel.lower() not in names and camel.lower() not in THIRD_PARTY:
            found.append(camel)
    found += [f"Python 3.{minor}" for minor in _NEWER_VERSION.findall(question)]
    if _NEWER_SYNTAX.search(question):
        found.append("the type statement and type parameter syntax (Python 3.12)")
    return found


def undocumented(dotted: str, modules: set[str], names: set[str]) -> bool:
    """Is ``dotted`` an attribute of a documented module or class that the docs never name?

    After the longest documented module (or package) prefix, the rest must
    end a name under that module (``datetime.strptime`` is
    ``datetime.datetime.strptime``); a ``Class.attribute`` of a documented class
    must end some name. Anything else (``my_list.append``) is not judged.

    >>> names = {"datetime.datetime.strptime", "pathlib.path", "pathlib.path.glob"}
    >>> [undocumented(d, {"datetime", "pathlib", "concurrent.futures"}, names)
    ...  for d in ("datetime.strptime", "Path.glob", "Path.walk", "concurrent.interpreters")]
    [False, False, True, True]
    """
    name = dotted.lower()
    if name in names or name in modules:
        return False
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in modules or any(module.startswith(prefix + ".") for module in modules):
            rest = name[len(prefix) + 1 :]
            return not any(n.startswith(prefix + ".") and n.endswith("." + rest) for n in names)
    if dotted[0].isupper() and any(n.endswith("." + parts[0]) for n in names):
        return not any(n.endswith("." + name) for n in names)
    return False


# Popular packages from PyPI that the standard library's documentation does not document.
THIRD_PARTY = frozenset(
    """numpy pandas scipy matplotlib seaborn plotly bokeh sklearn scikit-learn tensorflow keras
    pytorch torch torchvision transformers langchain openai django flask fastapi starlette
    uvicorn gunicorn celery sqlalchemy alembic psycopg2 pymongo redis boto3 botocore aiohttp
    httpx urllib3 beautifulsoup bs4 lxml selenium playwright scrapy pytest tox nox
    pydantic marshmallow pipenv conda anaconda virtualenvwrapper pyinstaller
    twine mypy pyright ruff flake8 pylint isort yapf pyyaml
    tomli tomli-w orjson ujson simplejson jinja2 mako pillow pil opencv cv2 pygame kivy pyqt
    pyqt5 pyqt6 pyside6 wxpython tqdm loguru structlog numba dask polars pyarrow
    openpyxl xlrd xlsxwriter docx pypdf reportlab pendulum dateutil pytz jwt pyjwt
    cryptography paramiko ansible jupyter ipython streamlit gradio typer psutil""".split()
)
ENGLISH_NAMED_PACKAGES = (
    "requests",
    "click",
    "black",
    "poetry",
    "rich",
    "arrow",
    "attrs",
    "six",
    "hypothesis",
    "watchdog",
)
