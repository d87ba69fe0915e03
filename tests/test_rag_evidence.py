"""Evidence answers on the real sample index, out-of-scope refusals, and the answer checks."""

from __future__ import annotations

import re

import pytest
from test_serve_fixtures import TorchThreads, encoder, sample_index_dir

from dl2llm.rag import load_pipeline
from dl2llm.rag.checks import citations, junk_kind, strip_markers, supported
from dl2llm.rag.evidence import out_of_scope
from dl2llm.rag.generate import IDK
from dl2llm.rag.index import Index


@pytest.fixture(scope="module")
def pipeline():
    with TorchThreads():
        yield load_pipeline(Index.load(sample_index_dir()), encoder())


@pytest.mark.parametrize(
    ("question", "lead", "must_name"),
    [
        (
            "How do I limit the size of the cache used by lru_cache?",
            "`functools.lru_cache(",
            "maxsize",
        ),
        (
            "How can I fix some arguments of a function and get a new callable?",
            "`functools.partial(",
            None,
        ),
    ],
)
def test_evidence_answer_leads_with_the_signature_and_cites_its_passage(
    pipeline, question, lead, must_name
):
    answer = pipeline.ask(question)
    assert not answer.refused and answer.text.startswith(lead), answer.text
    if must_name:
        assert must_name in answer.text
    cited = citations(answer.text)
    assert cited and all(1 <= n <= len(answer.hits) for n in cited)
    first = answer.hits[cited[0] - 1]
    assert first.doc_id == "library/functools.rst"
    lead_sentence = strip_markers(answer.text.split("\n\n")[0]).split(": ", 1)[1]
    assert supported(lead_sentence, first.text)


def test_question_about_a_third_party_library_names_what_is_not_covered(pipeline):
    answer = pipeline.ask("How do I set a timeout on a requests.get call?")
    assert answer.refused
    assert answer.text == "I don't know: the Python 3.11 documentation does not cover requests."


def test_off_topic_question_is_refused(pipeline):
    answer = pipeline.ask("Who painted the Mona Lisa?")
    assert answer.refused and answer.text == IDK


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("In pandas how do I drop rows with NaN?", ["pandas"]),
        ("How do I use itertools.batched to chunk a list?", ["itertools.batched"]),
        ("What does the type statement do in Python 3.12?", ["Python 3.12"]),
        ("How do I read a TOML configuration file?", []),
        ("How do I handle HTTP requests with http.server?", []),
        ("What does functools.lru_cache do?", []),
    ],
)
def test_out_of_scope_finds_what_the_corpus_does_not_document(question, expected):
    modules = {"functools", "itertools", "http.server", "tomllib"}
    names = {"functools.lru_cache", "itertools.chain", "tomllib.load"}
    assert out_of_scope(question, modules, names) == expected


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("[1]\n[2]\n[3]\n...[xi]\n[li]\n[lj]", "marker_soup"),
        ("   ", "empty"),
        ("The answer to the question in one or two sentences using only the passages", "echo"),
        ("use the cache use the cache use the cache use the cache use the cache", "repetition"),
        ("`pairwise(iterable)`: Return successive overlapping pairs. 【1】", None),
        ("Read `sys.argv[0]` and `lst[5]`. 【2】", None),
    ],
)
def test_junk_kinds(answer, kind):
    assert junk_kind(answer) == kind


def test_citation_markers_never_collide_with_code():
    text = "Use `sys.argv[0]` and d['k'][3] 【2】, see also [1]."
    assert citations(text) == [2, 1]
    assert strip_markers(text) == "Use `sys.argv[0]` and d['k'][3], see also."
    assert re.search(r"argv\[0\]", strip_markers(text))
