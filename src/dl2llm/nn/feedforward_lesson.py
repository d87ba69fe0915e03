"""Week 1 lesson: a feedforward sentiment classifier, four optimizers, and generalisation.

The experiments behind ``weeks/week1_foundations/feedforward_nn.py``:

1. TF-IDF features (unigrams + bigrams) of the Rotten Tomatoes snippets.
2. The linear baseline: logistic regression on the same features, ``C`` chosen on
   validation. A hidden layer is only worth having if it beats this.
3. The MLP tuned on validation only (width, dropout, AdamW weight decay, early stopping
   on validation loss), then trained with three seeds: test accuracy mean and spread,
   and its gain over the linear baseline in accuracy points.
4. A one-hidden-layer MLP in NumPy with hand-written backprop, trained with SGD + momentum.
5. The same MLP in PyTorch trained with our SGD, momentum, Adam and AdamW.
6. Under- and overfitting: a tiny network (2 leaky-ReLU units) vs a huge one, and the
   huge one with L2, dropout and early stopping; train/validation curves side by side.
7. Optionally the same network in Keras, from the same initial weights.

Dropout: Srivastava et al. (2014); AdamW: Loshchilov & Hutter (2019).
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
from dl2llm.nn.optimizers import OPTIMIZERS, Adam, AdamW
from dl2llm.plots import plot_curves


@dataclass
class FeedforwardConfig:
    """Sizes of the week 1 experiments (``quick()`` shrinks them for CI)."""

    max_features: int = 5000
    train_limit: int | None = None
    hidden: int = 64
    huge: tuple[int, ...] = (256, 256)
    epochs: int = 12
    capacity_epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    linear_c_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    tune_widths: tuple[int, ...] = (64, 256)
    tune_dropouts: tuple[float, ...] = (0.2, 0.5)
    tune_weight_decays: tuple[float, ...] = (0.01, 0.1)
    tune_epochs: int = 10
    n_seeds: int = 3
    train_eval_size: int = 2000

    @classmethod
    def quick(cls, seed: int = 0) -> FeedforwardConfig:
        return cls(max_features=800, train_limit=3000, hidden=32, huge=(128, 128), epochs=4,
                   capacity_epochs=3, seed=seed, linear_c_grid=(1.0, 4.0), tune_widths=(32,),
                   tune_dropouts=(0.5,), tune_weight_decays=(0.01,), tune_epochs=3,
                   n_seeds=2, train_eval_size=500)  # fmt: skip


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


def linear_baseline(data: Features, c_grid: tuple[float, ...]) -> dict:
    """Logistic regression on the same features, ``C`` chosen by validation accuracy."""
    from sklearn.linear_model import LogisticRegression

    x_train, y_train = data.x_train.numpy(), data.y_train.numpy()
    val_accuracy = {}
    for c in c_grid:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        val_accuracy[c] = clf.score(data.x_val.numpy(), data.y_val.numpy())
    best_c = max(val_accuracy, key=val_accuracy.get)
    clf = LogisticRegression(C=best_c, max_iter=2000).fit(x_train, y_train)
    return {
        "linear_c": best_c,
        "linear_val_accuracy": val_accuracy[best_c],
        "linear_test_accuracy": clf.score(data.x_test.numpy(), data.y_test.numpy()),
    }


def train_tuned_mlp(data: Features, config: FeedforwardConfig, setting: dict, seed: int):
    """One MLP with AdamW and early stopping on validation loss; returns ``(model, history)``."""
    torch.manual_seed(seed)
    model = MLP(data.x_train.shape[1], [setting["width"]], 2, dropout=setting["dropout"])
    optimizer = AdamW(model.parameters(), lr=config.lr, weight_decay=setting["weight_decay"])
    history = train_classifier(
        model, optimizer, (data.x_train, data.y_train), (data.x_val, data.y_val),
        epochs=config.tune_epochs, batch_size=config.batch_size, patience=2, seed=seed,
        desc=f"tune {setting}", monitor="val_loss", train_eval_size=config.train_eval_size,
    )  # fmt: skip
    return model, history


def tuned_mlp_experiment(data: Features, config: FeedforwardConfig) -> dict:
    """Grid search on validation loss (test never looked at), then the best setting x seeds."""
    grid = []
    for width in config.tune_widths:
        for dropout in config.tune_dropouts:
            for weight_decay in config.tune_weight_decays:
                setting = {"width": width, "dropout": dropout, "weight_decay": weight_decay}
                _, history = train_tuned_mlp(data, config, setting, config.seed)
                best = history.best_epoch
                grid.append({**setting, "epochs": best + 1,
                             "val_loss": history.val_loss[best],
                             "val_accuracy": history.val_acc[best]})  # fmt: skip
    chosen = min(grid, key=lambda row: row["val_loss"])
    setting = {k: chosen[k] for k in ("width", "dropout", "weight_decay")}
    seeds = [config.seed + i for i in range(config.n_seeds)]
    test, val = [], []
    for seed in seeds:
        model, history = train_tuned_mlp(data, config, setting, seed)
        val.append(history.val_acc[history.best_epoch])
        test.append(evaluate(model, data.x_test, data.y_test)[1])
    return {
        "mlp_grid": grid,
        "mlp_chosen": chosen,
        "mlp_seeds": seeds,
        "mlp_seed_val_accuracy": val,
        "mlp_seed_test_accuracy": test,
        "mlp_test_accuracy_mean": float(np.mean(test)),
        "mlp_test_accuracy_std": float(np.std(test)),
    }


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
        "tiny (2 leaky units)": dict(hidden=[2], dropout=0.0, l2=0.0, patience=None),
        "huge": dict(hidden=list(config.huge), dropout=0.0, l2=0.0, patience=None),
        "huge + L2": dict(hidden=list(config.huge), dropout=0.0, l2=1e-3, patience=None),
        "huge + too much L2": dict(hidden=list(config.huge), dropout=0.0, l2=1e-2, patience=None),
        "huge + dropout 0.5": dict(hidden=list(config.huge), dropout=0.5, l2=0.0, patience=None),
        "huge + early stopping": dict(hidden=list(config.huge), dropout=0.0, l2=0.0, patience=2),
    }
    results = {}
    for name, run in runs.items():
        torch.manual_seed(config.seed)
        slope = 0.1 if name.startswith("tiny") else 0.0
        model = MLP(data.x_train.shape[1], run["hidden"], 2, run["dropout"], slope)
        optimizer = Adam(model.parameters(), lr=config.lr, weight_decay=run["l2"])
        history = train_classifier(
            model, optimizer, (data.x_train, data.y_train), (data.x_val, data.y_val),
            epochs=config.capacity_epochs, batch_size=config.batch_size,
            patience=run["patience"], seed=config.seed, desc=name,
            train_eval_size=config.train_eval_size,
        )  # fmt: skip
        train_acc = evaluate(model, data.x_train, data.y_train)[1]
        _, test_acc = evaluate(model, data.x_test, data.y_test)
        results[name] = {"history": history, "train_accuracy": train_acc, "test_accuracy": test_acc}
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
    metrics.update(linear_baseline(data, config.linear_c_grid))
    metrics.update(tuned_mlp_experiment(data, config))
    linear = metrics["linear_test_accuracy"]
    metrics["test_accuracy"] = metrics["mlp_test_accuracy_mean"]
    metrics["mlp_gain_over_linear_pts"] = (metrics["mlp_test_accuracy_mean"] - linear) * 100
    metrics["mlp_gain_over_linear_pts_per_seed"] = [
        (acc - linear) * 100 for acc in metrics["mlp_seed_test_accuracy"]
    ]
    metrics.update(numpy_experiment(data, config))

    optimizers, optimizer_test = optimizer_experiment(data, config)
    metrics["optimizer_val_accuracy"] = {k: h.val_acc[-1] for k, h in optimizers.items()}
    metrics["optimizer_test_accuracy"] = optimizer_test
    plot_curves(
        {name: h.val_loss for name, h in optimizers.items()},
        "Our optimizers on the same MLP (validation loss)", "cross-entropy",
        out / "feedforward_nn_optimizers.png",
    )  # fmt: skip

    capacity = capacity_experiment(data, config)
    metrics["capacity"] = {
        name: {
            "train_accuracy": r["train_accuracy"],
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
