"""int8 quantization: smaller files, outputs close to fp32, and the measuring helpers.

Tolerances (tiny random BERT classifier, logits of order 0.1-1): PyTorch and ONNX Runtime
int8 logits within 0.05 of fp32 (max abs difference); ONNX fp32 within 1e-4 of PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import tiny_bert_classifier
from torch import nn

from dl2llm import models
from dl2llm.efficiency import quantization as q
from dl2llm.efficiency.onnx_export import (
    feed_forward_matmuls,
    file_mb,
    max_abs_diff,
    quantize_int8,
)

TEXTS = [
    "a gorgeous, moving film",
    "dull and far too long",
    "the cast is fine but the script is a mess of clichés",
    "one of the year's best",
    "I wanted to like it",
]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(models.encoder_path())


@pytest.fixture(scope="module")
def classifier(tokenizer):
    return tiny_bert_classifier(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_attention_heads=2,
        intermediate_size=256,
    )


def test_torch_dynamic_int8_is_smaller_and_close(classifier, tokenizer, tmp_path):
    int8 = q.quantize_dynamic_torch(classifier)
    assert isinstance(classifier.bert.encoder.layer[0].output.dense, nn.Linear)  # a copy
    weight = int8.bert.encoder.layer[0].output.dense.weight()
    assert (
        weight.qscheme() == torch.per_channel_affine and weight.q_per_channel_scales().numel() == 64
    )
    feed = q.tokenize(tokenizer, TEXTS)
    expected = q.torch_logits(classifier)(feed)
    got = q.torch_logits(int8)(feed)
    assert max_abs_diff(got, expected) < 0.05
    fp32_mb = q.saved_size_mb(classifier, tmp_path / "fp32.pt")
    int8_mb = q.saved_size_mb(int8, tmp_path / "int8.pt")
    linear_mb = sum(m.weight.numel() * 3 for m in classifier.modules() if isinstance(m, nn.Linear))
    assert fp32_mb - int8_mb > 0.8 * linear_mb / 2**20  # ~3 of every 4 bytes of weights saved


def test_onnx_fp32_dynamic_and_static_int8(classifier, tokenizer, tmp_path):
    fp32 = q.export_classifier(classifier, tokenizer, tmp_path / "fp32.onnx")
    dynamic = quantize_int8(fp32, tmp_path / "dynamic.onnx")
    reader = q.SentenceCalibrationReader(tokenizer, TEXTS * 8, batch_size=8)
    static = q.quantize_static_onnx(fp32, tmp_path / "static.onnx", reader)
    feed = q.tokenize(tokenizer, TEXTS[::-1])  # another batch size and length than the export's
    expected = q.torch_logits(classifier)(feed)
    assert max_abs_diff(q.onnx_logits(fp32)(feed), expected) < 1e-4
    for path in (dynamic, static):
        assert file_mb(path) < file_mb(fp32)
        assert max_abs_diff(q.onnx_logits(path)(feed), expected) < 0.05


def test_static_int8_keeps_the_named_products_fp32(classifier, tokenizer, tmp_path):
    import onnx

    fp32 = q.export_classifier(classifier, tokenizer, tmp_path / "fp32.onnx")
    down = feed_forward_matmuls(fp32, 256, outputs_only=True)
    assert len(down) == 2  # one (4C, C) product per layer
    reader = q.SentenceCalibrationReader(tokenizer, TEXTS * 8, batch_size=8)
    static = q.quantize_static_onnx(fp32, tmp_path / "static.onnx", reader, keep_fp32=down)
    graph = onnx.load(str(static)).graph
    made_by = {output: node.op_type for node in graph.node for output in node.output}
    weight_source = {n.name: made_by.get(n.input[1]) for n in graph.node if n.op_type == "MatMul"}
    assert {weight_source[name] for name in down} == {None}  # an fp32 initializer, read as is
    others = [source for name, source in weight_source.items() if name not in down]
    # per layer: the Q, K, V, attention-output and up projections, and Q K^T and A V
    assert len(others) == 2 * 7 and set(others) == {"DequantizeLinear"}


def test_calibration_reader_yields_every_sentence_once(tokenizer):
    reader = q.SentenceCalibrationReader(tokenizer, TEXTS, batch_size=2)
    sizes = []
    while (feed := reader.get_next()) is not None:
        assert set(feed) == {"input_ids", "attention_mask"}
        assert feed["input_ids"].dtype == np.int64
        sizes.append(len(feed["input_ids"]))
    assert sizes == [2, 2, 1]


def test_measure_variant_counts_accuracy_exactly(tokenizer):
    def says_positive_when_short(feed):  # logits (B, 2)
        lengths = feed["attention_mask"].sum(1)
        return np.stack([lengths, np.full_like(lengths, 8)], axis=1).astype(np.float32)

    labels = [1, 0, 0, 1, 1]  # lengths with [CLS]/[SEP]: 7, 7, 16, 9, 7 -> predictions 1,1,0,0,1
    result = q.measure_variant(
        "rule", says_positive_when_short, 1.5, tokenizer, TEXTS, labels, repeats=2
    )
    assert result.accuracy == pytest.approx(3 / 5)
    assert result.size_mb == 1.5
    assert result.b1_p50_ms > 0 and result.b32_p50_ms > 0


def test_length_order_sorts_by_tokens(tokenizer):
    order = q.length_order(tokenizer, TEXTS)
    lengths = [len(tokenizer(TEXTS[i])["input_ids"]) for i in order]
    assert lengths == sorted(lengths)
    assert sorted(order.tolist()) == list(range(len(TEXTS)))


def test_per_channel_int8_beats_per_tensor_on_a_matrix_with_one_large_row():
    weight = torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
    weight[5] *= 100.0
    per_tensor = (q.int8_roundtrip(weight, per_channel=False) - weight).abs()
    per_channel = (q.int8_roundtrip(weight, per_channel=True) - weight).abs()
    others = [row for row in range(16) if row != 5]
    assert per_channel[others].mean() < per_tensor[others].mean() / 20
    assert torch.equal(per_channel[5], per_tensor[5])  # the large row sets both scales
    assert per_channel.mean() <= per_tensor.mean()
    assert (per_channel <= weight.abs().amax(1, keepdim=True) / 254 + 1e-6).all()  # half a step


def test_torch_dynamic_int8_per_tensor_has_one_scale(classifier):
    int8 = q.quantize_dynamic_torch(classifier, per_channel=False)
    weight = int8.bert.encoder.layer[0].output.dense.weight()
    assert weight.qscheme() == torch.per_tensor_affine
