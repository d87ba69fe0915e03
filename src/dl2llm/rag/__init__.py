"""Retrieval-augmented generation over a folder of documents (the capstone's core).

Lewis et al., 2020, "Retrieval-Augmented Generation for Knowledge-Intensive NLP
Tasks": instead of hoping a language model memorised the answer, find the
passages that hold it and let the model answer from them, citing them. The
parts, one module each:

- :mod:`~dl2llm.rag.ingest` -- files to clean, titled, deduplicated chunks;
- :mod:`~dl2llm.rag.index` -- MiniLM vectors in FAISS + SQLite metadata + BM25,
  built and edited atomically;
- :mod:`~dl2llm.rag.retrieve` -- dense, BM25 and hybrid (reciprocal rank fusion);
- :mod:`~dl2llm.rag.evidence` -- the sentences that answer, and what is out of scope;
- :mod:`~dl2llm.rag.generate` -- the cited answer, from the evidence or an LLM;
- :mod:`~dl2llm.rag.checks` -- citations, support and junk, for the LLM's output;
- :mod:`~dl2llm.rag.pipeline` -- the refusal thresholds and ``ask()``.

:func:`load_pipeline` wires them together for the command line and the service.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dl2llm import paths
from dl2llm.rag.edits import apply_journal
from dl2llm.rag.encoder import Encoder, Progress
from dl2llm.rag.generate import EvidenceGenerator, LLMGenerator
from dl2llm.rag.index import Index, build_index, chunker_version, read_corpus, same_encoder
from dl2llm.rag.ingest import Document
from dl2llm.rag.pipeline import (
    RAGPipeline,
    calibrate_threshold,
    faq_questions,
    load_thresholds,
)
from dl2llm.rag.remote import RemoteLLMGenerator
from dl2llm.rag.retrieve import Hit, Retriever
from dl2llm.rag.store import INDEX_FOLDER, Journal, exclusive, recover

CORPUS_SUFFIXES = (".rst.txt",)
# A small slice of the corpus (68 chunks) for quick modes and tests.
SAMPLE_DOCUMENTS = ("library/functools.rst", "faq/windows.rst", "tutorial/errors.rst")


def default_data_dir() -> Path:
    """Where the index lives unless told otherwise: ``<DL2LLM_HOME>/rag``."""
    return paths.home() / "rag"


def corpus_documents(docs: str | Path | None = None) -> tuple[list[Document], str]:
    """The documents of ``docs`` (any folder), or of the bundled Python docs by default."""
    if docs is None:
        from dl2llm.data import python_docs_dir

        return read_corpus(python_docs_dir(), CORPUS_SUFFIXES), str(python_docs_dir())
    return read_corpus(docs), str(docs)


def sample_documents(doc_ids: tuple[str, ...] = SAMPLE_DOCUMENTS) -> tuple[list[Document], str]:
    """A few documents of the bundled corpus (see :data:`SAMPLE_DOCUMENTS`)."""
    documents, source = corpus_documents()
    return [d for d in documents if d.doc_id in doc_ids], source


def calibrated(index: Index, encoder: Encoder) -> Index:
    """``index`` with its refusal threshold fitted and saved, when it has FAQ questions."""
    if faq_questions(index):
        calibrate_threshold(index, encoder)
    return index


def stale_bundled(index: Index) -> bool:
    """True for an index of the bundled corpus made by other chunking code."""
    from dl2llm.data import python_docs_dir

    bundled = index.manifest.get("source") == str(python_docs_dir())
    return bundled and index.manifest.get("chunker") != chunker_version()


def ensure_index(
    data_dir: str | Path,
    encoder: Encoder,
    docs: str | Path | None = None,
    rebuild: bool = False,
    build_missing: bool = True,
    progress: Progress = True,
) -> Index:
    """Load the index in ``data_dir``; build it from ``docs`` first if asked to or absent.

    With ``build_missing=False`` an absent index is an error (see :meth:`Index.load`).
    A freshly built index gets its refusal threshold calibrated (:func:`calibrated`).
    Every build re-applies the journal of uploads and deletions, and a loaded
    index gets the journaled edits it lacks (:mod:`dl2llm.rag.store`).
    An index of the bundled corpus made by older chunking code (see
    :func:`~dl2llm.rag.index.chunker_version`) is rebuilt, with a message,
    reusing the vectors of the chunks that did not change.
    """
    with exclusive(data_dir):  # one build, however many processes ask at once
        return _ensure_index(data_dir, encoder, docs, rebuild, build_missing, progress)


def _ensure_index(
    data_dir: str | Path,
    encoder: Encoder,
    docs: str | Path | None,
    rebuild: bool,
    build_missing: bool,
    progress: Progress,
) -> Index:
    folder = Path(data_dir) / INDEX_FOLDER
    recover(data_dir)
    if not rebuild and build_missing and folder.exists() and docs is None:
        index = Index.load(data_dir)
        if not stale_bundled(index):
            return apply_journal(data_dir, encoder)
        print(f"the index in {folder} was chunked by older code: rebuilding it", flush=True)
        documents, source = corpus_documents()
        reuse = index if same_encoder(index, encoder) else None
        documents = Journal(data_dir).apply(documents)
        index = build_index(documents, data_dir, encoder, source=source, reuse=reuse)
        return calibrated(index, encoder)
    if rebuild or (build_missing and not folder.exists()):
        documents, source = corpus_documents(docs)
        documents = Journal(data_dir).apply(documents)
        index = build_index(documents, data_dir, encoder, source=source, progress=progress)
        return calibrated(index, encoder)
    return apply_journal(data_dir, encoder)


GENERATORS = ("evidence", "llm", "previous")
DEFAULT_GENERATOR = "evidence"  # served when no selection has been made (see served_recipe)
# The committed adapter and the record of how it was made and chosen, written by
# capstone/fine_tuning_pipeline.py: adapter.safetensors + recipe.json.
SERVED_MODEL_DIR = paths.DATA_DIR / "capstone_adapter"
SERVED_GENERATORS = {"evidence": "evidence", "evidence_llm": "llm", "evidence_llm_tuned": "llm"}


def served_recipe(folder: Path = SERVED_MODEL_DIR) -> dict:
    """The committed selection (``recipe.json``), or ``{}`` when there is none."""
    path = folder / "recipe.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def default_generator(folder: Path = SERVED_MODEL_DIR) -> str:
    """The generator ``make run`` serves: the system that did best on the dev questions."""
    return SERVED_GENERATORS.get(served_recipe(folder).get("served", ""), DEFAULT_GENERATOR)


def add_generator_flag(parser: argparse.ArgumentParser) -> None:
    """``--generator``, as the capstone's scripts offer it (the served choice by default)."""
    parser.add_argument(
        "--generator",
        choices=GENERATORS,
        default=None,
        help="evidence: the docs' own API entry and sentences, no LLM; llm: SmolLM2 picks the "
        "entry and phrases it, checked; previous: SmolLM2 on 80-word passages (default: the "
        f"best on the dev questions, {default_generator()})",
    )


