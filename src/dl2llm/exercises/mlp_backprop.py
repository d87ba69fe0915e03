"""Exercise ``mlp_backprop``: backpropagation through an MLP by hand (week 1).

Mirrors :func:`dl2llm.nn.mlp_numpy.softmax_cross_entropy` and
:meth:`dl2llm.nn.mlp_numpy.NumpyMLP.loss_and_grads`; the reference is
``torch.autograd`` on the same network in float64.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise mlp_backprop: backpropagation through a multi-layer perceptron, in NumPy.

The network computes h_0 = x, z_i = h_i @ W_i + b_i, h_{i+1} = relu(z_i) for every
layer but the last, whose z is the logits. The loss is the mean softmax
cross-entropy. Backpropagation is the chain rule from the loss back to W_0
(Rumelhart, Hinton & Williams, 1986). Check with: dl2llm exercise check mlp_backprop
"""

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer labels ``y`` and its gradient w.r.t. ``logits``.

    logits: (B, C) floats; y: (B,) integer class ids.
    Returns (loss, dlogits): a float and a (B, C) array, already divided by B.
    Subtract each row's max before exponentiating so that large logits do not overflow.
    """
    # log_probs = ...                      # (B, C)
    # loss = -mean of log_probs[b, y[b]]
    # dlogits = (softmax - onehot(y)) / B  # (B, C)
    raise NotImplementedError


def mlp_loss_and_grads(
    weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[float, list[np.ndarray]]:
    """Loss of the MLP and the gradient of every parameter.

    weights[i]: (in_i, out_i); biases[i]: (out_i,); x: (B, in_0); y: (B,) class ids.
    Returns (loss, [dW_0, db_0, dW_1, db_1, ...]) -- each gradient has its parameter's shape.
    """
    # forward: keep every h_i                    # h_i: (B, in_i)
    # backward, from the last layer down:
    #   dW_i = h_i.T @ delta                     # (in_i, out_i)
    #   db_i = delta.sum(axis=0)                 # (out_i,)
    #   delta = (delta @ W_i.T) * (h_i > 0)      # back through the ReLU, (B, in_i)
    raise NotImplementedError
'''


def _library() -> SimpleNamespace:
    from dl2llm.nn.mlp_numpy import NumpyMLP, softmax_cross_entropy

    def mlp_loss_and_grads(weights, biases, x, y):
        sizes = [weights[0].shape[0], *(w.shape[1] for w in weights)]
        model = NumpyMLP(sizes, dtype=np.float64)
        model.weights, model.biases = list(weights), list(biases)
        return model.loss_and_grads(x, y)

    return SimpleNamespace(
        softmax_cross_entropy=softmax_cross_entropy, mlp_loss_and_grads=mlp_loss_and_grads
    )


def _network(sizes: list[int], batch: int, seed: int, hidden_bias: float = 0.0):
    rng = np.random.default_rng(seed)
    weights = [
        rng.standard_normal((a, b)) / np.sqrt(a) for a, b in zip(sizes, sizes[1:], strict=False)
    ]
    biases = [rng.standard_normal(b) * 0.1 for b in sizes[1:]]
    biases[0] += hidden_bias
    x = rng.standard_normal((batch, sizes[0]))
    y = rng.integers(0, sizes[-1], size=batch)
    return weights, biases, x, y


def _torch_loss_and_grads(weights, biases, x, y):
    import torch
    import torch.nn.functional as F

    params = []
    for w, b in zip(weights, biases, strict=True):
        params += [torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)]
    h = torch.tensor(x)
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i < len(params) - 2:
            h = torch.relu(h)
    loss = F.cross_entropy(h, torch.tensor(y))
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in params]


def _torch_softmax_ce(logits: np.ndarray, y: np.ndarray):
    import torch
    import torch.nn.functional as F

    tensor = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(tensor, torch.tensor(y))
    loss.backward()
    return loss.item(), tensor.grad.numpy()


def _cases() -> list[Case]:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    huge = np.array([[1000.0, 0.0, -1000.0], [0.0, 800.0, 799.0]])
    huge_labels = np.array([2, 1])
    cases = [
        Case(
            "softmax_cross_entropy: 4x3 logits vs torch cross_entropy",
            lambda code: code.softmax_cross_entropy(logits.copy(), labels),
            lambda: _torch_softmax_ce(logits, labels),
            atol=1e-10,
        ),
        Case(
            "softmax_cross_entropy: logits of +-1000 (overflow without the max shift)",
            lambda code: code.softmax_cross_entropy(huge.copy(), huge_labels),
            lambda: _torch_softmax_ce(huge, huge_labels),
            atol=1e-8,
        ),
    ]
    networks = {
        "mlp 5->8->3, batch 6": _network([5, 8, 3], 6, 1),
        "mlp 4->6->5->2, two hidden layers": _network([4, 6, 5, 2], 7, 2),
        "mlp 3->4->2, batch of one": _network([3, 4, 2], 1, 3),
        "mlp 6->10->4 with dead ReLUs (hidden biases -2)": _network([6, 10, 4], 5, 4, -2.0),
    }
    for name, (w, b, x, y) in networks.items():
        cases.append(
            Case(
                f"{name} vs torch.autograd",
                lambda code, w=w, b=b, x=x, y=y: code.mlp_loss_and_grads(
                    [a.copy() for a in w], [a.copy() for a in b], x, y
                ),
                lambda w=w, b=b, x=x, y=y: _torch_loss_and_grads(w, b, x, y),
                atol=1e-10,
            )
        )
    return cases


EXERCISE = Exercise(
    name="mlp_backprop",
    title="Backpropagation for the MLP (NumPy)",
    week=1,
    mirrors=(
        "dl2llm.nn.mlp_numpy.softmax_cross_entropy",
        "dl2llm.nn.mlp_numpy.NumpyMLP.loss_and_grads",
    ),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
