"""Entry questions, candidate examples, prompt masking, the answer-only loss, checkpoint/resume."""

from __future__ import annotations

import pytest
import torch
from test_serve_fixtures import TorchThreads, encoder, sample_index_dir

from dl2llm.classification import warmup_linear_scheduler
from dl2llm.evaluation.systems import NEVER, build_system
from dl2llm.finetune import grounded_qa
from dl2llm.finetune.lora import lora_state_dict
from dl2llm.rag.choice import build_evidence_messages, candidate_line
from dl2llm.rag.evidence import Evidence
from dl2llm.rag.index import Index
from dl2llm.rag.retrieve import Hit
from dl2llm.runtime import UsageError


def _entry(n: int, name: str, sentence: str) -> Evidence:
    hit = Hit(n, "library/m.rst", "library/m.rst", f"m.{name}", f"m > {name}(x)", sentence, 1.0)
    return Evidence(n + 1, hit, sentence, 0.5)


CANDIDATES = (
    _entry(0, "first", "Return the first item of the iterable x."),
    _entry(1, "pdb_it", "Start the debugger on the program x."),
    _entry(2, "last", "Return the last item of the iterable x."),
)
EXAMPLES = [
    grounded_qa.QAExample(f"How do I debug {n}?", CANDIDATES, 1, candidate_line(CANDIDATES[1]))
    for n in range(4)
]


@pytest.mark.parametrize(
    ("sentence", "question"),
    [
        ("Return the size of a container.", "How do I get the size of a container?"),
        ("Return True if the path is a folder.", "How do I check whether the path is a folder?"),
        ("Returns true if x is finite.", "How do I check whether x is finite?"),
        ("Remove and return an item from it.", "How do I remove and return an item from it?"),
        ("Alternate constructor for chain.", None),
        (">>> chain('ABC') Return it.", None),
    ],
)  # fmt: skip
def test_questions_are_written_from_imperative_descriptions(sentence, question):
    assert grounded_qa.question_from_description(sentence) == question


@pytest.fixture(scope="module")
def sample_index():
    return Index.load(sample_index_dir())


def test_entry_questions_never_use_excluded_documents(sample_index):
    questions = grounded_qa.entry_questions(sample_index, set())
    assert questions and {q.doc_id for q in questions} == {"library/functools.rst"}
    assert all(q.question.endswith("?") and q.anchor.startswith("functools.") for q in questions)
    assert grounded_qa.entry_questions(sample_index, {"library/functools.rst"}) == []
    assert len(grounded_qa.entry_questions(sample_index, set(), limit=2)) == 2


def test_every_example_shows_its_gold_entry_and_answers_with_its_line(sample_index):
    questions = grounded_qa.entry_questions(sample_index, set())
    with TorchThreads():
        pipeline = build_system("evidence", sample_index, encoder(), thresholds=(NEVER, NEVER))
        examples = grounded_qa.build_examples(pipeline, questions, seed=1, shuffled=0.5)
    assert len(examples) >= len(questions) - 2  # only refused questions are skipped
    by_question = {q.question: q for q in questions}
    for example in examples:
        gold = example.candidates[example.gold]
        assert gold.hit.anchor == by_question[example.question].anchor
        assert example.answer == candidate_line(gold) and example.answer.startswith("`functools.")
        assert 1 <= len(example.candidates) <= 5
    assert any(example.gold > 0 for example in examples)  # not always the encoder's first


def test_learning_rate_warms_up_then_decays_to_zero():
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    schedule = warmup_linear_scheduler(optimizer, 2, 10, from_first_step=True)  # warmup 0.2
    factors = []
    for _ in range(10):
        factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert [round(f, 3) for f in factors] == [
        0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125
    ]  # fmt: skip


