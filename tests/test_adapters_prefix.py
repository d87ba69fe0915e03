"""Houlsby adapters and prefix-tuning from scratch: what each method guarantees."""

from __future__ import annotations

import pytest
import torch
from peft import PrefixTuningConfig, TaskType, get_peft_model
from tiny import tiny_bert_classifier, tiny_gpt2, tiny_gpt2_classifier, tiny_llama

from dl2llm.finetune import PrefixTuning, count_parameters, inject_adapters
from dl2llm.finetune.adapters import LLAMA_ADAPTER_TARGETS
from dl2llm.finetune.experiment import (
    Method,
    PeftFineTuneConfig,
    RunResult,
    fine_tune,
    load_progress,
    parse_method,
    prepare,
    save_progress,
)
from dl2llm.runtime import UsageError


def train_steps(model: torch.nn.Module, steps: int = 3, **forward) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    ids = torch.randint(0, 64, (4, 10))
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(input_ids=ids, labels=ids, **forward).loss.backward()
        optimizer.step()
    model.eval()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_adapters_are_the_identity_at_initialisation(family):
    build = {"gpt2": tiny_gpt2, "llama": tiny_llama}[family]
    base, adapted = build(), build()
    targets = inject_adapters(
        adapted,
        LLAMA_ADAPTER_TARGETS if family == "llama" else ("attn.c_proj", "mlp.c_proj"),
        bottleneck=4,
    )
    assert len(targets) == 4  # 2 blocks x (attention output, feed-forward output)
    ids = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        assert torch.equal(adapted(ids).logits, base(ids).logits)


def test_only_adapters_train_and_frozen_weights_stay():
    model = tiny_gpt2()
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    inject_adapters(model, bottleneck=4, train_layer_norms=False)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".adapter." in n for n in trainable)
    assert count_parameters(model)[0] == 4 * (2 * 4 * 32 + 4 + 32)  # 4 adapters, d=32, m=4
    ids = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        at_init = model(ids).logits
    train_steps(model)
    state = model.state_dict()
    for key, value in frozen.items():
        stored = key.replace("c_proj.", "c_proj.sublayer.")
        assert torch.equal(state[stored], value), key
    with torch.no_grad():
        assert (model(ids).logits - at_init).abs().max() > 1e-3  # the adapters did learn


