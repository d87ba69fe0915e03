"""Knowledge distillation: the losses equal hand computations; the student is built exactly.

Tolerances: loss values within 1e-6 of a float64 NumPy computation of the same formula;
logits of a pruned model within 1e-5 of the unpruned one; a factorised embedding within
1e-5 of the float64 principal-component projection; float16 teacher maps within 2e-3.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny import tiny_bert_fine_tune

from dl2llm import classification as clf
from dl2llm.data import LabelledTexts
from dl2llm.efficiency import distillation as d
from dl2llm.efficiency import distillation_student as ds
from dl2llm.finetune import count_parameters


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_loss_equals_hand_computation():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(6, 3)) * 3, rng.normal(size=(6, 3)) * 3
    labels = np.array([0, 2, 1, 1, 0, 2])
    temperature, alpha = 3.0, 0.7
    p_teacher = softmax(teacher / temperature)
    p_student = softmax(student / temperature)
    kl = np.sum(p_teacher * (np.log(p_teacher) - np.log(p_student))) / len(labels)
    ce = -np.mean(np.log(softmax(student)[np.arange(6), labels]))
    expected = alpha * temperature**2 * kl + (1 - alpha) * ce
    got = d.distillation_loss(
        torch.tensor(student, dtype=torch.float32),
        torch.tensor(teacher, dtype=torch.float32),
        torch.tensor(labels),
        temperature,
        alpha,
    )
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_alpha_zero_is_cross_entropy_and_alpha_one_ignores_labels():
    student, teacher = torch.randn(5, 2), torch.randn(5, 2)
    labels = torch.tensor([0, 1, 1, 0, 1])
    plain = d.distillation_loss(student, teacher, labels, temperature=4.0, alpha=0.0)
    assert plain.item() == pytest.approx(F.cross_entropy(student, labels).item(), abs=1e-6)
    assert d.distillation_loss(teacher, teacher, labels, alpha=1.0).item() == pytest.approx(
        0.0, abs=1e-6
    )
    with pytest.raises(ValueError, match="temperature"):
        d.distillation_loss(student, teacher, labels, temperature=0.0)


def test_unlabelled_examples_only_enter_the_soft_term():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 2), torch.randn(6, 2)
    labels = torch.tensor([0, 1, d.UNLABELLED, 1, d.UNLABELLED, 0])
    labelled = labels != d.UNLABELLED
    temperature, alpha = 2.0, 0.3
    soft = d.distillation_loss(student, teacher, labels, temperature, alpha=1.0)
    hard = F.cross_entropy(student[labelled], labels[labelled])
    got = d.distillation_loss(student, teacher, labels, temperature, alpha)
    assert got.item() == pytest.approx(alpha * soft.item() + (1 - alpha) * hard.item(), abs=1e-6)
    none = torch.full((6,), d.UNLABELLED)
    assert d.distillation_loss(student, teacher, none, temperature, alpha).item() == pytest.approx(
        alpha * soft.item(), abs=1e-6
    )


def test_augment_masks_words_and_keeps_contiguous_ngrams():
    texts = [" ".join(f"w{i}_{j}" for j in range(12)) for i in range(200)]
    augmented = d.augment(texts, copies=2, mask_token="[MASK]", p_mask=0.1, p_ngram=0.25, seed=3)
    assert len(augmented) == 400
    assert augmented == d.augment(texts, 2, "[MASK]", 0.1, 0.25, seed=3)
    words = [w for text in augmented for w in text.split()]
    assert 0.07 < words.count("[MASK]") / len(words) < 0.13
    shortened = 0
    for source, text in zip(texts * 2, augmented, strict=True):
        kept, original = text.split(), source.split()
        shortened += len(kept) < 12
        unmasked = [(k, original.index(w)) for k, w in enumerate(kept) if w != "[MASK]"]
        start = unmasked[0][1] - unmasked[0][0] if unmasked else 0
        assert all(j - k == start for k, j in unmasked)  # one contiguous span of the source
    assert 0.18 < shortened / 400 < 0.32  # n-grams of at most 5 words, 25% of the time
    transfer = d.transfer_set(
        LabelledTexts(texts[:3], [0, 1, 1]), 2, "[MASK]", unlabelled=["real one", "real two"]
    )
    assert transfer.labels == [0, 1, 1] + [d.UNLABELLED] * 8
    assert transfer.texts[:3] == texts[:3] and len(transfer) == 11
    assert transfer.texts[-2:] == ["real one", "real two"]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from dl2llm import models

    return AutoTokenizer.from_pretrained(models.encoder_path())


def test_vocabulary_pruning_maps_ids_exactly_and_keeps_the_logits(tokenizer):
    teacher = tiny_bert_fine_tune().eval()
    texts = ["a gripping, funny film", "the plot is a mess"]
    kept = ds.kept_ids(tokenizer, texts)
    assert set(tokenizer.all_special_ids) <= set(kept.tolist())
    assert kept.tolist() == sorted(set(kept.tolist()))
    pruned = ds.prune_vocabulary(copy.deepcopy(teacher), kept, tokenizer.unk_token_id)
    lookup = pruned.bert.embeddings.word_embeddings.lookup
    assert torch.equal(lookup[kept], torch.arange(len(kept)))
    unk_row = int((kept == tokenizer.unk_token_id).nonzero())
    unseen = torch.ones(30522, dtype=torch.bool)
    unseen[kept] = False
    assert (lookup[unseen] == unk_row).all()
    batch = clf.encode(tokenizer, texts, 64, "cpu")
    with torch.no_grad():
        assert torch.allclose(pruned(**batch).logits, teacher(**batch).logits, atol=1e-5)
        other = clf.encode(tokenizer, ["an unseen zebra"], 64, "cpu")
        as_unk = torch.where(unseen[other["input_ids"]], tokenizer.unk_token_id, other["input_ids"])
        assert torch.allclose(pruned(**other).logits, teacher(input_ids=as_unk).logits, atol=1e-5)
    assert count_parameters(pruned).total == count_parameters(teacher).total - 32 * (
        30522 - len(kept)
    )


def test_factorised_embedding_is_the_principal_component_projection():
    torch.manual_seed(0)
    weight = torch.randn(50, 16) @ torch.randn(16, 16)  # (V, C), correlated columns
    kept, unk = torch.arange(0, 50, 2), 4  # 25 kept rows; odd ids unseen
    rows = weight[kept].double().numpy()
    centred = rows - rows.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    for rank in (4, 16):
        embedding = ds.factorised_embedding(weight, kept, unk, rank)
        axes = vt[:rank].T  # (C, rank)
        expected = rows.mean(0) + centred @ axes @ axes.T
        got = embedding(kept).detach().double().numpy()
        assert np.abs(got - expected).max() < 1e-5
        assert torch.equal(embedding(torch.tensor([5])), embedding(torch.tensor([unk])))
    assert np.abs(got - rows).max() < 1e-5  # full rank: the teacher's rows themselves
    with pytest.raises(ValueError, match="UNK"):
        ds.factorised_embedding(weight, kept, unk_id=3, rank=4)


def test_intermediate_loss_is_zero_for_identical_states_and_matches_numpy():
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 8)  # (B, T, C)
    attention = torch.randn(2, 3, 5, 5)  # (B, H, T, T)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    attention = attention.masked_fill(mask[:, None, None, :] == 0, -1e9).softmax(-1)
    projection = ds.hidden_projection(8, 8)
    same = ds.intermediate_loss(hidden, hidden, attention, attention, mask, projection)
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    other_hidden = torch.randn(2, 5, 8)
    other = torch.randn(2, 3, 5, 5).masked_fill(mask[:, None, None, :] == 0, -1e9).softmax(-1)
    got = ds.intermediate_loss(other_hidden, hidden, other, attention, mask, projection)
    real = mask.numpy().astype(bool)
    mse = ((other_hidden - hidden).double().numpy() ** 2).mean(-1)[real].mean()
    t, s = attention.double().numpy(), other.double().numpy()
    positive = t > 0  # a zero teacher probability adds nothing
    terms = np.where(
        positive, t * (np.log(np.where(positive, t, 1)) - np.log(np.where(positive, s, 1))), 0
    )
    kl = terms.sum(-1).mean(1)[real].mean()  # (B, H, T) -> mean over heads, real queries
    assert got.item() == pytest.approx(mse + kl, abs=1e-5)


@pytest.fixture(scope="module")
def minilm_sized_teacher():
    """A randomly initialised classifier with MiniLM's shape (22.7M parameters)."""
    from transformers import AutoConfig, BertForSequenceClassification

    from dl2llm import models

    config = AutoConfig.from_pretrained(models.encoder_path(), num_labels=2)
    torch.manual_seed(0)
    return BertForSequenceClassification(config).eval()


