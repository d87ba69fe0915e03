"""LoRA from scratch (dl2llm.finetune.lora) against peft, plus its own guarantees."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from tiny import tiny_bert_classifier, tiny_gpt2, tiny_gpt2_untied, tiny_llama
from torch import nn
from transformers.pytorch_utils import Conv1D

from dl2llm.finetune import (
    LoRAEmbedding,
    LoRALinear,
    count_parameters,
    inject_lora,
    load_lora,
    lora_state_dict,
    merge_lora,
    save_lora,
    unload_lora,
    unmerge_lora,
)
from dl2llm.finetune.experiment import ARCHITECTURES
from dl2llm.runtime import UsageError

TOL = 1e-6  # outputs and gradients, ours vs peft (fp32)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(12, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def copy_into_peft(ours: nn.Module, peft_model: nn.Module) -> int:
    """Copy our A/B into peft's ``lora_A.default`` / ``lora_B.default``; returns how many."""
    peft_params = dict(peft_model.named_parameters())
    copied = 0
    for key, value in lora_state_dict(ours).items():
        name, kind = key.rsplit(".", 1)
        module = name.removesuffix(".base")
        target = peft_params[f"base_model.model.{module}.{kind}.default.weight"]
        with torch.no_grad():
            target.copy_(value)
        copied += 1
    return copied