def test_adapters_with_layer_norms_train_norms_too():
    model = tiny_gpt2()
    inject_adapters(model, bottleneck=4, train_layer_norms=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    norms = {n for n in trainable if ".adapter." not in n}
    assert norms == {
        f"transformer.{ln}.{w}"
        for ln in ("h.0.ln_1", "h.0.ln_2", "h.1.ln_1", "h.1.ln_2", "ln_f")
        for w in ("weight", "bias")
    }


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_prefix_from_real_tokens_equals_prepending_them(family):
    """A prefix set to the frozen model's keys/values of real tokens == those tokens as input."""
    build = {"gpt2": tiny_gpt2, "llama": tiny_llama}[family]
    model = build()
    tuned = PrefixTuning(model, n_prefix=4)
    prompt = torch.tensor([3, 17, 42, 8])
    tuned.init_from_tokens(prompt)
    ids = torch.randint(0, 64, (2, 7))
    with torch.no_grad():
        ours = tuned(ids).logits  # (B, T, V)
        prepended = model(torch.cat([prompt.expand(2, -1), ids], dim=1)).logits[:, 4:]
    torch.testing.assert_close(ours, prepended, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_prefix_matches_peft_prefix_tuning(family):
    build = {"gpt2": tiny_gpt2, "llama": tiny_llama}[family]
    ours = PrefixTuning(build(), n_prefix=3)
    config = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3)
    reference = get_peft_model(build(), config)
    peft_prefix = reference.prompt_encoder.default.embedding.weight
    with torch.no_grad():
        peft_prefix.copy_(ours.prefix)  # both lay the prefix out as (P, layers * 2 * H * D)
    ids = torch.randint(0, 64, (2, 7))
    out_ours, out_ref = ours(ids, labels=ids), reference(input_ids=ids, labels=ids)
    torch.testing.assert_close(out_ours.logits, out_ref.logits, atol=1e-6, rtol=0)
    out_ours.loss.backward()
    out_ref.loss.backward()
    torch.testing.assert_close(ours.prefix.grad, peft_prefix.grad, atol=1e-6, rtol=0)


@pytest.mark.parametrize("hidden", [None, 8])
def test_only_the_prefix_trains(hidden):
    model = tiny_gpt2()
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = PrefixTuning(model, n_prefix=5, hidden=hidden)
    trainable = {n for n, p in tuned.named_parameters() if p.requires_grad}
    if hidden is None:
        assert trainable == {"prefix"}
        assert count_parameters(tuned)[0] == 5 * 2 * 2 * 32  # P x layers x (K, V) x width
    else:
        assert trainable == {"prefix", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}
    start = tuned.prefix.detach().clone()
    train_steps(tuned)
    assert not torch.equal(tuned.prefix, start)
    for key, value in model.state_dict().items():
        assert torch.equal(value, frozen[key]), key


def test_bad_settings_raise_usage_error():
    with pytest.raises(UsageError, match="bottleneck must be positive"):
        inject_adapters(tiny_gpt2(), bottleneck=0)
    with pytest.raises(UsageError, match="no module name matches"):
        inject_adapters(tiny_gpt2(), ["nothing_here"])
    with pytest.raises(UsageError, match="prefix length must be positive"):
        PrefixTuning(tiny_gpt2(), n_prefix=0)
    with pytest.raises(UsageError, match="need 4 token ids"):
        PrefixTuning(tiny_gpt2(), n_prefix=4).init_from_tokens(torch.tensor([1, 2]))


@pytest.mark.parametrize(
    ("method", "new_parameters"),
    [
        ("full", None),
        ("lora_r2", 2 * 2 * ((32 + 96) + (32 + 32) + (32 + 128) + (128 + 32))),
        ("lora_r2_emb", 2 * 2 * ((32 + 96) + (32 + 32) + (32 + 128) + (128 + 32)) + 2 * (64 + 32)),
        ("adapters", 4 * (2 * 16 * 32 + 16 + 32) + 5 * 2 * 32),  # adapters + layer norms
        ("prefix", 10 * 2 * 2 * 32),
    ],
)
def test_each_method_trains_its_parameters_and_the_new_head(method, new_parameters):
    config = PeftFineTuneConfig(prefix_length=10, prefix_hidden=0)
    model = prepare(tiny_gpt2_classifier(), method, config)
    trainable, total = count_parameters(model)
    head = 32 * 2  # score: 32 -> 2, no bias
    assert trainable == (total if new_parameters is None else new_parameters + head)
    batch = {
        "input_ids": torch.randint(1, 64, (3, 8)),
        "attention_mask": torch.ones(3, 8, dtype=torch.long),
        "labels": torch.tensor([0, 1, 1]),
    }
    model(**batch).loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


BERT_LORA_R2 = 2 * 2 * (4 * (32 + 32) + (32 + 64) + (64 + 32))  # layers x rank x (q,k,v,o, ff)


@pytest.mark.parametrize(
    ("method", "new_parameters"),
    [
        ("lora_r2", BERT_LORA_R2),
        ("lora_r2_emb", BERT_LORA_R2 + 2 * (100 + 32)),  # + rank x (vocab + width), exactly
        ("adapters", 4 * (2 * 16 * 32 + 16 + 32) + 5 * 2 * 32),  # 5 LayerNorms
        ("prefix", 10 * 8 + (8 * 8 + 8) + (8 * 128 + 128)),  # embedding + MLP to 2 x 2 x 32
    ],
)
def test_bert_methods_train_exactly_their_parameters(method, new_parameters):
    """MiniLM's architecture: the pooler stays frozen, the new classifier trains."""
    config = PeftFineTuneConfig(prefix_length=10, prefix_hidden=8)
    model = prepare(tiny_bert_classifier(), method, config)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"classifier.weight", "classifier.bias"} <= {n.removeprefix("model.") for n in trainable}
    assert not any("pooler" in n for n in trainable)
    assert count_parameters(model).trainable == new_parameters + 32 * 2 + 2


