"""Ingestion: markup to clean text, section-aware chunks with paths and anchors, dedup."""

from __future__ import annotations

from pathlib import Path

from dl2llm.rag import CORPUS_SUFFIXES
from dl2llm.rag.ingest import (
    MIN_WORDS,
    Chunk,
    Document,
    chunk_document,
    clean_inline,
    deduplicate,
    discover,
    document_id,
    pack,
    read_document,
    split_sections,
)

RST = """\
:mod:`shelf` --- Keep things
============================

.. module:: shelf
   :synopsis: Keep things.

.. index:: single: shelf

The :mod:`shelf` module keeps :class:`~shelf.Box` objects, see
`the guide <https://example.org>`_ and ``shelf.put()``.

.. _shelf-usage:

Using a shelf
-------------

Call :func:`put` to store an item::

    put(x)

.. function:: put(item, *, key=None)

   Store *item* under **key**.

   .. versionadded:: 3.9
"""


def test_rst_sections_titles_and_anchors():
    sections = split_sections(Document("library/shelf.rst", RST, "rst"))
    assert [(s.title, s.anchor) for s in sections] == [
        ("shelf — Keep things", "shelf-keep-things"),
        ("Using a shelf", "shelf-usage"),
        ("put(item, *, key=None)", "shelf.put"),
    ]


def test_rst_chunks_are_clean_text_with_titles():
    chunks = chunk_document(Document("library/shelf.rst", RST, "rst"))
    assert [c.title for c in chunks] == [
        "shelf — Keep things",
        "shelf — Keep things > Using a shelf",
        "shelf — Keep things > put(item, *, key=None)",
    ]
    assert chunks[0].text == ("The shelf module keeps Box objects, see the guide and shelf.put().")
    assert chunks[1].text == "Call put to store an item: put(x)"
    assert chunks[2].text == "Store item under key. New in version 3.9"
    assert {c.path for c in chunks} == {"library/shelf.rst"}


def test_inline_markup():
    assert clean_inline(":func:`len` and :meth:`str.join <str.join>`") == "len and str.join"
    assert clean_inline("`Python <https://python.org>`_ is **big**") == "Python is big"
    assert clean_inline("[docs](https://x.org) and `code`", "markdown") == "docs and code"


def test_markdown_and_plain_text_sections():
    md = Document("notes/deploy.md", "# Deploy\n\nRun it.\n\n## Ports\n\nUse 8000.\n", "markdown")
    assert [(c.title, c.anchor, c.text) for c in chunk_document(md)] == [
        ("Deploy", "deploy", "Run it."),
        ("Deploy > Ports", "ports", "Use 8000."),
    ]
    text = Document("notes/todo.txt", "buy milk\n\ncall Bob\n", "text")
    assert [(c.title, c.text) for c in chunk_document(text)] == [("todo", "buy milk call Bob")]


def test_pack_respects_the_word_limit_and_merges_a_short_tail():
    blocks = [" ".join(["w"] * 30)] * 3 + ["tail " * (MIN_WORDS - 1)]
    sizes = [len(p.split()) for p in pack(blocks, max_words=64)]
    assert sizes == [60, 30 + MIN_WORDS - 1]
    assert [len(p.split()) for p in pack(["x " * 130], max_words=64)] == [64, 66]


def test_deduplicate_ignores_case_and_whitespace():
    a = Chunk("a.rst", "", "A", "Same  text here.")
    b = Chunk("b.rst", "", "B", "same text\nhere.")
    c = Chunk("c.rst", "", "C", "Other text.")
    assert list(deduplicate([a, b, c])) == [a, c]


def test_discover_skips_hidden_and_unsupported(tmp_path: Path):
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "intro.rst.txt").write_text("Intro\n=====\n\nHello.\n")
    (tmp_path / "notes.md").write_text("# Notes\n")
    (tmp_path / ".hidden.md").write_text("# Secret\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    found = [document_id(p, tmp_path) for p in discover(tmp_path)]
    assert found == ["guide/intro.rst", "notes.md"]


def test_undecodable_bytes_do_not_stop_ingestion(tmp_path: Path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 au lait\n")
    document = read_document(tmp_path / "bad.txt", tmp_path)
    assert document.text == "caf\ufffd au lait\n"


def test_bundled_corpus_chunks_keep_path_and_api_anchor():
    from dl2llm.data import python_docs_dir

    root = python_docs_dir()
    assert len(discover(root, CORPUS_SUFFIXES)) == 497
    chunks = chunk_document(read_document(root / "library" / "functools.rst.txt", root))
    lru = [c for c in chunks if c.anchor == "functools.lru_cache"]
    assert lru and lru[0].path == "library/functools.rst"
    assert lru[0].title.endswith("> lru_cache(user_function) / lru_cache(maxsize=128, typed=False)")
    assert "memoizing callable" in lru[0].text


def test_nested_api_entries_are_sections_of_their_own():
    body = (
        ".. module:: shelf\n\n"
        ".. class:: Shelf(size)\n\n   Holds things.\n\n"
        "   .. method:: put(item, *, key=None)\n"
        "               put(items)\n\n      Put things away.\n\n"
        "   .. attribute:: size\n\n      How many fit.\n\n"
        ".. function:: empty()\n\n   Nothing.\n"
    )
    sections = split_sections(Document("library/shelf.rst", body, "rst"))[1:]  # after the module
    assert [(s.title, s.anchor) for s in sections] == [
        ("Shelf(size)", "shelf.Shelf"),
        ("Shelf.put(item, *, key=None) / Shelf.put(items)", "shelf.Shelf.put"),
        ("Shelf.size", "shelf.Shelf.size"),
        ("empty()", "shelf.empty"),
    ]
    assert "Put things away." in sections[1].body and "put(items)" not in sections[1].body


def test_roles_spanning_lines_are_cleaned():
    body = "Pick :menuselection:`Start -->\n   Programs` then run.\n"
    chunks = chunk_document(Document("faq/w.rst", body, "rst"))
    assert [c.text for c in chunks] == ["Pick Start --> Programs then run."]
