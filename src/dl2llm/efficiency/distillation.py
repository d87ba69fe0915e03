"""Knowledge distillation: train a small student to imitate a large teacher.

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network": a trained
teacher's output distribution carries more than its argmax -- *how* wrong the wrong classes
are ("dark knowledge"). Softened with a temperature ``T``, ``p_T = softmax(z / T)``, those
soft targets give the student a richer signal per example than a one-hot label. The loss::

    L = alpha * T^2 * KL(p_T(teacher) || p_T(student)) + (1 - alpha) * CE(student, labels)

The ``T^2`` keeps the soft term's gradients on the scale of the hard term's as ``T`` grows
(the gradient of the softened KL shrinks as ``1 / T^2``). ``alpha = 0`` is plain training.

Teacher: the week 3 fine-tuned MiniLM (6 layers, 384 wide, 22.7M parameters). Student: at
most a quarter of its parameters, built from the teacher itself -- pruned vocabulary,
factorised embedding, two of its layers -- and first trained to match the teacher's hidden
states and attention maps on unlabelled text (:mod:`dl2llm.efficiency.distillation_student`).
This module holds the second, prediction-layer stage (:func:`train_student`).

Transfer set: the teacher was fine-tuned on the very sentences the student is trained on,
so there its outputs add little to the labels. Soft targets pay on text the labels do not
cover -- Hinton et al.'s transfer set. :func:`transfer_set` adds perturbed, unlabelled
copies of the training sentences (Tang et al., 2019, :func:`augment`) and real unlabelled
text of a nearby kind (other review snippets, editorials, tweets); label
:data:`UNLABELLED` keeps them out of the cross-entropy.

Is the distilled student better than the same student trained on the labels alone? One run
each cannot say: :func:`compare_seeds` sets the gain against the spread over seeds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from dl2llm import classification as clf
from dl2llm.assets import AssetError
from dl2llm.batching import length_grouped_batches
from dl2llm.data import LabelledTexts, sentiment_splits
from dl2llm.efficiency.quantization import length_order
from dl2llm.prompting import seed_interval

UNLABELLED = -100  # label of a transfer text: the teacher's logits are its only target


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> Tensor:
    """Hinton et al.'s loss: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE``.

    ``student_logits`` and ``teacher_logits`` are ``(B, K)``; ``labels`` is ``(B,)``. The KL
    term averages over the whole batch, the cross-entropy over the labelled examples only
    (label :data:`UNLABELLED` marks a transfer text; a batch without labels has no CE term).
    """
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"need temperature > 0 and alpha in [0, 1], got {temperature}, {alpha}")
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)  # (B, K)
    teacher_probs = F.softmax(teacher_logits / temperature, dim=-1)  # (B, K)
    soft = F.kl_div(student_log_probs, teacher_probs, reduction="batchmean")
    labelled = labels != UNLABELLED  # (B,)
    hard = (
        F.cross_entropy(student_logits[labelled], labels[labelled])
        if labelled.any()
        else student_logits.new_zeros(())
    )
    return alpha * temperature**2 * soft + (1 - alpha) * hard


def load_teacher(quick: bool = False, seed: int = 0, log: Callable[[str], None] = print):
    """``(model, tokenizer)``: the week 3 fine-tuned MiniLM.

    In quick mode, if ``bert_fine_tuning --quick`` has not run yet, a quick teacher is
    fine-tuned here (64 sentences, 1 epoch) and saved where that script would save it.
    """
    try:
        return clf.load_sentiment_classifier(quick)
    except AssetError:
        if not quick:
            raise
    log("no quick teacher yet: fine-tuning MiniLM on 64 sentences")
    splits = sentiment_splits()
    model, tokenizer = clf.load_base_classifier()
    config = clf.FineTuneConfig(epochs=1, max_length=32)
    clf.fine_tune(
        model,
        tokenizer,
        splits["train"].head(64),
        splits["val"].head(32),
        config,
        seed=seed,
        log=log,
    )
    clf.save_classifier(model, tokenizer, clf.classifier_dir(quick=True))
    return model.eval(), tokenizer


@torch.no_grad()
def teacher_logits(
    teacher: nn.Module, tokenizer, texts: list[str], max_length: int = 64, batch_size: int = 64
) -> Tensor:
    """A classifier's logits ``(N, K)`` for every text, in order (batched by length).

    For the teacher they are computed once and reused every epoch.
    """
    teacher.eval()
    order = torch.from_numpy(length_order(tokenizer, texts, max_length))
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), desc="logits", leave=False):
        batch = [texts[i] for i in order[start : start + batch_size].tolist()]
        chunks.append(teacher(**clf.encode(tokenizer, batch, max_length, "cpu")).logits)  # (B, K)
    return torch.cat(chunks)[order.argsort()]  # back to the order of ``texts``


def augment(
    texts: list[str],
    copies: int,
    mask_token: str,
    p_mask: float = 0.1,
    p_ngram: float = 0.25,
    seed: int = 0,
) -> list[str]:
    """``copies`` perturbed versions of every text: a transfer set for distillation.

    Tang et al. (2019), "Distilling Task-Specific Knowledge from BERT into Simple Neural
    Networks", section 3.3: each word becomes ``mask_token`` with probability ``p_mask``;
    then, with probability ``p_ngram``, only a random n-gram (n from 1 to 5) of the text is
    kept. (Their third rule, swapping a word for one of the same part of speech, needs a
    tagger and is left out.) The perturbed texts have no labels; the teacher supplies their
    targets. Returned copy by copy: ``copies * len(texts)`` texts.
    """
    rng = np.random.default_rng(seed)
    augmented = []
    for _ in range(copies):
        for text in texts:
            words = [mask_token if rng.random() < p_mask else w for w in text.split()]
            if rng.random() < p_ngram and len(words) > 1:
                n = int(rng.integers(1, min(5, len(words)) + 1))
                start = int(rng.integers(0, len(words) - n + 1))
                words = words[start : start + n]
            augmented.append(" ".join(words))
    return augmented


def transfer_set(
    train: LabelledTexts,
    copies: int,
    mask_token: str,
    seed: int = 0,
    unlabelled: Sequence[str] = (),
) -> LabelledTexts:
    """The distillation transfer set: the training texts, then texts without labels.

    After ``train`` come ``copies`` :func:`augment` versions of each of its texts, then the
    real ``unlabelled`` texts (e.g. :func:`dl2llm.data.unlabelled_sentiment_texts`); all
    of them are labelled :data:`UNLABELLED`.
    """
    extra = augment(train.texts, copies, mask_token, seed=seed) + list(unlabelled)
    return LabelledTexts(train.texts + extra, train.labels + [UNLABELLED] * len(extra))


@dataclass(frozen=True)
class StudentConfig:
    """How a student is trained; ``alpha = 0`` means no distillation."""

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    temperature: float = 2.0
    alpha: float = 0.5
    max_length: int = 64


@dataclass
class StudentResult:
    """Validation accuracy per epoch; the student holds the best epoch's weights."""

    best_epoch: int = 0
    best_val_accuracy: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)


