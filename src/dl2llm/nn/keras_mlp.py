"""The week 1 classifier in TensorFlow/Keras: the same network, another framework.

Keras' ``Dense`` stores its kernel as ``(in, out)`` while ``torch.nn.Linear`` stores
``(out, in)``, so copying a PyTorch MLP's initial weights into Keras is a
transpose. With the same initial weights, the same batches in the same order and
the same optimizer, both frameworks should land on (almost) the same accuracy;
the differences left are floating-point order and Adam's epsilon placement.
Needs the ``tf`` extra (``pip install -e .[tf]``).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from dl2llm.runtime import UsageError


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError as err:
        raise UsageError(
            "--backend keras needs TensorFlow: run `pip install -e .[tf]` (or `make setup-tf`)"
        ) from err
    return keras


def keras_twin(torch_mlp: torch.nn.Module, lr: float):
    """A compiled Keras model with the architecture and current weights of ``torch_mlp``."""
    keras = _keras()
    linears = [m for m in torch_mlp.modules() if isinstance(m, torch.nn.Linear)]
    model = keras.Sequential([keras.Input(shape=(linears[0].in_features,))])
    for i, linear in enumerate(linears):
        activation = "relu" if i < len(linears) - 1 else None
        model.add(keras.layers.Dense(linear.out_features, activation=activation))
    for dense, linear in zip(model.layers, linears, strict=True):
        weight = linear.weight.detach().numpy().T  # (out, in) -> (in, out)
        dense.set_weights([weight, linear.bias.detach().numpy()])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def train_keras(
    model, x_train: np.ndarray, y_train: np.ndarray, orders: list[np.ndarray], batch_size: int
) -> None:
    """One ``fit`` call per epoch over the given example order (the PyTorch run's order)."""
    for order in orders:
        model.fit(
            x_train[order], y_train[order], batch_size=batch_size, epochs=1, shuffle=False,
            verbose=0,
        )  # fmt: skip


def keras_accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of a Keras classifier."""
    logits = model.predict(x, verbose=0, batch_size=1024)
    return float((logits.argmax(axis=1) == y).mean())
