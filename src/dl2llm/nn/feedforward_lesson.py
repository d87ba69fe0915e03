"""Week 1 lesson: a feedforward sentiment classifier, four optimizers, and generalisation.

The experiments behind ``weeks/week1_foundations/feedforward_nn.py``:

1. TF-IDF features (unigrams + bigrams) of the Rotten Tomatoes snippets.
2. A one-hidden-layer MLP in NumPy with hand-written backprop, trained with SGD + momentum.
3. The same MLP in PyTorch trained with our SGD, momentum, Adam and AdamW.
4. Under- and overfitting: a tiny network vs a huge one, and the huge one with L2,
   dropout and early stopping; train/validation curves side by side.
5. Optionally the same network in Keras, from the same initial weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from dl2llm.data import sentiment_splits
from dl2llm.nn.mlp import MLP, History, epoch_orders, evaluate, train_classifier
from dl2llm.nn.mlp_numpy import NumpyMLP, train_numpy_mlp
from dl2llm.nn.optimizers import OPTIMIZERS, Adam
from dl2llm.plots import plot_curves


@dataclass
class FeedforwardConfig:
    """Sizes of the week 1 experiments (``quick()`` shrinks them for CI)."""

    max_features: int = 5000
    train_limit: int | None = None
    hidden: int = 64
    huge: tuple[int, ...] = (1024, 1024)
    epochs: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> FeedforwardConfig:
        return cls(max_features=800, train_limit=3000, hidden=32, huge=(256, 256), epochs=4,
                   seed=seed)  # fmt: skip


@dataclass
class Features:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def tfidf_features(config: FeedforwardConfig) -> Features:
    """TF-IDF matrices of the sentiment splits (the vectorizer is fit on train only)."""
    splits = sentiment_splits()
    train = (
        splits["train"] if config.train_limit is None else splits["train"].head(config.train_limit)
    )
    vectorizer = TfidfVectorizer(
        max_features=config.max_features, ngram_range=(1, 2), sublinear_tf=True, min_df=2
    )
    x_train = vectorizer.fit_transform(train.texts)

    def dense(matrix) -> torch.Tensor:
        return torch.from_numpy(matrix.toarray().astype(np.float32))

    def labels(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long)

    return Features(
        dense(x_train), labels(train.labels),
        dense(vectorizer.transform(splits["val"].texts)), labels(splits["val"].labels),
        dense(vectorizer.transform(splits["test"].texts)), labels(splits["test"].labels),
    )  # fmt: skip


def numpy_experiment(data: Features, config: FeedforwardConfig) -> dict:
    """Train the NumPy MLP (hand-written backprop) and report its accuracy."""
    model = NumpyMLP([data.x_train.shape[1], config.hidden, 2], seed=config.seed)
    losses = train_numpy_mlp(
        model, data.x_train.numpy(), data.y_train.numpy(), epochs=config.epochs,
        lr=0.05, momentum=0.9, batch_size=config.batch_size, seed=config.seed,
    )  # fmt: skip
    accuracy = float((model.predict(data.x_test.numpy()) == data.y_test.numpy()).mean())
    return {"numpy_train_loss": losses, "numpy_test_accuracy": accuracy}


OPTIMIZER_LR = {"sgd": 0.5, "momentum": 0.05, "adam": 1e-3, "adamw": 1e-3}


def optimizer_experiment(
    data: Features, config: FeedforwardConfig
) -> tuple[dict[str, History], dict[str, float]]:
    """The same MLP and initial weights trained by each of our four optimizers.

    Returns the curves and the test accuracy of each.
    """
    histories, test_accuracy = {}, {}
    for name, make in OPTIMIZERS.items():
        torch.manual_seed(config.seed)
        model = MLP(data.x_train.shape[1], [config.hidden], 2)
        histories[name] = train_classifier(
            model, make(model.parameters(), OPTIMIZER_LR[name]),
            (data.x_train, data.y_train), (data.x_val, data.y_val),
            epochs=config.epochs, batch_size=config.batch_size, seed=config.seed, desc=name,
        )  # fmt: skip
        test_accuracy[name] = evaluate(model, data.x_test, data.y_test)[1]
    return histories, test_accuracy


def capacity_experiment(data: Features, config: FeedforwardConfig) -> dict[str, dict]:
    """Tiny vs huge networks, three cures for overfitting, and one cure overdone.

    Too much L2 underfits: the penalty outweighs the data and both train and
    validation accuracy stay low.
    """
    runs = {
        "tiny (1 hidden unit)": dict(hidden=[1], dropout=0.0, l2=0.0, patience=None),
        "huge": dict(hidden=list(config.huge), dropout=0.0, l2=0.0, patience=None),
        "huge + L2": dict(hidden=list(config.huge), dropout=0.0, l2=1e-3, patience=None),
        "huge + too much L2": dict(hidden=list(config.huge), dropout=0.0, l2=1e-2, patience=None),
        "huge + dropout 0.5": dict(hidden=list(config.huge), dropout=0.5, l2=0.0, patience=None),
        "huge + early stopping": dict(hidden=list(config.huge), dropout=0.0, l2=0.0, patience=2),
    }
    results = {}
    for name, run in runs.items():
        torch.manual_seed(config.seed)
        model = MLP(data.x_train.shape[1], run["hidden"], 2, dropout=run["dropout"])
        optimizer = Adam(model.parameters(), lr=config.lr, weight_decay=run["l2"])
        history = train_classifier(
            model, optimizer, (data.x_train, data.y_train), (data.x_val, data.y_val),
            epochs=config.epochs, batch_size=config.batch_size, patience=run["patience"],
            seed=config.seed, desc=name,
        )  # fmt: skip
        _, test_acc = evaluate(model, data.x_test, data.y_test)
        results[name] = {"history": history, "test_accuracy": test_acc}
    return results


def keras_experiment(data: Features, config: FeedforwardConfig) -> dict:
    """The baseline MLP trained in PyTorch and in Keras from the same weights and batches."""
    from dl2llm.nn.keras_mlp import keras_accuracy, keras_twin, train_keras

    torch.manual_seed(config.seed)
    model = MLP(data.x_train.shape[1], [config.hidden], 2)
    twin = keras_twin(model, config.lr)
    train_classifier(
        model, Adam(model.parameters(), lr=config.lr), (data.x_train, data.y_train),
        (data.x_val, data.y_val), epochs=config.epochs, batch_size=config.batch_size,
        seed=config.seed, desc="torch twin",
    )  # fmt: skip
    orders = [o.numpy() for o in epoch_orders(len(data.y_train), config.epochs, config.seed)]
    train_keras(twin, data.x_train.numpy(), data.y_train.numpy(), orders, config.batch_size)
    torch_acc = evaluate(model, data.x_test, data.y_test)[1]
    keras_acc = keras_accuracy(twin, data.x_test.numpy(), data.y_test.numpy())
    return {
        "torch_twin_test_accuracy": torch_acc,
        "keras_test_accuracy": keras_acc,
        "keras_gap_points": abs(keras_acc - torch_acc) * 100,
    }


def run_lesson(config: FeedforwardConfig, out: Path, keras: bool = False) -> tuple[dict, list]:
    """Run every experiment; returns ``(metrics, artifact file names)`` and writes plots."""
    data = tfidf_features(config)
    metrics: dict = {"n_train": len(data.y_train), "n_features": data.x_train.shape[1]}
    metrics.update(numpy_experiment(data, config))

    optimizers, optimizer_test = optimizer_experiment(data, config)
    metrics["optimizer_val_accuracy"] = {k: h.val_acc[-1] for k, h in optimizers.items()}
    metrics["optimizer_test_accuracy"] = optimizer_test
    metrics["test_accuracy"] = optimizer_test["adam"]
    plot_curves(
        {name: h.val_loss for name, h in optimizers.items()},
        "Our optimizers on the same MLP (validation loss)", "cross-entropy",
        out / "feedforward_nn_optimizers.png",
    )  # fmt: skip

    capacity = capacity_experiment(data, config)
    metrics["capacity"] = {
        name: {
            "train_accuracy": r["history"].train_acc[r["history"].best_epoch]
            if r["history"].stopped_early else r["history"].train_acc[-1],
            "val_accuracy": max(r["history"].val_acc) if r["history"].stopped_early
            else r["history"].val_acc[-1],
            "test_accuracy": r["test_accuracy"],
            "epochs_run": len(r["history"].val_acc),
        }
        for name, r in capacity.items()
    }  # fmt: skip
    curves = {}
    for name, r in capacity.items():
        curves[f"{name} (train)"] = r["history"].train_acc
        curves[f"{name} (val)"] = r["history"].val_acc
    plot_curves(
        curves, "Under- and overfitting: train (dashed) vs validation accuracy", "accuracy",
        out / "feedforward_nn_generalization.png",
    )  # fmt: skip
    if keras:
        metrics.update(keras_experiment(data, config))
    return metrics, ["feedforward_nn_optimizers.png", "feedforward_nn_generalization.png"]
