"""ONNX export and ONNX Runtime: the exported graph must compute what PyTorch computes.

Tolerances: fp32 ONNX Runtime vs PyTorch within 1e-4 (max abs difference; fusions reorder
float sums, nothing more); our mean pooling vs sentence-transformers within 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import tiny_bert, tiny_gpt, tiny_gpt_config

from dl2llm.efficiency.latency import Latency, latency_of, torch_threads
from dl2llm.efficiency.onnx_export import (
    NextTokenLogits,
    SentenceEncoder,
    cosine_agreement,
    export_onnx,
    feed_forward_matmuls,
    file_mb,
    max_abs_diff,
    ort_session,
    quantize_int8,
    run_session,
)

VOCAB = 1000


def random_batch(batch: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(VOCAB, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, length // 2 :] = 0  # the first row is padded: pooling must ignore it
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    encoder = SentenceEncoder(tiny_bert(VOCAB, seed=0, layers=2, hidden=64))
    fp32 = export_onnx(
        encoder, random_batch(2, 7, seed=0), folder / "tiny.onnx", "sentence_embedding"
    )
    int8 = quantize_int8(fp32, folder / "tiny_int8.onnx")
    return encoder, fp32, int8


@pytest.mark.parametrize(("batch", "length"), [(1, 5), (3, 23)])
def test_ort_fp32_matches_pytorch_at_new_shapes(exported, batch, length):
    encoder, fp32, _ = exported
    inputs = random_batch(batch, length, seed=batch)
    with torch.no_grad():
        expected = encoder(**inputs).numpy()
    got = run_session(ort_session(fp32), inputs)
    assert got.shape == (batch, 64)
    assert max_abs_diff(got, expected) < 1e-4


def test_int8_file_is_smaller_and_close(exported):
    encoder, fp32, int8 = exported
    assert file_mb(int8) < 0.6 * file_mb(fp32)
    inputs = random_batch(4, 11, seed=7)
    agreement = cosine_agreement(
        run_session(ort_session(int8), inputs), run_session(ort_session(fp32), inputs)
    )
    assert agreement.min() > 0.95


def test_feed_forward_matmuls_stay_fp32(exported, tmp_path):
    import onnx

    encoder, fp32, int8 = exported
    keep = feed_forward_matmuls(fp32, encoder.bert.config.intermediate_size)
    assert len(keep) == 2 * 2  # two layers, an up and a down projection each
    down = feed_forward_matmuls(fp32, encoder.bert.config.intermediate_size, outputs_only=True)
    assert len(down) == 2 and set(down) < set(keep)
    partial = quantize_int8(fp32, tmp_path / "partial.onnx", keep_fp32=keep)

    def ops(path):
        return [node.op_type for node in onnx.load(str(path)).graph.node]

    assert ops(int8).count("MatMulInteger") == 2 * 6  # Q, K, V, output, up, down per layer
    assert ops(partial).count("MatMulInteger") == 2 * 4
    inputs = random_batch(4, 11, seed=7)
    agreement = cosine_agreement(
        run_session(ort_session(partial), inputs), run_session(ort_session(fp32), inputs)
    )
    assert agreement.min() > 0.95


def test_gpt_logits_export_handles_new_lengths(tmp_path):
    model = tiny_gpt(tiny_gpt_config(vocab_size=VOCAB, n_embd=32), training=True)
    example = {"input_ids": torch.randint(VOCAB, (2, 6))}
    wrapped = NextTokenLogits(model)
    path = export_onnx(wrapped, example, tmp_path / "gpt.onnx", "next_token_logits")
    session = ort_session(path)
    for batch, length in [(1, 3), (4, 17)]:
        ids = torch.randint(VOCAB, (batch, length))
        with torch.no_grad():
            expected = model(ids)[:, -1].numpy()
        got = run_session(session, {"input_ids": ids})
        assert got.shape == (batch, VOCAB)
        assert max_abs_diff(got, expected) < 1e-4


def test_sentence_encoder_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from dl2llm.models import encoder_path, load_encoder

    texts = ["The cat sat on the mat.", "ONNX Runtime runs exported graphs quickly on CPUs."]
    bert, tokenizer = load_encoder()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = SentenceEncoder(bert)(batch["input_ids"], batch["attention_mask"]).numpy()
    reference = SentenceTransformer(encoder_path(), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    assert max_abs_diff(ours, reference) < 1e-5


def test_cosine_agreement_by_hand():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0]])
    np.testing.assert_allclose(cosine_agreement(a, b), [1.0, -1.0])


def test_latency_percentiles_and_throughput():
    latency = latency_of([0.001 * i for i in range(1, 101)], batch_size=32)  # 1..100 ms
    assert latency.p50_ms == pytest.approx(50.5)
    assert latency.p95_ms == pytest.approx(95.05)
    assert Latency(50.0, 60.0, 32).throughput == pytest.approx(640.0)


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
