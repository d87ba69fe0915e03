"""Magnitude pruning: our masks equal torch's; removing zero units changes nothing.

Tolerances: a layer's outputs before and after removing units whose weights were zero agree
within 1e-6 (max abs difference; the sums run over fewer terms, nothing else changes).
"""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_bert_classifier
from torch import nn
from torch.nn.utils import prune

from dl2llm.efficiency import pruning
from dl2llm.finetune import count_parameters


@pytest.mark.parametrize("amount", [0.0, 0.1, 0.5, 0.77, 0.9, 1.0])
def test_our_mask_equals_torch_l1_unstructured(amount):
    linear = nn.Linear(48, 40)
    torch_linear = nn.Linear(48, 40)
    torch_linear.weight.data = linear.weight.data.clone()
    prune.l1_unstructured(torch_linear, "weight", amount=amount)
    ours = pruning.l1_unstructured_mask(linear.weight, amount)
    assert torch.equal(ours, torch_linear.weight_mask)
    assert int((ours == 0).sum()) == round(amount * linear.weight.numel())


def test_mask_refuses_amount_out_of_range():
    with pytest.raises(ValueError, match="amount"):
        pruning.l1_unstructured_mask(torch.ones(3, 3), 1.5)


def test_unstructured_pruning_holds_through_training_and_becomes_permanent():
    model = tiny_bert_classifier()
    pruning.prune_unstructured(model, 0.6)
    assert pruning.sparsity(model) == pytest.approx(0.6, abs=0.01)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    ids = torch.randint(100, (4, 7))
    model.train()
    model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss.backward()
    optimizer.step()
    assert pruning.sparsity(model) == pytest.approx(0.6, abs=0.01)  # masked weights stay zero
    pruning.make_permanent(model)
    _, linear = pruning.encoder_linears(model)[0]
    assert not prune.is_pruned(linear)
    assert isinstance(linear.weight, nn.Parameter)
    assert pruning.sparsity(model) == pytest.approx(0.6, abs=0.01)


def test_removing_zero_neurons_keeps_layer_outputs():
    model = tiny_bert_classifier()
    layer = model.bert.encoder.layer[0]
    dead = torch.tensor([3, 17, 40, 41, 63])
    with torch.no_grad():
        layer.intermediate.dense.weight[dead] = 0.0
        layer.intermediate.dense.bias[dead] = 0.0
        layer.output.dense.weight[:, dead] = 0.0
    hidden = torch.randn(2, 5, 32)
    before = layer(hidden)  # (B, T, C)
    kept = pruning.remove_neurons(layer, len(dead))
    after = layer(hidden)
    assert set(kept.tolist()) == set(range(64)) - set(dead.tolist())
    assert layer.intermediate.dense.weight.shape == (64 - len(dead), 32)
    assert layer.output.dense.weight.shape == (32, 64 - len(dead))
    assert torch.allclose(before, after, atol=1e-6)


def test_removing_zero_heads_keeps_attention_outputs():
    model = tiny_bert_classifier()
    attention = model.bert.encoder.layer[1].attention
    head_dim = 8
    dead_heads = [1, 3]
    with torch.no_grad():
        for h in dead_heads:
            rows = slice(h * head_dim, (h + 1) * head_dim)
            for proj in (attention.self.query, attention.self.key, attention.self.value):
                proj.weight[rows] = 0.0
                proj.bias[rows] = 0.0
            attention.output.dense.weight[:, rows] = 0.0
    hidden = torch.randn(3, 6, 32)
    before = attention(hidden)[0]
    kept = pruning.remove_heads(attention, 2)
    after = attention(hidden)[0]
    assert kept.tolist() == [0, 2]
    assert attention.self.query.weight.shape == (16, 32)
    assert attention.output.dense.weight.shape == (32, 16)
    assert torch.allclose(before, after, atol=1e-6)


def test_structured_pruning_shrinks_the_model_and_it_still_runs():
    model = tiny_bert_classifier()
    n_before = count_parameters(model).total
    pruning.prune_structured(model, 0.5)
    for layer in model.bert.encoder.layer:
        assert layer.attention.self.num_attention_heads == 2
        assert layer.intermediate.dense.out_features == 32
    saved_per_layer = (3 * (16 * 32 + 16) + 16 * 32) + (32 * 32 + 32 + 32 * 32)
    assert n_before - count_parameters(model).total == 2 * saved_per_layer
    logits = model(input_ids=torch.randint(100, (2, 5))).logits
    assert logits.shape == (2, 2)
    with pytest.raises(ValueError, match="fraction"):
        pruning.prune_structured(model, 1.0)
