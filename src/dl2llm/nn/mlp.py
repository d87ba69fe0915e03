"""The feedforward classifier in PyTorch, and a training loop that shows generalisation.

The same network as :mod:`dl2llm.nn.mlp_numpy`, but autograd computes the
gradients. :func:`train_classifier` records train and validation accuracy per
epoch, so under- and overfitting become visible: a network too small to fit the
training set underfits (both curves low); a very large one memorises it
(train accuracy -> 100%, validation accuracy falls). L2/weight decay, dropout
(Srivastava et al., 2014) and early stopping are three ways to close that gap.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


class MLP(nn.Module):
    """``in_dim -> hidden... -> n_classes`` with (leaky) ReLU and optional dropout.

    ``negative_slope > 0`` gives a leaky ReLU, whose units cannot die (a ReLU unit
    whose input is negative for every example gets no gradient and stays at 0).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: list[int],
        n_classes: int,
        dropout: float = 0.0,
        negative_slope: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            activation = nn.LeakyReLU(negative_slope) if negative_slope else nn.ReLU()
            layers += [nn.Linear(in_dim, width), activation]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_dim = width
        layers.append(nn.Linear(in_dim, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, n_classes)


@dataclass
class History:
    """Per-epoch curves of one training run."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(mean loss, accuracy)`` of ``model`` on ``(x, y)``."""
    model.eval()
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y).item()
    return loss, (logits.argmax(dim=1) == y).float().mean().item()


def epoch_orders(n_examples: int, epochs: int, seed: int) -> list[torch.Tensor]:
    """The shuffled example order of every epoch (shared with the Keras twin)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randperm(n_examples, generator=generator) for _ in range(epochs)]


def train_classifier(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int = 64,
    patience: int | None = None,
    seed: int = 0,
    desc: str = "train",
    monitor: str = "val_acc",
    train_eval_size: int | None = None,
) -> History:
    """Mini-batch training; with ``patience`` it stops early and restores the best epoch.

    The best epoch is the one with the highest validation accuracy, or with
    ``monitor="val_loss"`` the lowest validation loss. ``train_eval_size`` measures
    the per-epoch train accuracy on a fixed subsample (cheaper than the whole set).
    """
    if monitor not in ("val_acc", "val_loss"):
        raise ValueError(f"monitor must be 'val_acc' or 'val_loss', not {monitor!r}")
    x_train, y_train = train
    train_eval = train
    if train_eval_size is not None and train_eval_size < len(y_train):
        subset = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(seed))
        subset = subset[:train_eval_size]
        train_eval = (x_train[subset], y_train[subset])
    orders = epoch_orders(len(y_train), epochs, seed)
    history = History()
    best_state, best_val, waited = None, -np.inf, 0
    for epoch in tqdm(range(epochs), desc=desc, leave=False):
        model.train()
        order = orders[epoch]
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        for split, (x, y) in (("train", train_eval), ("val", val)):
            loss_value, acc = evaluate(model, x, y)
            getattr(history, f"{split}_loss").append(loss_value)
            getattr(history, f"{split}_acc").append(acc)
        score = history.val_acc[-1] if monitor == "val_acc" else -history.val_loss[-1]
        if score > best_val:
            best_val, history.best_epoch, waited = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
        if patience is not None and waited >= patience:
            history.stopped_early = True
            break
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
