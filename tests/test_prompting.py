"""Prompting harness: label scoring, cached vs uncached, generation, calibration, intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny import tiny_gpt2, tiny_smollm2_llama

from dl2llm import models, prompting
from dl2llm.data import LabelledTexts


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(models.llm_path())


def brute_force_log_prob(model, tokenizer, pieces: list[str], continuation: str) -> float:
    """log p(continuation | pieces) from one uncached forward pass over everything."""
    context = [i for piece in pieces for i in tokenizer(piece, add_special_tokens=False).input_ids]
    target = tokenizer(continuation, add_special_tokens=False).input_ids
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context + target])).logits[0]  # (T, V)
    log_probs = torch.log_softmax(logits, dim=-1)
    positions = range(len(context) - 1, len(context) + len(target) - 1)
    return sum(log_probs[p, t].item() for p, t in zip(positions, target, strict=True))


def test_label_scoring_picks_the_likelier_label_on_a_constructed_model(tokenizer):
    """Zero weights and a bias on the output layer: p(token) is known exactly."""
    model = tiny_smollm2_llama()
    head = torch.nn.Linear(32, 49152, bias=True)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    positive = tokenizer(" positive", add_special_tokens=False).input_ids
    awful = tokenizer(" truly awful", add_special_tokens=False).input_ids  # two tokens
    assert len(positive) == 1 and len(awful) == 2
    head.bias.data[positive[0]] = 3.0
    head.bias.data[awful] = 1.0
    model.lm_head = head
    template = prompting.Template(
        "t", "Review: {text}\nSentiment:", label_words=("truly awful", "positive")
    )
    run = prompting.run_prompt(model, tokenizer, template, [], ["meh", "ok"], progress=False)
    log_z = torch.logsumexp(head.bias.data, dim=0).item()
    expected = [2 * (1.0 - log_z), 3.0 - log_z]  # two tokens of bias 1 vs one of bias 3
    np.testing.assert_allclose(run.log_probs, [expected, expected], atol=1e-4)
    assert run.predictions("log-prob").tolist() == [1, 1]


def test_cached_scoring_equals_uncached_forward(tokenizer):
    model = tiny_smollm2_llama(seed=1)
    train = LabelledTexts(["loved it", "hated it", "a joy", "a bore"], [1, 0, 1, 0])
    demos = prompting.choose_demonstrations(train, 2, seed=0)
    template = prompting.Template("t", "Review: {text}\nSentiment:", label_words=("bad", "so good"))
    texts = ["An uneven film.", "Fun!"]
    run = prompting.run_prompt(model, tokenizer, template, demos, texts, progress=False)
    prefix, queries = template.render(demos, texts, tokenizer)
    for row, query in zip(run.log_probs, queries, strict=True):
        expected = [
            brute_force_log_prob(model, tokenizer, [prefix, query], c)
            for c in template.continuations()
        ]
        np.testing.assert_allclose(row, expected, atol=1e-4)
    assert run.predictions("log-prob").tolist() == run.log_probs.argmax(1).tolist()


def test_greedy_generation_matches_transformers_generate(tokenizer):
    model = tiny_smollm2_llama(seed=2)
    prefix, query = (
        "Classify.\n\nReview: great\nSentiment: positive\n\n",
        "Review: dull\nSentiment:",
    )
    ours = prompting.PrefixScorer(model, tokenizer, prefix).generate(query, max_new_tokens=4)
    ids = [
        i for part in (prefix, query) for i in tokenizer(part, add_special_tokens=False).input_ids
    ]
    out = model.generate(
        torch.tensor([ids]), max_new_tokens=4, do_sample=False, pad_token_id=2, eos_token_id=2
    )
    theirs = tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
    assert ours and theirs.startswith(ours)
    assert ours == theirs or "\n" in ours


def test_chat_template_prefix_and_query_rebuild_the_full_conversation(tokenizer):
    template = prompting.get_template("chat")
    demos = [("loved it", 1)]
    prefix, (query,) = template.render(demos, ["meh"], tokenizer)
    full = tokenizer.apply_chat_template(
        [
            {"role": "system", "content": template.instruction},
            {"role": "user", "content": "Review: loved it"},
            {"role": "assistant", "content": "positive"},
            {"role": "user", "content": "Review: meh"},
        ],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prefix + query == full
    assert query.endswith("<|im_start|>assistant\n")


def test_plain_template_renders_demonstrations_exactly(tokenizer):
    template = prompting.get_template("review-sentiment")
    prefix, queries = template.render([("Fun.", 1), ("Dull.", 0)], ["Odd."], tokenizer)
    assert prefix == (
        f"{template.instruction}\n\n"
        "Review: Fun.\nSentiment: positive\n\nReview: Dull.\nSentiment: negative\n\n"
    )
    assert queries == ["Review: Odd.\nSentiment:"]


def test_demonstrations_are_balanced_ordered_and_seeded():
    train = LabelledTexts([f"t{i}" for i in range(40)], [i % 2 for i in range(40)])
    pos_last = prompting.choose_demonstrations(train, 4, seed=3, ordering="positive-last")
    assert [y for _, y in pos_last] == [0, 0, 1, 1]
    neg_last = prompting.choose_demonstrations(train, 4, seed=3, ordering="negative-last")
    assert [y for _, y in neg_last] == [1, 1, 0, 0]
    assert sorted(pos_last) == sorted(neg_last)
    shuffled = prompting.choose_demonstrations(train, 8, seed=3)
    assert shuffled == prompting.choose_demonstrations(train, 8, seed=3)
    assert sum(y for _, y in shuffled) == 4
    assert len(prompting.choose_demonstrations(train, 1, seed=0)) == 1
    with pytest.raises(ValueError, match="unknown ordering"):
        prompting.choose_demonstrations(train, 2, ordering="alphabetical")


def test_parse_answer_takes_the_first_label_word():
    labels = ("negative", "positive")
    assert prompting.parse_answer(" Positive.\n", labels) == 1
    assert prompting.parse_answer("negative, not positive", labels) == 0
    assert prompting.parse_answer("The movie is called", labels) is None


def test_contextual_calibration_hand_example():
    probs = np.array([[0.7, 0.3], [0.9, 0.1]])
    content_free = np.array([0.8, 0.2])
    # W p = [0.7 / 0.8, 0.3 / 0.2] = [0.875, 1.5]; softmax -> 1 / (1 + e^0.625)
    low = 1 / (1 + math.exp(0.625))
    calibrated = prompting.calibrate(probs, content_free)
    np.testing.assert_allclose(calibrated[0], [low, 1 - low], atol=1e-12)
    assert calibrated.argmax(1).tolist() == [1, 0]  # the first flips, the second stays
    uniform = prompting.calibrate(probs, np.array([0.5, 0.5]))
    assert uniform.argmax(1).tolist() == probs.argmax(1).tolist()
    run = prompting.PromptRun(
        prompting.get_template("review-sentiment"), np.log(probs), content_free
    )
    assert run.predictions("calibrated").tolist() == [1, 0]
    assert run.predictions("log-prob").tolist() == [0, 0]


def test_wilson_interval_known_cases():
    # Wilson (1927): p = 0.8, n = 10, z = 1.96 -> [0.4902, 0.9433]
    low, high = prompting.wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    low, high = prompting.wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.2775, abs=1e-4)
    summary = prompting.accuracy_summary(np.array([1, 1, 0, 1]), [1, 1, 1, 1])
    assert summary["accuracy"] == 0.75 and summary["n"] == 4
    assert prompting.format_accuracy(summary).endswith("(n=4)")


def test_paired_bootstrap_interval_known_cases():
    assert prompting.paired_difference_interval(np.ones(50), np.zeros(50)) == (1.0, 1.0, 1.0)
    a = np.array([1] * 60 + [0] * 40)
    diff, low, high = prompting.paired_difference_interval(a, np.zeros(100))
    half_width = 1.96 * math.sqrt(0.6 * 0.4 / 100)  # normal approximation: 0.096
    assert diff == pytest.approx(0.6)
    assert low == pytest.approx(0.6 - half_width, abs=0.02)
    assert high == pytest.approx(0.6 + half_width, abs=0.02)


def test_prompt_longer_than_the_context_window_is_refused(tokenizer):
    model = tiny_gpt2(vocab_size=49152, n_embd=16, n_layer=1, special_token=2)
    template = prompting.get_template("question-answer")
    run = prompting.run_prompt(model, tokenizer, template, [], ["Fun."], progress=False)
    expected = [
        brute_force_log_prob(model, tokenizer, [template.query.format(text="Fun.")], c)
        for c in template.continuations()
    ]
    np.testing.assert_allclose(run.log_probs[0], expected, atol=1e-4)  # empty prefix, GPT-2
    with pytest.raises(
        ValueError, match="the prompt needs .* tokens but the model reads at most 32"
    ):
        prompting.run_prompt(model, tokenizer, template, [], ["word " * 20], progress=False)