def test_student_is_built_from_the_teacher_and_at_most_a_quarter(minilm_sized_teacher):
    teacher = minilm_sized_teacher
    kept = torch.arange(18_600)  # about what the sentiment data uses
    student = ds.make_student(teacher, kept, 100, layers=(0, 5), embedding_rank=96)
    share = count_parameters(student).total / count_parameters(teacher).total
    assert 0.2 < share <= 0.25
    for ours, theirs in [(0, 0), (1, 5)]:
        a = student.bert.encoder.layer[ours].state_dict()
        b = teacher.bert.encoder.layer[theirs].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in b)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert student.bert.embeddings.position_embeddings.weight.shape == (64, 384)
    with pytest.raises(ValueError, match="25%"):
        ds.make_student(teacher, kept, 100, layers=(0, 2, 5), embedding_rank=96)


def test_teacher_targets_drop_padding_exactly(tokenizer):
    teacher = tiny_bert_fine_tune().eval()
    texts = ["short", "a somewhat longer sentence about a film", "mid length text"]
    before = teacher.config._attn_implementation
    targets = ds.teacher_targets(teacher, tokenizer, texts, batch_size=3)
    assert teacher.config._attn_implementation == before  # restored after the pass
    teacher.set_attn_implementation("eager")
    with torch.no_grad():
        for i, text in enumerate(texts):
            out = teacher(
                **clf.encode(tokenizer, [text], 64, "cpu"),
                output_hidden_states=True,
                output_attentions=True,
            )
            assert torch.allclose(targets.logits[i], out.logits[0], atol=1e-5)
            assert torch.allclose(targets.hidden[i].float(), out.hidden_states[-1][0], atol=2e-3)
            assert torch.allclose(targets.attention[i].float(), out.attentions[-1][0], atol=2e-3)


