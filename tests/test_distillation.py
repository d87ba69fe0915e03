"""Knowledge distillation: the loss equals a hand computation; the student is small.

Tolerances: loss values within 1e-6 of a float64 NumPy computation of the same formula.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dl2llm.data import LabelledTexts
from dl2llm.efficiency import distillation as d
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
def minilm_sized_teacher():
    """A randomly initialised classifier with MiniLM's shape (22.7M parameters)."""
    from transformers import AutoConfig, BertForSequenceClassification

    from dl2llm import models

    config = AutoConfig.from_pretrained(models.encoder_path(), num_labels=2)
    torch.manual_seed(0)
    return BertForSequenceClassification(config).eval()


def test_student_is_at_most_a_quarter_of_the_teacher(minilm_sized_teacher):
    student = d.make_student(minilm_sized_teacher)
    share = count_parameters(student).total / count_parameters(minilm_sized_teacher).total
    assert share <= 0.25
    assert student.config.vocab_size == minilm_sized_teacher.config.vocab_size
    assert student.config.num_hidden_layers == 4 and student.config.hidden_size == 128
    teacher_words = minilm_sized_teacher.bert.embeddings.word_embeddings.weight
    student_words = student.bert.embeddings.word_embeddings.weight
    # PCA keeps the geometry: nearby words in the teacher stay nearby in the student
    teacher_sim = F.cosine_similarity(teacher_words[:200, None], teacher_words[None, :200], dim=-1)
    student_sim = F.cosine_similarity(student_words[:200, None], student_words[None, :200], dim=-1)
    assert np.corrcoef(teacher_sim.flatten().detach(), student_sim.flatten().detach())[0, 1] > 0.5
    with pytest.raises(ValueError, match="25%"):
        d.make_student(minilm_sized_teacher, hidden=256, layers=2, heads=4)


def test_logits_in_the_texts_order(minilm_sized_teacher):
    from transformers import AutoTokenizer

    from dl2llm import classification as clf
    from dl2llm import models

    tokenizer = AutoTokenizer.from_pretrained(models.encoder_path())
    student = d.make_student(minilm_sized_teacher, hidden=32, layers=1, heads=1).eval()
    texts = ["a long review " * (i % 7 + 1) for i in range(20)]
    got = d.teacher_logits(student, tokenizer, texts, batch_size=6)  # batched by length
    with torch.no_grad():
        one_by_one = torch.cat(
            [student(**clf.encode(tokenizer, [t], 64, "cpu")).logits for t in texts]
        )
    assert torch.allclose(got, one_by_one, atol=1e-5)


def test_distilled_student_moves_towards_the_teacher(minilm_sized_teacher):
    """With alpha = 1 the labels are ignored: the student must learn the soft targets."""
    from transformers import AutoTokenizer

    from dl2llm import models

    tokenizer = AutoTokenizer.from_pretrained(models.encoder_path())
    texts = [f"review {i}: the film was {'good' if i % 3 else 'bad'}" for i in range(48)]
    says_good = torch.tensor([float(i % 3 != 0) for i in range(48)])
    soft = torch.stack([-3 * (2 * says_good - 1), 3 * (2 * says_good - 1)], dim=1)  # (N, 2)
    noisy_labels = LabelledTexts(texts, [i % 2 for i in range(48)])  # unrelated to the teacher
    teacher_view = LabelledTexts(texts, says_good.long().tolist())
    student = d.make_student(minilm_sized_teacher, hidden=32, layers=1, heads=1)
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
