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


def _random_batches(n_batches=2, size=6, length=7):
    generator = torch.Generator().manual_seed(1)
    return [
        {
            "input_ids": torch.randint(100, (size, length), generator=generator),
            "attention_mask": torch.ones(size, length, dtype=torch.long),
            "labels": torch.randint(2, (size,), generator=generator),
        }
        for _ in range(n_batches)
    ]


def _zero_head(attention, head, head_dim=8):
    rows = slice(head * head_dim, (head + 1) * head_dim)
    with torch.no_grad():
        attention.self.value.weight[rows] = 0.0
        attention.self.value.bias[rows] = 0.0


def test_gradient_importance_of_a_silent_head_is_zero_and_others_are_not():
    model = tiny_bert_classifier()
    _zero_head(model.bert.encoder.layer[1].attention, 2)  # its output is all zeros
    importance = pruning.head_importance(model, _random_batches())
    assert importance.shape == (2, 4)
    assert importance[1, 2] == 0.0
    assert (importance[0] > 0).all() and (importance[1, [0, 1, 3]] > 0).all()
    assert torch.allclose(importance.norm(dim=1), torch.ones(2), atol=1e-6)  # per-layer norm


def test_gradient_importance_is_the_per_example_mean_of_absolute_gate_gradients():
    model = tiny_bert_classifier()
    batch = _random_batches(1, size=3)[0]
    raw = torch.zeros(2, 4)
    for b in range(3):  # one example at a time: |dL_b / d xi| through a plain gate
        gates = torch.ones(2, 1, 4, requires_grad=True)
        handles = pruning._gate_heads(model, gates)
        one = {k: v[b : b + 1] for k, v in batch.items()}
        out = model(input_ids=one["input_ids"], attention_mask=one["attention_mask"])
        loss = nn.functional.cross_entropy(out.logits, one["labels"])
        for handle in handles:
            handle.remove()
        raw += torch.autograd.grad(loss, gates)[0][:, 0].abs() / 3
    expected = raw / raw.norm(dim=1, keepdim=True)
    assert torch.allclose(pruning.head_importance(model, [batch]), expected, atol=1e-6)


def test_gating_a_head_to_zero_equals_removing_it():
    model = tiny_bert_classifier()
    ids = torch.randint(100, (2, 5))
    gates = torch.ones(2, 2, 4)
    gates[0, :, 3] = 0.0
    handles = pruning._gate_heads(model, gates)
    gated = model(input_ids=ids).logits
    for handle in handles:
        handle.remove()
    removed = pruning.prune_heads(model, torch.tensor([[1.0, 1, 1, 0], [1, 1, 1, 1]]), 1)
    assert removed == [[3], []]
    assert torch.allclose(model(input_ids=ids).logits, gated, atol=1e-6)


def test_heads_to_remove_ranks_globally_and_keeps_one_per_layer():
    scores = torch.tensor([[0.1, 0.2, 0.9], [0.5, 0.05, 0.6]])
    assert pruning.heads_to_remove(scores, 2) == [[0], [1]]
    assert pruning.heads_to_remove(scores, 3) == [[0, 1], [1]]
    assert pruning.heads_to_remove(scores, 4) == [[0, 1], [0, 1]]
    with pytest.raises(ValueError, match="heads"):
        pruning.heads_to_remove(scores, 5)


def test_head_norms_rank_a_shrunken_head_last():
    model = tiny_bert_classifier()
    _zero_head(model.bert.encoder.layer[0].attention, 1)
    norms = pruning.head_norms(model)
    assert norms.shape == (2, 4) and norms[0].argmin() == 1


def test_masks_survive_recovery_fine_tuning():
    from transformers import AutoTokenizer

    from dl2llm import classification as clf
    from dl2llm import models
    from dl2llm.data import LabelledTexts

    tokenizer = AutoTokenizer.from_pretrained(models.encoder_path())
    model = tiny_bert_classifier(vocab_size=tokenizer.vocab_size)
    pruning.prune_unstructured(model, 0.5)
    zeros = {name: linear.weight == 0 for name, linear in pruning.encoder_linears(model)}
    before = {name: linear.weight.clone() for name, linear in pruning.encoder_linears(model)}
    data = LabelledTexts(["good film", "bad film", "great", "awful"] * 4, [1, 0, 1, 0] * 4)
    config = clf.FineTuneConfig(epochs=2, batch_size=4, learning_rate=1e-2, max_length=8)
    result = pruning.recover(model, tokenizer, data, data, config)
    assert [row["epoch"] for row in result.history] == [1, 2]
    pruning.make_permanent(model)
    for name, linear in pruning.encoder_linears(model):
        assert (linear.weight[zeros[name]] == 0).all()  # pruned weights stayed zero
        assert not torch.equal(linear.weight, before[name])  # the others trained
