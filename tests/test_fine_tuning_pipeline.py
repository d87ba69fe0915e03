"""Grounded-QA examples, prompt masking, the answer-only loss, and checkpoint/resume."""

from __future__ import annotations

import pytest
import torch

from dl2llm.evaluation import finetune
from dl2llm.evaluation.dataset import EvalItem
from dl2llm.finetune.lora import lora_state_dict
from dl2llm.rag.retrieve import Hit
from dl2llm.runtime import UsageError


def _hit(chunk_id: int, text: str) -> Hit:
    return Hit(chunk_id, "faq/x.rst", "faq/x.rst", "a", "FAQ > Q?", text, 1.0)


HITS = (_hit(7, "Use pdb to debug programs."), _hit(3, "Lists sort in place."))
EXAMPLES = [
    finetune.QAExample(f"How do I debug {n}?", HITS, f"Use pdb number {n}. [1]") for n in range(4)
]


def test_the_gold_passage_is_always_shown_and_numbered():
    gold = _hit(3, "Lists sort in place.")
    retrieved = [_hit(n, f"passage {n}") for n in (10, 11, 12, 3)]
    shown, number = finetune.grounded_passages(retrieved, gold, slot=0)
    assert [h.chunk_id for h in shown] == [3, 10, 11] and number == 1  # missed: takes the slot
    shown, number = finetune.grounded_passages(retrieved, gold, slot=1, shown=4)
    assert [h.chunk_id for h in shown] == [10, 11, 12, 3] and number == 4  # found: order kept
    shown, number = finetune.grounded_passages(retrieved[:1], gold, slot=2)
    assert [h.chunk_id for h in shown] == [10, 3] and number == 2


def test_learning_rate_warms_up_then_decays_to_zero():
    factor = finetune.warmup_then_decay(10, warmup=0.2)
    assert [round(factor(s), 3) for s in range(10)] == [
        0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125
    ]  # fmt: skip


def test_examples_refuse_the_held_out_split():
    item = EvalItem("Q?", "faq/x.rst", "a", frozenset({1}), "A.", "test")
    with pytest.raises(UsageError, match="held-out test split"):
        finetune.build_examples(None, [item])


def test_only_the_answer_tokens_are_labelled():
    _, tokenizer = finetune.tiny_llama()
    encoded = finetune.encode_example(tokenizer, EXAMPLES[0], max_length=384)
    ids, labels = encoded["input_ids"][0], encoded["labels"][0]  # (T,), (T,)
    answer = tokenizer(EXAMPLES[0].answer + tokenizer.eos_token, add_special_tokens=False)
    n = len(answer["input_ids"])
    assert labels[-n:].tolist() == answer["input_ids"] == ids[-n:].tolist()
    assert (labels[:-n] == finetune.IGNORE).all()
    short = finetune.encode_example(tokenizer, EXAMPLES[0], max_length=len(ids) - 1)
    assert short["input_ids"].shape[1] < len(ids)
    assert short["labels"][0, -n:].tolist() == answer["input_ids"]  # a passage dropped, answer kept
    with pytest.raises(UsageError, match="no room for the answer"):
        finetune.encode_example(tokenizer, EXAMPLES[0], max_length=20)


def test_answer_loss_equals_the_full_model_loss():
    model, tokenizer = finetune.tiny_llama()
    encoded = finetune.encode_example(tokenizer, EXAMPLES[1], max_length=384)
    with torch.no_grad():
        expected = model(**encoded).loss
        torch.testing.assert_close(finetune.answer_loss(model, encoded), expected)


def test_training_lowers_the_loss_and_resumes_from_its_checkpoint(tmp_path):
    config = finetune.TrainConfig(epochs=3, global_batch=2, lr=1e-2, max_length=128)
    model, tokenizer = finetune.tiny_llama()
    checkpoint = tmp_path / "run.pt"
    trained = finetune.train_lora(model, tokenizer, EXAMPLES, config, checkpoint, progress=False)
    assert trained["steps"] == 6 and trained["world_size"] == 1
    assert trained["losses"][-1] < trained["losses"][0]
    state = torch.load(checkpoint, weights_only=False)
    assert state["step"] == 6 and state["losses"] == trained["losses"]
    resumed_model, _ = finetune.tiny_llama()
    resumed = finetune.train_lora(resumed_model, tokenizer, EXAMPLES, config, checkpoint)
    assert resumed["steps"] == 6 and resumed["losses"] == trained["losses"]
    for key, value in lora_state_dict(model).items():
        torch.testing.assert_close(lora_state_dict(resumed_model)[key], value, rtol=0, atol=0)


def test_batch_must_split_evenly():
    model, tokenizer = finetune.tiny_llama()
    config = finetune.TrainConfig(global_batch=8)
    with pytest.raises(UsageError, match="fewer than one batch"):
        finetune.train_lora(model, tokenizer, EXAMPLES, config, progress=False)


def test_the_generator_serves_a_saved_adapter(tmp_path):
    from dl2llm.finetune.lora import inject_lora, save_lora
    from dl2llm.models import load_llm
    from dl2llm.rag.generate import LLMGenerator

    model, _ = load_llm()
    torch.manual_seed(0)
    inject_lora(model, finetune.LORA_TARGETS, r=2)
    layer = model.model.layers[0].self_attn.q_proj
    torch.nn.init.normal_(layer.lora_B)
    expected = layer.base.weight + layer.delta_weight()  # (out, in)
    path = save_lora(model, tmp_path / "adapter.safetensors")
    served = LLMGenerator.load(adapter=path).model.model.layers[0].self_attn.q_proj
    assert served.merged
    torch.testing.assert_close(served.base.weight, expected.detach(), rtol=1e-5, atol=1e-6)
