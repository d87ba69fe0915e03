"""Week 3 lesson: fine-tune MiniLM for sentiment and compare it with two cheaper baselines.

The experiment behind ``weeks/week3_embeddings/bert_fine_tuning.py``: fine-tune
all-MiniLM-L6-v2 on the Rotten Tomatoes snippets with our own loop
(:func:`dl2llm.classification.fine_tune`, checkpointed per epoch), save it where later
weeks load it, and score it on the test split next to TF-IDF + logistic regression and
logistic regression on frozen sentence embeddings: accuracy, F1 and confusion matrices,
with the confusion matrices and the training curves plotted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dl2llm import classification as clf
from dl2llm.data import LabelledTexts, sentiment_splits
from dl2llm.plots import plt, save_figure

NAME = "bert_fine_tuning"
QUICK_SIZES = {"train": 64, "val": 32, "test": 64}
THREADS = 2
# the three models of the comparison: table title -> prefix of their metric keys
MODELS = {
    "fine-tuned MiniLM": "test",
    "TF-IDF + LR": "tfidf_test",
    "frozen MiniLM + LR": "frozen_embedding_test",
}


def lesson_splits(quick: bool) -> dict[str, LabelledTexts]:
    """The sentiment splits (quick mode: the first :data:`QUICK_SIZES` texts of each)."""
    splits = sentiment_splits()
    if quick:
        splits = {name: splits[name].head(n) for name, n in QUICK_SIZES.items()}
    return splits


def lesson_config(
    quick: bool, epochs: int, batch_size: int, learning_rate: float, max_length: int
) -> clf.FineTuneConfig:
    """The flags as a :class:`~dl2llm.classification.FineTuneConfig` (quick: 1 epoch, 32 tokens)."""
    return clf.FineTuneConfig(
        epochs=1 if quick else epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_length=32 if quick else max_length,
    )


def plot_confusions(confusions: dict[str, list[list[int]]], path: Path) -> Path:
    """One confusion matrix per model (rows: true label, columns: predicted)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, axes = plt.subplots(1, len(confusions), figsize=(4 * len(confusions), 3.6))
    for ax, (title, matrix) in zip(axes, confusions.items(), strict=True):
        display = ConfusionMatrixDisplay(np.array(matrix), display_labels=clf.LABELS)
        display.plot(ax=ax, colorbar=False)
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120, bbox_inches=None)


def plot_curves(history: list[dict[str, float]], path: Path) -> Path:
    """Training loss and validation accuracy per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="training loss")
    right.plot(epochs, [h["val_accuracy"] for h in history], marker="o")
    right.set(xlabel="epoch", ylabel="validation accuracy")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120, bbox_inches=None)


def run_lesson(
    splits: dict[str, LabelledTexts],
    config: clf.FineTuneConfig,
    device: torch.device,
    seed: int,
    out: Path,
    quick: bool,
) -> tuple[dict[str, Any], list[str]]:
    """Fine-tune on :data:`THREADS` CPU threads, save the model, score all three models.

    Training resumes from ``out/checkpoints/bert_fine_tuning[-quick].pt`` after a killed
    run. The model goes to :func:`~dl2llm.classification.classifier_dir`. Returns
    ``(metrics, artifacts)``; the :data:`MODELS` prefixes name each model's accuracy and F1.
    """
    torch.set_num_threads(THREADS)
    model, tokenizer = clf.load_base_classifier()
    checkpoint = out / "checkpoints" / f"{NAME}{'-quick' if quick else ''}.pt"
    tuned = clf.fine_tune(
        model, tokenizer, splits["train"], splits["val"], config, device, seed, checkpoint
    )
    clf.save_classifier(model, tokenizer, clf.classifier_dir(quick))
    test = splits["test"]
    probs = clf.predict_proba(model, tokenizer, test.texts, config.max_length, device=device)
    scores = {  # title -> accuracy, F1, confusion on the test split
        "fine-tuned MiniLM": clf.classification_metrics(test.labels, probs.argmax(1)),
        "TF-IDF + LR": clf.classification_metrics(
            test.labels, clf.tfidf_baseline(splits["train"], splits["val"], test)
        ),
        "frozen MiniLM + LR": clf.classification_metrics(
            test.labels, clf.frozen_embedding_baseline(splits["train"], splits["val"], test)
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    artifacts = [f"{NAME}_confusion.png", f"{NAME}_curves.png"]
    plot_confusions({t: m["confusion"] for t, m in scores.items()}, out / artifacts[0])
    plot_curves(tuned.history, out / artifacts[1])
    fine, tfidf, frozen = scores.values()
    metrics = {
        "test_accuracy": fine["accuracy"],
        "test_f1": fine["f1"],
        "test_confusion": fine["confusion"],
        "tfidf_test_accuracy": tfidf["accuracy"],
        "tfidf_test_f1": tfidf["f1"],
        "frozen_embedding_test_accuracy": frozen["accuracy"],
        "frozen_embedding_test_f1": frozen["f1"],
        "best_epoch": tuned.best_epoch,
        "best_val_accuracy": tuned.best_val_accuracy,
        "history": tuned.history,
        "n_train": len(splits["train"]),
        "n_test": len(test),
    }
    return metrics, artifacts
