"""Index and retrieval: FAISS and BM25 against their references, atomic edits, RRF."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_serve_fixtures import copy_index, encoder, sample_index_dir

from dl2llm.rag import build_index, ensure_index, sample_documents, stale_bundled
from dl2llm.rag.bm25 import SparseIndex, tokenize
from dl2llm.rag.edits import add_documents, delete_documents
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.index import (
    INDEX_FOLDER,
    STAGING_PREFIX,
    VECTORS,
    Index,
    IndexLoadError,
    chunker_version,
)
from dl2llm.rag.ingest import Document
from dl2llm.rag.pipeline import (
    CALIBRATION,
    DEFAULT_MIN_CONFIDENCE,
    best_threshold,
    faq_questions,
    load_thresholds,
)
from dl2llm.rag.retrieve import Retriever, reciprocal_rank_fusion


@pytest.fixture(scope="module")
def index() -> Index:
    return Index.load(sample_index_dir())


@pytest.fixture(scope="module")
def retriever(index) -> Retriever:
    return Retriever(index, encoder())


def test_encoder_matches_mean_pooling_reference():
    """sentence-transformers' vectors = masked mean of BertModel states, L2-normalised (1e-5)."""
    from dl2llm.models import load_encoder

    texts = ["How do I cache a function?", "Reading files in Python"]
    model, tokenizer = load_encoder()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state  # (B, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
    pooled = (states * mask).sum(1) / mask.sum(1)  # (B, 384)
    expected = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    np.testing.assert_allclose(encoder().encode(texts), expected, atol=1e-5)


def test_onnx_query_encoder_equals_sentence_transformers():
    """The service embeds questions with ONNX Runtime: the same vectors (1e-5), long ones cut."""
    fast = Encoder(onnx=True)
    for text in ["What does lru_cache do?", "x", "a very long question " * 100]:
        np.testing.assert_allclose(fast.encode_query(text), fast.encode([text]), atol=1e-5)


def test_threads_encoding_at_once_get_their_own_vectors():
    """The service encodes questions (whole) and candidate sentences (cut) from many threads at
    once; the shared tokenizer's settings must not leak between them (a lock does it)."""
    fast = Encoder(onnx=True)
    texts = [f"What does functools.lru_cache do with {n} arguments? " * (1 + n) for n in range(24)]
    expected = {text: fast.encode_query(text) for text in texts}
    failures: list[str] = []

    def ask(worker: int) -> None:
        for step in range(30):
            text = texts[(worker * 5 + step) % len(texts)]
            try:
                if step % 2:
                    fast.encode_short([text, text])
                else:
                    np.testing.assert_allclose(fast.encode_query(text), expected[text], atol=1e-5)
            except Exception as err:  # a ragged batch raises; a wrong vector fails the check
                failures.append(repr(err))

    workers = [threading.Thread(target=ask, args=(n,)) for n in range(12)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []


def test_only_a_bundled_index_made_by_other_chunking_code_is_stale(tmp_path):
    folder = copy_index(tmp_path / "data")
    index = Index.load(folder)
    assert index.manifest["chunker"] == chunker_version() and not stale_bundled(index)
    index.manifest["chunker"] = "older"
    assert stale_bundled(index)
    index.manifest["source"] = str(tmp_path / "my-docs")
    assert not stale_bundled(index)


def test_a_new_index_gets_its_refusal_threshold_calibrated(tmp_path):
    from dl2llm.data import python_docs_dir

    docs = tmp_path / "docs"
    for name in ("faq/windows.rst.txt", "library/functools.rst.txt"):
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(python_docs_dir() / name, docs / name)
    index = ensure_index(tmp_path / "data", encoder(), docs, progress=False)
    saved = json.loads((index.folder / CALIBRATION).read_text())
    assert saved["answerable_questions"] == len(faq_questions(index)) > 5
    assert load_thresholds(index)[0] == saved["threshold"] != DEFAULT_MIN_CONFIDENCE


class CountingEncoder(Encoder):
    """The real encoder, counting the texts it encodes."""

    encoded = 0

    def encode(self, texts, progress=False):
        self.encoded += len(texts)
        return super().encode(texts, progress)


def test_rebuild_reuses_the_vectors_of_unchanged_chunks(tmp_path):
    old = Index.load(sample_index_dir())
    documents, source = sample_documents()
    first = documents[0]
    documents[0] = Document(first.doc_id, first.text + "\n\nA new paragraph.", first.kind)
    counting = CountingEncoder()
    new = build_index(documents, tmp_path, counting, source=source, progress=False, reuse=old)
    assert 0 < counting.encoded < len(new) // 4  # only the changed chunks
    fresh = build_index(documents, tmp_path / "fresh", encoder(), source=source, progress=False)
    ids = sorted(new.chunks)
    assert ids == sorted(fresh.chunks)
    np.testing.assert_allclose(
        new.vectors.reconstruct_batch(ids), fresh.vectors.reconstruct_batch(ids), atol=1e-5
    )


def test_dense_search_equals_brute_force_cosine(index):
    vectors = index.vectors.index.reconstruct_n(0, index.vectors.ntotal)  # (N, 384)
    ids = [int(index.vectors.id_map.at(i)) for i in range(index.vectors.ntotal)]
    query = encoder().encode(["What does lru_cache do?"])  # (1, 384)
    scores = vectors @ query[0]
    order = np.argsort(-scores)[:10]
    found = index.search_dense(query, 10)[0]
    assert [i for i, _ in found] == [ids[j] for j in order]
    np.testing.assert_allclose([s for _, s in found], scores[order], atol=1e-5)


def lucene_bm25(documents: list[list[str]], query: list[str], k1=1.5, b=0.75) -> np.ndarray:
    """BM25 of every document from the formula, as Lucene 8+ writes it (no ``k1 + 1`` factor)."""
    lengths = np.array([len(d) for d in documents], dtype=np.float64)
    scores = np.zeros(len(documents))
    for term in query:
        tf = np.array([d.count(term) for d in documents], dtype=np.float64)
        df = np.count_nonzero(tf)
        idf = np.log(1 + (len(documents) - df + 0.5) / (df + 0.5))
        scores += idf * tf / (tf + k1 * (1 - b + b * lengths / lengths.mean()))
    return scores


@pytest.mark.parametrize("query", ["lru_cache maxsize", "Windows executable script", "zzz nomatch"])
def test_bm25_equals_the_formula(index, query):
    chunks = list(index.chunks.values())
    texts = [f"{c.title}\n{c.text}" for c in chunks]
    sparse = SparseIndex([c.chunk_id for c in chunks], texts)
    full = lucene_bm25([tokenize(t) or ["\0"] for t in texts], tokenize(query))
    expected = [(chunks[i].chunk_id, full[i]) for i in np.argsort(-full, kind="stable") if full[i]]
    found = sparse.search(query, len(chunks))
    assert [i for i, _ in found] == [i for i, _ in expected]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], rtol=1e-5)
    assert sparse.search(query, 3) == found[:3]


