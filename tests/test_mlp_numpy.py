"""Hand-written backprop: finite differences and torch autograd agree with it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch

from dl2llm.nn.mlp_numpy import NumpyMLP, numerical_gradient, softmax_cross_entropy


def tiny_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 5))
    y = rng.integers(0, 3, size=6)
    model = NumpyMLP([5, 4, 4, 3], seed=seed, dtype=np.float64)
    for b in model.biases:  # non-zero biases so their gradients are exercised
        b += rng.standard_normal(b.shape) * 0.1
    return model, x, y


def test_softmax_cross_entropy_known_value():
    loss, grad = softmax_cross_entropy(np.array([[2.0, 0.0], [0.0, 0.0]]), np.array([0, 1]))
    expected = (np.log1p(np.exp(-2.0)) + np.log(2.0)) / 2
    assert loss == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12)


@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_gradients_pass_finite_difference_check(l2):
    model, x, y = tiny_problem()
    _, grads = model.loss_and_grads(x, y, l2)
    for param, grad in zip(model.params, grads, strict=True):
        numeric = numerical_gradient(lambda: model.loss_and_grads(x, y, l2)[0], param)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_gradients_equal_torch_autograd():
    model, x, y = tiny_problem(seed=1)
    loss, grads = model.loss_and_grads(x, y)
    params = [torch.tensor(p, requires_grad=True) for p in model.params]
    h = torch.tensor(x)
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i < len(params) - 2:
            h = torch.relu(h)
    torch_loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), abs=1e-12)
    for ours, param in zip(grads, params, strict=True):
        np.testing.assert_allclose(ours, param.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_sparse_input_gives_the_same_gradients():
    model, x, y = tiny_problem(seed=2)
    x[x < 0.5] = 0.0
    dense_loss, dense_grads = model.loss_and_grads(x, y)
    sparse_loss, sparse_grads = model.loss_and_grads(scipy.sparse.csr_matrix(x), y)
    assert dense_loss == pytest.approx(sparse_loss, abs=1e-12)
    for a, b in zip(dense_grads, sparse_grads, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