def test_intermediate_distillation_pulls_the_student_to_the_teacher(tokenizer):
    teacher = tiny_bert_fine_tune().eval()
    texts = [f"review {i}: the film was {'good' if i % 3 else 'bad'}" for i in range(32)]
    targets = ds.teacher_targets(teacher, tokenizer, texts)
    kept = ds.kept_ids(tokenizer, texts)
    student = ds.make_student(teacher, kept, tokenizer.unk_token_id, layers=(1,), embedding_rank=8)
    config = ds.IntermediateConfig(epochs=6, batch_size=8, learning_rate=3e-3)
    losses = ds.distil_intermediate(student, tokenizer, texts, targets, config, log=print)
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0]


def test_compare_seeds_gain_interval_and_spread():
    got = d.compare_seeds([0.84, 0.85, 0.86], [0.82, 0.82, 0.83], resolution=0.001)
    assert got["gain_pts"] == pytest.approx(2.67, abs=1e-2)
    half = 4.302653 * np.std([2, 3, 3], ddof=1) / np.sqrt(3)
    assert got["gain_interval_pts"] == pytest.approx([2.667 - half, 2.667 + half], abs=1e-2)
    assert got["seed_spread_pts"] == pytest.approx(2.0)
    assert got["gain_over_seed_spread"] == pytest.approx(2.667 / 2.0, abs=1e-3)
    assert d.compare_seeds([0.8, 0.8], [0.8, 0.8], 0.001)["seed_spread_pts"] == 0.1


def test_logits_in_the_texts_order(tokenizer):
    student = tiny_bert_fine_tune().eval()
    texts = ["a long review " * (i % 7 + 1) for i in range(20)]
    got = d.teacher_logits(student, tokenizer, texts, batch_size=6)  # batched by length
    with torch.no_grad():
        one_by_one = torch.cat(
            [student(**clf.encode(tokenizer, [t], 64, "cpu")).logits for t in texts]
        )
    assert torch.allclose(got, one_by_one, atol=1e-5)


def test_distilled_student_moves_towards_the_teacher(tokenizer):
    """With alpha = 1 the labels are ignored: the student must learn the soft targets."""
    texts = [f"review {i}: the film was {'good' if i % 3 else 'bad'}" for i in range(48)]
    says_good = torch.tensor([float(i % 3 != 0) for i in range(48)])
    soft = torch.stack([-3 * (2 * says_good - 1), 3 * (2 * says_good - 1)], dim=1)  # (N, 2)
    noisy_labels = LabelledTexts(texts, [i % 2 for i in range(48)])  # unrelated to the teacher
    teacher_view = LabelledTexts(texts, says_good.long().tolist())
    student = tiny_bert_fine_tune()
    config = d.StudentConfig(epochs=8, batch_size=8, learning_rate=5e-3, alpha=1.0)

    def gap() -> float:
        logits = d.teacher_logits(student, tokenizer, texts)
        return d.distillation_loss(logits, soft, says_good.long(), 2.0, 1.0).item()

    before = gap()
    result = d.train_student(
        student, tokenizer, noisy_labels, soft, teacher_view, config, log=lambda _: None
    )
    assert len(result.history) == 8
    assert gap() < 0.75 * before
    assert result.best_val_accuracy == 1.0