def train_student(
    student: nn.Module,
    tokenizer,
    train: LabelledTexts,
    soft_targets: Tensor,
    val: LabelledTexts,
    config: StudentConfig,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> StudentResult:
    """Train ``student`` in place on ``train`` with :func:`distillation_loss`.

    ``soft_targets`` are the teacher's logits ``(N, K)`` for ``train``; texts labelled
    :data:`UNLABELLED` only enter the soft term. The batches
    (:func:`dl2llm.batching.length_grouped_batches`) depend only on ``seed`` and the texts,
    so a distilled and an undistilled run see the same batches.
    """
    steps_per_epoch = -(-len(train) // config.batch_size)
    total = steps_per_epoch * config.epochs
    optimizer = clf.adamw_with_decay_groups(student, config.learning_rate, config.weight_decay)
    scheduler = clf.warmup_linear_scheduler(optimizer, int(config.warmup_fraction * total), total)
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor(train.labels)
    ids = tokenizer(train.texts, truncation=True, max_length=config.max_length)["input_ids"]
    lengths = torch.tensor([len(row) for row in ids])
    result, best_state = StudentResult(), copy.deepcopy(student.state_dict())
    for epoch in range(1, config.epochs + 1):
        student.train()
        running = 0.0
        epoch_batches = length_grouped_batches(
            lengths, config.batch_size, generator, pool_batches=50
        )
        for idx in tqdm(epoch_batches, desc="student", leave=False):
            texts = [train.texts[i] for i in idx.tolist()]
            logits = student(**clf.encode(tokenizer, texts, config.max_length, "cpu")).logits
            loss = distillation_loss(
                logits, soft_targets[idx], labels[idx], config.temperature, config.alpha
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item() * len(idx)
        predicted = teacher_logits(student, tokenizer, val.texts, config.max_length).argmax(1)
        val_accuracy = float(np.mean(predicted.numpy() == np.asarray(val.labels)))
        result.history.append(
            {"epoch": epoch, "train_loss": running / len(train), "val_accuracy": val_accuracy}
        )
        log(f"epoch {epoch}: loss {running / len(train):.4f}, val accuracy {val_accuracy:.4f}")
        if val_accuracy > result.best_val_accuracy:
            result.best_epoch, result.best_val_accuracy = epoch, val_accuracy
            best_state = copy.deepcopy(student.state_dict())
    student.load_state_dict(best_state)
    student.eval()
    return result


def compare_seeds(
    distilled: Sequence[float], undistilled: Sequence[float], resolution: float
) -> dict:
    """Mean gain of ``distilled`` over ``undistilled`` accuracies (one per seed), in points.

    The runs are paired by seed (same batches). ``gain_interval_pts`` is the 95% Student-t
    interval of the mean paired difference; ``seed_spread_pts`` the larger max-minus-min
    of the two groups, at least ``resolution`` (one test example, as a fraction);
    ``gain_over_seed_spread > 1`` means the gain exceeds that spread.
    """
    if len(distilled) != len(undistilled) or len(distilled) < 2:
        raise ValueError("need the same number (>= 2) of distilled and undistilled seeds")
    d, u = np.asarray(distilled), np.asarray(undistilled)
    gain, low, high = seed_interval(100 * (d - u))  # paired by seed
    spread = 100 * max(np.ptp(d), np.ptp(u), resolution)
    return {
        "gain_pts": round(gain, 2),
        "gain_interval_pts": [round(low, 2), round(high, 2)],
        "seed_spread_pts": round(float(spread), 2),
        "gain_over_seed_spread": round(gain / spread, 3),
    }
