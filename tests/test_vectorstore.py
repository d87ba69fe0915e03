"""The vector-store lab: recall@k, index save/load, metadata filtering, cached embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from dl2llm import vectorstore
from dl2llm.runtime import UsageError


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    return vectorstore.normalise(rng.normal(size=(600, 64)))


def test_recall_at_k_by_hand():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 9, 9], [5, 6, 7, 8]])  # 2 of 4, then 4 of 4
    assert vectorstore.recall_at_k(found, truth, k=4) == pytest.approx(0.75)
    assert vectorstore.recall_at_k(found[:, :2], truth[:, :2], k=2) == pytest.approx(0.5)


def test_flat_is_exact_and_hnsw_close(vectors):
    queries = vectors[:20] + 0.01
    truth = vectorstore.exact_neighbours(vectors, vectorstore.normalise(queries))
    scores = vectors @ vectorstore.normalise(queries).T  # (N, Q)
    np.testing.assert_array_equal(truth[:, 0], scores.argmax(axis=0))
    reports = vectorstore.compare_indexes(vectors, vectors[:20], kinds=("Flat", "HNSW"))
    assert [r.recall for r in reports if r.kind == "Flat"] == [1.0]
    assert max(r.recall for r in reports if r.kind == "HNSW") >= 0.95


def test_hnsw_graph_settings_change_the_index(vectors):
    queries = vectorstore.normalise(vectors[:20] + 0.01)
    reports = vectorstore.tune_hnsw(vectors, queries, [(8, 16), (32, 80)], progress=False)
    small = [r for r in reports if r.description == "HNSW8,efC16"]
    large = [r for r in reports if r.description == "HNSW32,efC80"]
    assert len(small) == len(large) == len(vectorstore.SEARCH_KNOBS["HNSW"][1])
    assert small[0].size_mb < large[0].size_mb  # fewer links, a smaller graph
    assert max(r.recall for r in large) >= 0.95
    index = vectorstore.build("HNSW", vectors, hnsw_m=8, ef_construction=16)
    assert index.hnsw.efConstruction == 16


def test_saved_and_loaded_index_returns_same_neighbours(vectors, tmp_path):
    index = vectorstore.build("IVF-PQ", vectors)
    vectorstore.set_knob(index, "nprobe", 4)
    before = index.search(vectors[:15], 10)
    path = vectorstore.save_index(index, tmp_path / "ivfpq.faiss")
    loaded = vectorstore.load_index(path)
    vectorstore.set_knob(loaded, "nprobe", 4)
    after = loaded.search(vectors[:15], 10)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_allclose(after[0], before[0])
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_load_missing_index_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no FAISS index"):
        vectorstore.load_index(tmp_path / "absent.faiss")


def test_metadata_filter_returns_only_matching_ids(vectors):
    metadata = [{"section": "tutorial" if i % 7 == 0 else "library"} for i in range(len(vectors))]
    allowed = vectorstore.ids_where(metadata, section="tutorial")
    assert allowed.tolist() == list(range(0, len(vectors), 7))
    for kind in ("Flat", "HNSW"):
        index = vectorstore.build(kind, vectors)
        _, ids = vectorstore.filtered_search(index, vectors[1:6], allowed, k=10)
        assert set(ids.ravel().tolist()) <= set(allowed.tolist())
    flat = vectorstore.build("Flat", vectors)
    _, ids = vectorstore.filtered_search(flat, vectors[1:6], allowed, k=10)
    scores = vectors[1:6] @ vectors[allowed].T  # (5, allowed): the exact filtered answer
    np.testing.assert_array_equal(ids, allowed[np.argsort(-scores, axis=1)[:, :10]])


def test_with_ids_keeps_our_ids(vectors):
    import faiss

    ids = np.arange(1000, 1000 + len(vectors))
    index = vectorstore.with_ids(faiss.IndexFlatIP(vectors.shape[1]), vectors, ids)
    _, found = index.search(vectors[:3], 1)
    assert found.ravel().tolist() == [1000, 1001, 1002]


def test_noisy_copies_stay_near_their_source(vectors):
    copies = vectorstore.noisy_copies(vectors, 1200, noise=0.05, seed=1)
    assert copies.shape == (1200, 64)
    np.testing.assert_allclose(np.linalg.norm(copies, axis=1), 1.0, atol=1e-5)
    cosine = (copies[:600] * vectors).sum(axis=1)
    assert cosine.mean() == pytest.approx(1 / np.sqrt(1 + 0.05**2 * 64), abs=0.02)


def test_embeddings_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("DL2LLM_HOME", str(tmp_path))
    calls = []

    def encode(texts):
        calls.append(len(texts))
        return np.ones((len(texts), 4), dtype=np.float32)

    first = vectorstore.embed_texts(["a", "b"], encode, cache_name="test-encoder")
    second = vectorstore.embed_texts(["a", "b"], encode, cache_name="test-encoder")
    vectorstore.embed_texts(["a", "c"], encode, cache_name="test-encoder")
    assert calls == [2, 2]  # the repeat came from the cache, a new text did not
    np.testing.assert_array_equal(first, second)
    assert len(list((tmp_path / "vectorstore").glob("*.npy"))) == 2


def test_unknown_kind_and_tiny_pq_are_usage_errors(vectors):
    with pytest.raises(UsageError, match="unknown index kind"):
        vectorstore.factory_string("LSH", 100, 64)
    with pytest.raises(UsageError, match="at least 16"):
        vectorstore.build("IVF-PQ", vectors[:10])
    assert vectorstore.factory_string("IVF-PQ", 100_000, 384) == "IVF316,PQ48x8np"
    assert vectorstore.factory_string("IVF-PQ", 600, 64) == "IVF24,PQ8x4np"