def test_reparameterised_prefix_folds_to_identical_outputs():
    model = PrefixTuning(tiny_bert_classifier(), n_prefix=4, hidden=8)
    train_steps_bert(model)
    ids = torch.randint(1, 100, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        before = model(ids, attention_mask=mask).logits
        model.fold()
        after = model(ids, attention_mask=mask).logits
    assert model.mlp is None and count_parameters(model).trainable == 4 * 2 * 2 * 32
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)


def test_bert_prefix_is_attended_and_padding_is_not():
    model = PrefixTuning(tiny_bert_classifier(), n_prefix=3)
    ids = torch.randint(1, 100, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    other = ids.clone()
    other[1, 4:] = 5  # different tokens under the padding
    with torch.no_grad():
        out = model(ids, attention_mask=mask).logits
        torch.testing.assert_close(model(other, attention_mask=mask).logits, out, atol=1e-6, rtol=0)
        alone = model(ids[1:, :4], attention_mask=mask[1:, :4]).logits
        torch.testing.assert_close(alone, out[1:], atol=1e-6, rtol=0)
        model.prefix.mul_(50)
        assert (model(ids, attention_mask=mask).logits - out).abs().max() > 1e-4


def train_steps_bert(model: torch.nn.Module, steps: int = 3) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    ids, labels = torch.randint(1, 100, (4, 10)), torch.tensor([0, 1, 0, 1])
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
    model.eval()


def test_fine_tune_scores_a_folded_prefix_item_by_item():
    split = {
        "input_ids": torch.randint(1, 100, (6, 5)),
        "attention_mask": torch.ones(6, 5, dtype=torch.long),
        "labels": torch.tensor([0, 1, 0, 1, 1, 0]),
    }
    splits = {"train": split, "val": split, "test": split}
    config = PeftFineTuneConfig(batch_size=4, prefix_length=2, prefix_hidden=8)
    model = prepare(tiny_bert_classifier(), "prefix", config)
    result = fine_tune(model, "prefix", 1e-3, splits, config, torch.device("cpu"), progress=False)
    assert len(result.test_correct) == 6 and set(result.test_correct) <= {0, 1}
    assert len(result.losses) == 2  # 6 examples in batches of 4
    assert result.stored == 2 * 2 * 2 * 32 + 32 * 2 + 2  # folded prefix + classifier
    assert result.trainable == 2 * 8 + (8 * 8 + 8) + (8 * 128 + 128) + 32 * 2 + 2
    assert result.key == "prefix@0.001#0"


def test_method_names_are_checked():
    assert parse_method("lora_r16") == Method("lora", 16, False)
    assert parse_method("lora_r4_emb") == Method("lora", 4, True)
    assert parse_method("prefix") == Method("prefix")
    for bad in ("lora", "lora_r0", "lora_rx", "lora_r4_x", "bitfit", "full_r2", "prefix_emb"):
        with pytest.raises(UsageError, match="unknown method"):
            parse_method(bad)


def test_progress_is_saved_and_resumed_only_for_the_same_settings(tmp_path):
    path = tmp_path / "progress.json"
    result = RunResult("lora_r4", 1e-3, 1, 10, 1000, 0.7, [1, 0, 1], 1.5, 12.0, [0.7, 0.6], 10)
    save_progress(path, {"epochs": 1}, {result.key: result})
    assert load_progress(path, {"epochs": 1}) == {"lora_r4@0.001#1": result}
    assert load_progress(path, {"epochs": 2}) == {}
    assert load_progress(tmp_path / "missing.json", {"epochs": 1}) == {}