def randomize_b(model: nn.Module, seed: int = 1) -> None:
    """Non-zero B so that the adapted model really differs from the base."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("lora_B"):
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))


def test_linear_matches_peft_outputs_and_gradients():
    torch.manual_seed(0)
    base = Block()
    ours, reference = copy.deepcopy(base), copy.deepcopy(base)
    inject_lora(ours, ["proj"], r=4, alpha=8)
    randomize_b(ours)
    reference = get_peft_model(reference, LoraConfig(r=4, lora_alpha=8, target_modules=["proj"]))
    assert copy_into_peft(ours, reference) == 2
    x = torch.randn(5, 3, 12)
    out_ours, out_ref = ours(x), reference(x)
    torch.testing.assert_close(out_ours, out_ref, atol=TOL, rtol=0)
    assert (out_ours - base(x)).abs().max() > 1e-2  # the adapter really changes the output
    out_ours.pow(2).sum().backward()
    out_ref.pow(2).sum().backward()
    ref_params = dict(reference.named_parameters())
    for kind in ("lora_A", "lora_B"):
        ours_grad = getattr(ours.proj, kind).grad
        ref_grad = ref_params[f"base_model.model.proj.{kind}.default.weight"].grad
        torch.testing.assert_close(ours_grad, ref_grad, atol=TOL, rtol=0)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_whole_model_matches_peft(family):
    """GPT-2's Conv1D (c_attn, fan_in_fan_out) and Llama's q/v projections."""
    build, targets = {
        "gpt2": (tiny_gpt2, ["c_attn", "c_fc"]),
        "llama": (tiny_llama, ["q_proj", "v_proj"]),
    }[family]
    ours, reference = build(), build()
    wrapped = inject_lora(ours, targets, r=4, alpha=16)
    assert len(wrapped) == 4
    randomize_b(ours)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=targets, fan_in_fan_out=family == "gpt2")
    reference = get_peft_model(reference, config)
    assert copy_into_peft(ours, reference) == 8
    ids = torch.randint(0, 64, (2, 10))
    out_ours = ours(ids, labels=ids)
    out_ref = reference(input_ids=ids, labels=ids)
    torch.testing.assert_close(out_ours.logits, out_ref.logits, atol=TOL, rtol=0)
    out_ours.loss.backward()
    out_ref.loss.backward()
    ref_params = dict(reference.named_parameters())
    for name, param in ours.named_parameters():
        if param.requires_grad:
            module, kind = name.rsplit(".", 1)
            ref = ref_params[
                f"base_model.model.{module.removesuffix('.base')}.{kind}.default.weight"
            ]
            torch.testing.assert_close(param.grad, ref.grad, atol=TOL, rtol=0)


def test_bert_attention_and_feed_forward_match_peft():
    """BERT: separate query/key/value Linears, two ``output.dense`` (attention, feed-forward)."""

    def build() -> nn.Module:
        return tiny_bert_classifier(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

    ours, reference = build(), build()
    wrapped = inject_lora(ours, ARCHITECTURES["bert"].lora, r=4, alpha=8)
    assert len(wrapped) == 2 * 6  # per layer: query, key, value, attention out, intermediate, out
    assert not any("pooler" in name for name in wrapped)
    randomize_b(ours)
    reference = get_peft_model(reference, LoraConfig(r=4, lora_alpha=8, target_modules=wrapped))
    assert copy_into_peft(ours, reference) == 2 * 12
    ids = torch.randint(1, 100, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    labels = torch.tensor([0, 1, 1])
    out_ours = ours(input_ids=ids, attention_mask=mask, labels=labels)
    out_ref = reference(input_ids=ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(out_ours.logits, out_ref.logits, atol=1e-5, rtol=0)
    assert (out_ours.logits - build()(input_ids=ids, attention_mask=mask).logits).abs().max() > 1e-3
    out_ours.loss.backward()
    out_ref.loss.backward()
    ref_params = dict(reference.named_parameters())
    for name, param in ours.named_parameters():
        if param.requires_grad:
            module, kind = name.rsplit(".", 1)
            ref = ref_params[
                f"base_model.model.{module.removesuffix('.base')}.{kind}.default.weight"
            ]
            torch.testing.assert_close(param.grad, ref.grad, atol=1e-5, rtol=0)


def test_conv1d_is_wrapped_with_transposed_layout():
    model = tiny_gpt2()
    inject_lora(model, [r"h\.0\.attn\.c_attn"], r=2, alpha=2)
    layer = model.transformer.h[0].attn.c_attn
    assert isinstance(layer, LoRALinear) and isinstance(layer.base, Conv1D)
    assert layer.lora_A.shape == (2, 32) and layer.lora_B.shape == (96, 2)
    assert not isinstance(model.transformer.h[1].attn.c_attn, LoRALinear)


def test_only_adapter_trains_and_base_weights_never_change():
    model = tiny_gpt2()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inject_lora(model, ["c_attn", "c_proj"], r=4, alpha=8, dropout=0.1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    # 2 blocks x (c_attn 32->96 + attn.c_proj 32->32 + mlp.c_proj 128->32), r = 4
    assert count_parameters(model)[0] == 2 * 4 * ((32 + 96) + (32 + 32) + (128 + 32))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    ids = torch.randint(0, 64, (4, 12))
    for _ in range(3):
        optimizer.zero_grad()
        model(ids, labels=ids).loss.backward()
        optimizer.step()
    after = model.state_dict()
    for key, value in before.items():
        stored = (
            key
            if key in after
            else key.replace(".weight", ".base.weight").replace(".bias", ".base.bias")
        )
        assert torch.equal(after[stored], value), key


def test_merged_and_unmerged_outputs_agree():
    model = tiny_gpt2()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    inject_lora(model, ["c_attn", "c_fc", "c_proj"], r=8, alpha=16)
    randomize_b(model)
    ids = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        unmerged = model(ids).logits
        assert merge_lora(model) == 8  # c_attn, c_fc, attn.c_proj, mlp.c_proj x 2
        merged = model(ids).logits
        torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=0)
        assert unmerge_lora(model) == 8
        torch.testing.assert_close(model(ids).logits, unmerged, atol=1e-5, rtol=0)
    base_weight = model.transformer.h[0].attn.c_attn.base.weight
    torch.testing.assert_close(
        base_weight, original["transformer.h.0.attn.c_attn.weight"], atol=1e-6, rtol=0
    )


def test_merge_then_unload_gives_plain_model_with_same_outputs():
    model = tiny_gpt2()
    inject_lora(model, ["q_proj", "c_attn"], r=4, alpha=4)
    randomize_b(model)
    ids = torch.randint(0, 64, (1, 8))
    with torch.no_grad():
        expected = model(ids).logits
        merge_lora(model)
        unload_lora(model)
        assert not any(isinstance(m, LoRALinear) for m in model.modules())
        assert isinstance(model.transformer.h[0].attn.c_attn, Conv1D)
        torch.testing.assert_close(model(ids).logits, expected, atol=1e-5, rtol=0)


def test_save_and_load_only_adapter_weights(tmp_path):
    model = tiny_llama()
    inject_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)
    randomize_b(model)
    path = save_lora(model, tmp_path / "adapter.safetensors")
    saved = lora_state_dict(model)
    assert len(saved) == 8  # 2 layers x (q, v) x (A, B)
    assert path.stat().st_size < 10_000  # kilobytes: only A and B, not the model
    fresh = load_lora(tiny_llama(), path)  # same base weights (same seed), no LoRA yet
    for key, value in lora_state_dict(fresh).items():
        assert torch.equal(value, saved[key])
    ids = torch.randint(0, 64, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(fresh(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_bad_input_raises_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no Linear/Conv1D/Embedding module name matches"):
        inject_lora(tiny_gpt2(), ["query"], r=4)
    with pytest.raises(UsageError, match="rank r must be positive"):
        inject_lora(tiny_gpt2(), ["c_attn"], r=0)
    with pytest.raises(UsageError, match="not found"):
        load_lora(tiny_gpt2(), tmp_path / "missing.safetensors")
    saved = tiny_llama()
    inject_lora(saved, ["q_proj"], r=2)
    path = save_lora(saved, tmp_path / "a.safetensors")
    other = tiny_llama()
    inject_lora(other, ["v_proj"], r=2)
    with pytest.raises(UsageError, match="does not fit this model"):
        load_lora(other, path)


def test_embedding_matches_peft_and_mixes_ranks(tmp_path):
    """LoRA on GPT-2's token embedding (peft: lora_embedding_A/B) next to rank-4 linears."""
    ours, reference = tiny_gpt2_untied(), tiny_gpt2_untied()
    inject_lora(ours, ["c_attn"], r=4, alpha=8)
    assert inject_lora(ours, ["wte"], r=2, alpha=4) == ["transformer.wte"]
    assert isinstance(ours.transformer.wte, LoRAEmbedding)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, param in ours.named_parameters():
            if name.endswith(("lora_A", "lora_B")):
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))
    trainable, _ = count_parameters(ours)
    assert trainable == 2 * 4 * (32 + 96) + 2 * (64 + 32)  # earlier LoRA layers still train
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["c_attn", "wte"], fan_in_fan_out=True,
        rank_pattern={"wte": 2}, alpha_pattern={"wte": 4},
    )  # fmt: skip
    reference = get_peft_model(reference, config)
    peft_params = dict(reference.named_parameters())
    with torch.no_grad():
        for key, value in lora_state_dict(ours).items():
            name, kind = key.rsplit(".", 1)
            module = name.removesuffix(".base")
            embedding = f"base_model.model.{module}.{kind.replace('_', '_embedding_')}.default"
            linear = f"base_model.model.{module}.{kind}.default.weight"
            peft_params[embedding if embedding in peft_params else linear].copy_(value)
    ids = torch.randint(0, 64, (2, 10))
    out_ours, out_ref = ours(ids, labels=ids), reference(input_ids=ids, labels=ids)
    torch.testing.assert_close(out_ours.logits, out_ref.logits, atol=TOL, rtol=0)
    out_ours.loss.backward()
    out_ref.loss.backward()
    ref_grad = peft_params["base_model.model.transformer.wte.lora_embedding_A.default"].grad
    torch.testing.assert_close(ours.transformer.wte.lora_A.grad, ref_grad, atol=TOL, rtol=0)
    with torch.no_grad():
        before = ours(ids).logits
        merge_lora(ours)
        torch.testing.assert_close(ours(ids).logits, before, atol=1e-5, rtol=0)
        unmerge_lora(ours)
    path = save_lora(ours, tmp_path / "mixed.safetensors")
    fresh = load_lora(tiny_gpt2_untied(), path)  # each layer gets its saved rank back
    assert (fresh.transformer.wte.r, fresh.transformer.h[0].attn.c_attn.r) == (2, 4)
    with torch.no_grad():
        torch.testing.assert_close(fresh(ids).logits, before, atol=0, rtol=0)