def default_adapter(folder: Path = SERVED_MODEL_DIR) -> Path | None:
    """The committed LoRA adapter when it beat the base model on the dev questions, else None."""
    path = folder / "adapter.safetensors"
    return path if served_recipe(folder).get("tuned_beats_base") and path.is_file() else None


def served_model(
    generator: str | None = None,
    adapter: Path | None = None,
    no_adapter: bool = False,
    folder: Path = SERVED_MODEL_DIR,
) -> tuple[str, Path | None]:
    """``(generator, adapter)`` to serve: what the user chose, else what dev chose.

    The committed adapter is trained for the ``llm`` generator, so only it gets
    the default adapter; ``no_adapter`` serves the base model.
    """
    generator = generator or default_generator(folder)
    if no_adapter:
        return generator, None
    if adapter is None and generator == "llm":
        adapter = default_adapter(folder)
    return generator, adapter


def load_pipeline(
    index: Index,
    encoder: Encoder,
    llm: str | Path | None = None,
    generator: str = DEFAULT_GENERATOR,
    max_new_tokens: int = 128,
    adapter: str | Path | None = None,
    llm_url: str | None = None,
) -> RAGPipeline:
    """A ready :class:`RAGPipeline` over ``index``.

    ``generator`` (see :mod:`dl2llm.rag.generate`): ``evidence`` answers with
    the evidence alone, no language model (the default, the best measured);
    ``llm`` lets SmolLM2 (or ``llm``) phrase the evidence, checked; ``previous``
    is the earlier design, the LLM answering from 80-word passages. ``adapter``
    is a LoRA adapter file (see :func:`dl2llm.finetune.lora.save_lora`) merged
    into the LLM. ``llm_url``: an OpenAI-compatible server that runs the LLM
    instead of this process (:mod:`dl2llm.rag.remote`; ``llm`` names its model).
    """
    if generator not in GENERATORS:
        raise ValueError(f"unknown generator '{generator}' (use one of {', '.join(GENERATORS)})")
    if generator == "evidence":
        answerer = EvidenceGenerator(max_new_tokens)
    else:
        style = "evidence" if generator == "llm" else "passages"
        if llm_url:
            llm_name = str(llm) if llm else None
            answerer = RemoteLLMGenerator(llm_url, llm_name, max_new_tokens, style=style)
        else:
            answerer = LLMGenerator.load(llm, max_new_tokens, adapter=adapter, style=style)
    min_confidence, min_evidence = load_thresholds(index)
    scope_check = generator != "previous"
    retriever = Retriever(index, encoder)
    return RAGPipeline(retriever, answerer, min_confidence, min_evidence, scope_check)


__all__ = [
    "DEFAULT_GENERATOR",
    "GENERATORS",
    "SERVED_MODEL_DIR",
    "default_adapter",
    "default_generator",
    "served_model",
    "served_recipe",
    "stale_bundled",
    "Encoder",
    "Hit",
    "Index",
    "RAGPipeline",
    "Retriever",
    "build_index",
    "corpus_documents",
    "default_data_dir",
    "ensure_index",
    "load_pipeline",
    "sample_documents",
]
