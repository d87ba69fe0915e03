"""A feedforward network in NumPy, with backpropagation written by hand.

A multi-layer perceptron computes ``h_1 = relu(x W_1 + b_1)``, ...,
``logits = h_{L-1} W_L + b_L`` and is trained by minimising the softmax
cross-entropy. Backpropagation (Rumelhart, Hinton & Williams, 1986) is the
chain rule applied layer by layer from the loss back to the input::

    dlogits = softmax(logits) - onehot(y)          # (B, C), divided by B
    dW_L = h_{L-1}^T dlogits,  db_L = sum(dlogits)  # (H, C), (C,)
    dh_{L-1} = dlogits W_L^T * [h_{L-1} > 0]        # back through the ReLU

:func:`numerical_gradient` checks it against finite differences, and the tests
check it against ``torch.autograd``. ``x`` may be a dense array or a SciPy
sparse matrix (TF-IDF features are sparse).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer labels ``y`` and its gradient w.r.t. ``logits``.

    >>> loss, grad = softmax_cross_entropy(np.zeros((1, 2)), np.array([0]))
    >>> round(loss, 4), grad.tolist()
    (0.6931, [[-0.5, 0.5]])
    """
    shifted = logits - logits.max(axis=1, keepdims=True)  # (B, C), for stability
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    batch = np.arange(len(y))
    loss = -log_probs[batch, y].mean()
    grad = np.exp(log_probs)  # softmax, (B, C)
    grad[batch, y] -= 1.0
    return float(loss), grad / len(y)


@dataclass
class NumpyMLP:
    """An MLP ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ReLU between layers."""

    sizes: list[int]
    seed: int = 0
    dtype: type = np.float32
    weights: list[np.ndarray] = field(init=False)
    biases: list[np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            scale = np.sqrt(2.0 / fan_in)  # He initialisation for ReLU
            self.weights.append((rng.standard_normal((fan_in, fan_out)) * scale).astype(self.dtype))
            self.biases.append(np.zeros(fan_out, dtype=self.dtype))

    @property
    def params(self) -> list[np.ndarray]:
        """All parameters, weights and biases interleaved per layer."""
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def forward(self, x) -> tuple[np.ndarray, list]:
        """Logits ``(B, C)`` and the activations backprop needs."""
        activations = [x]
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = h @ w + b  # (B, out)
            h = np.maximum(z, 0.0) if i < len(self.weights) - 1 else z
            activations.append(h)
        return h, activations

    def loss_and_grads(self, x, y: np.ndarray, l2: float = 0.0) -> tuple[float, list[np.ndarray]]:
        """Loss (+ ``l2/2 * sum W^2``) and gradients in the order of :attr:`params`."""
        logits, activations = self.forward(x)
        loss, delta = softmax_cross_entropy(logits, y)  # delta: (B, C)
        grads: list[np.ndarray] = []
        for i in reversed(range(len(self.weights))):
            h_in = activations[i]  # (B, in)
            grad_w = np.asarray(h_in.T @ delta) + l2 * self.weights[i]  # (in, out)
            grad_b = delta.sum(axis=0)  # (out,)
            grads = [grad_w.astype(self.dtype), grad_b.astype(self.dtype), *grads]
            if i > 0:
                delta = (delta @ self.weights[i].T) * (activations[i] > 0)  # ReLU'
        if l2:
            loss += 0.5 * l2 * sum(float((w**2).sum()) for w in self.weights)
        return loss, grads

    def predict(self, x) -> np.ndarray:
        """Predicted class per row."""
        return self.forward(x)[0].argmax(axis=1)


def numerical_gradient(
    loss_fn: Callable[[], float], param: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central finite differences ``(f(p + eps) - f(p - eps)) / 2 eps``, one entry at a time."""
    grad = np.zeros_like(param, dtype=np.float64)
    for index in np.ndindex(param.shape):
        original = param[index]
        param[index] = original + eps
        plus = loss_fn()
        param[index] = original - eps
        minus = loss_fn()
        param[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def train_numpy_mlp(
    model: NumpyMLP,
    x,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float = 0.1,
    momentum: float = 0.9,
    batch_size: int = 64,
    l2: float = 0.0,
    seed: int = 0,
) -> list[float]:
    """Mini-batch SGD with momentum; returns the mean training loss per epoch."""
    rng = np.random.default_rng(seed)
    velocity = [np.zeros_like(p) for p in model.params]
    history = []
    for _ in range(epochs):
        order = rng.permutation(x.shape[0])
        losses = []
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss, grads = model.loss_and_grads(x[batch], y[batch], l2)
            for param, grad, vel in zip(model.params, grads, velocity, strict=True):
                vel *= momentum
                vel += grad
                param -= lr * vel
            losses.append(loss)
        history.append(float(np.mean(losses)))
    return history