def test_only_the_answer_tokens_are_labelled():
    _, tokenizer = grounded_qa.tiny_llama()
    encoded = grounded_qa.encode_example(tokenizer, EXAMPLES[0], max_length=384)
    ids, labels = encoded["input_ids"][0], encoded["labels"][0]  # (T,), (T,)
    answer = tokenizer(EXAMPLES[0].answer + tokenizer.eos_token, add_special_tokens=False)
    n = len(answer["input_ids"])
    assert labels[-n:].tolist() == answer["input_ids"] == ids[-n:].tolist()
    assert (labels[:-n] == grounded_qa.IGNORE).all()
    short = grounded_qa.encode_example(tokenizer, EXAMPLES[0], max_length=len(ids) - 1)
    assert short["input_ids"].shape[1] < len(ids)
    assert (
        short["labels"][0, -n:].tolist() == answer["input_ids"]
    )  # a candidate dropped, answer kept
    kept = tokenizer.decode(short["input_ids"][0])
    assert "pdb_it" in kept and "m.last" not in kept  # the gold entry stays, the last goes
    prompt = build_evidence_messages(EXAMPLES[0].question, CANDIDATES)[0]["content"]
    assert prompt.count("\n- `m.") == 3
    with pytest.raises(UsageError, match="no room for the answer"):
        grounded_qa.encode_example(tokenizer, EXAMPLES[0], max_length=20)


def test_answer_loss_equals_the_full_model_loss():
    model, tokenizer = grounded_qa.tiny_llama()
    encoded = grounded_qa.encode_example(tokenizer, EXAMPLES[1], max_length=384)
    with torch.no_grad():
        expected = model(**encoded).loss
        torch.testing.assert_close(grounded_qa.answer_loss(model, encoded), expected)


def test_training_lowers_the_loss_and_resumes_from_its_checkpoint(tmp_path):
    config = grounded_qa.QAFineTuneConfig(epochs=3, global_batch=2, lr=1e-2, max_length=128)
    model, tokenizer = grounded_qa.tiny_llama()
    checkpoint = tmp_path / "run.pt"
    trained = grounded_qa.train_lora(model, tokenizer, EXAMPLES, config, checkpoint, progress=False)
    assert trained["steps"] == 6 and trained["world_size"] == 1
    assert trained["losses"][-1] < trained["losses"][0]
    state = torch.load(checkpoint, weights_only=False)
    assert state["step"] == 6 and state["losses"] == trained["losses"]
    resumed_model, _ = grounded_qa.tiny_llama()
    resumed = grounded_qa.train_lora(resumed_model, tokenizer, EXAMPLES, config, checkpoint)
    assert resumed["steps"] == 6 and resumed["losses"] == trained["losses"]
    for key, value in lora_state_dict(model).items():
        torch.testing.assert_close(lora_state_dict(resumed_model)[key], value, rtol=0, atol=0)


def test_batch_must_split_evenly():
    model, tokenizer = grounded_qa.tiny_llama()
    config = grounded_qa.QAFineTuneConfig(global_batch=8)
    with pytest.raises(UsageError, match="fewer than one batch"):
        grounded_qa.train_lora(model, tokenizer, EXAMPLES, config, progress=False)


def test_the_generator_serves_a_saved_adapter(tmp_path):
    from dl2llm.finetune.lora import inject_lora, save_lora
    from dl2llm.models import load_llm
    from dl2llm.rag.generate import LLMGenerator

    model, _ = load_llm()
    torch.manual_seed(0)
    inject_lora(model, grounded_qa.LORA_TARGETS, r=2)
    layer = model.model.layers[0].self_attn.q_proj
    torch.nn.init.normal_(layer.lora_B)
    expected = layer.base.weight + layer.delta_weight()  # (out, in)
    path = save_lora(model, tmp_path / "adapter.safetensors")
    served = LLMGenerator.load(adapter=path).model.model.layers[0].self_attn.q_proj
    assert served.merged
    torch.testing.assert_close(served.base.weight, expected.detach(), rtol=1e-5, atol=1e-6)