def test_reciprocal_rank_fusion_by_hand():
    fused = dict(reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60))
    assert fused == pytest.approx({1: 1 / 61 + 1 / 62, 2: 1 / 62, 3: 1 / 63 + 1 / 61})
    assert [i for i, _ in reciprocal_rank_fusion([[1, 2, 3], [3, 1]])] == [1, 3, 2]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_finds_lru_cache(retriever, mode):
    hits = retriever.retrieve("What does functools.lru_cache do?", k=3, mode=mode)
    assert len(hits) == 3
    assert any(h.anchor == "functools.lru_cache" for h in hits)
    assert all(h.path == "library/functools.rst" for h in hits[:1])
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_bad_retrieval_arguments(retriever):
    with pytest.raises(ValueError, match="unknown retrieval mode 'fuzzy'"):
        retriever.retrieve("x", 3, "fuzzy")
    with pytest.raises(ValueError, match="k must be at least 1"):
        retriever.retrieve("x", 0, "dense")


def test_confidence_separates_on_and_off_topic(retriever):
    on = retriever.search("How do I make an executable from a Python script on Windows?")
    off = retriever.search("What is the recipe for a margarita?")
    assert on.confidence > 0.5 > 0.25 > off.confidence


def test_best_threshold_by_hand():
    threshold, accuracy = best_threshold([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.65])
    assert threshold == pytest.approx(0.675)  # (0.65 + 0.7) / 2
    assert accuracy == pytest.approx((3 / 4 + 1) / 2)


def test_add_replace_and_delete_documents(tmp_path):
    data_dir = copy_index(tmp_path)
    before = Index.load(data_dir)
    note = Document(
        "notes/zebra.md", "# Zebra crossing\n\nThe quokka password is 7391.\n", "markdown"
    )
    after_add = add_documents(data_dir, [note], encoder())
    assert after_add.documents == sorted([*before.documents, "notes/zebra.md"])
    assert len(after_add) == len(before) + 1
    hits = Retriever(after_add, encoder()).retrieve("quokka password", k=1, mode="bm25")
    assert (hits[0].path, hits[0].anchor) == ("notes/zebra.md", "zebra-crossing")
    replaced = Document("notes/zebra.md", "# Zebra\n\nNew text.\n\n## Two\n\nMore.\n", "markdown")
    after_replace = add_documents(data_dir, [replaced], encoder())
    assert len(after_replace) == len(before) + 2
    after_delete = delete_documents(data_dir, ["notes/zebra.md", "library/functools.rst"])
    assert after_delete.documents == ["faq/windows.rst", "tutorial/errors.rst"]
    assert after_delete.vectors.ntotal == len(after_delete) < len(before)
    assert not list(Path(data_dir).glob(f"{STAGING_PREFIX}*"))


def test_missing_and_corrupt_index_errors_say_how_to_fix(tmp_path):
    with pytest.raises(IndexLoadError, match="no index in .*rebuild"):
        Index.load(tmp_path / "empty")
    data_dir = copy_index(tmp_path / "copy")
    (data_dir / INDEX_FOLDER / VECTORS).write_bytes(b"not a faiss index")
    with pytest.raises(IndexLoadError, match="unreadable .*rebuild"):
        Index.load(data_dir)


BUILD_SCRIPT = """
import sys
from dl2llm.rag import build_index, corpus_documents
from dl2llm.rag.encoder import Encoder
documents, source = corpus_documents()
build_index(documents[:120], sys.argv[1], Encoder(), source=source, progress=False)
"""


@pytest.mark.slow
def test_killed_build_leaves_the_previous_index_whole(tmp_path):
    data_dir = copy_index(tmp_path)
    before = json.loads((data_dir / INDEX_FOLDER / "manifest.json").read_text())
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    build = subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(data_dir)], env=env)
    deadline = time.monotonic() + 240
    while not list(data_dir.glob(f"{STAGING_PREFIX}*/chunks.sqlite")):
        assert build.poll() is None, "the build ended before it could be killed"
        assert time.monotonic() < deadline, "the build never started writing"
        time.sleep(0.1)
    time.sleep(1.0)  # well inside embedding 120 documents
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    survivor = Index.load(data_dir)
    assert survivor.manifest == before
    assert len(survivor) == before["chunks"]
    assert Retriever(survivor, encoder()).retrieve("lru_cache", 1, "bm25")
