"""Week 1 lesson: the linear baseline, the tuned MLP's selection, and the tiny model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dl2llm.nn.feedforward_lesson import (
    FeedforwardConfig,
    linear_baseline,
    tfidf_features,
    tuned_mlp_experiment,
)
from dl2llm.nn.mlp import MLP, train_classifier


@pytest.fixture(scope="module")
def config():
    return dataclasses.replace(
        FeedforwardConfig.quick(), train_limit=1500, max_features=500, tune_widths=(4, 16),
        tune_dropouts=(0.5,), tune_weight_decays=(0.01,), tune_epochs=2, n_seeds=1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def data(config):
    return tfidf_features(config)


def test_linear_baseline_is_tuned_on_validation_and_lands_in_its_band(data):
    result = linear_baseline(data, (0.25, 4.0))
    assert result["linear_c"] in (0.25, 4.0)
    assert 0.60 <= result["linear_test_accuracy"] <= 0.75
    assert 0.60 <= result["linear_val_accuracy"] <= 0.75


def test_tuned_mlp_choice_never_looks_at_test_labels(data, config):
    honest = tuned_mlp_experiment(data, config)
    flipped = dataclasses.replace(data, y_test=1 - data.y_test)
    cheat = tuned_mlp_experiment(flipped, config)
    assert honest["mlp_chosen"] == cheat["mlp_chosen"]  # chosen on validation only
    assert honest["mlp_chosen"]["val_loss"] == min(r["val_loss"] for r in honest["mlp_grid"])
    assert len(honest["mlp_grid"]) == 2
    assert cheat["mlp_seed_test_accuracy"][0] == pytest.approx(
        1 - honest["mlp_seed_test_accuracy"][0], abs=1e-6
    )


def test_tiny_leaky_model_learns_both_classes(data):
    torch.manual_seed(0)
    model = MLP(data.x_train.shape[1], [2], 2, negative_slope=0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = train_classifier(
        model, optimizer, (data.x_train, data.y_train), (data.x_val, data.y_val), epochs=4
    )
    model.eval()
    with torch.no_grad():
        predicted = model(data.x_val).argmax(dim=1)
    assert set(predicted.tolist()) == {0, 1}  # not a constant (dead) predictor
    assert history.val_acc[-1] > 0.55


def test_early_stopping_on_validation_loss_restores_the_lowest_loss_epoch(data):
    torch.manual_seed(0)
    model = MLP(data.x_train.shape[1], [64], 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = train_classifier(
        model, optimizer, (data.x_train, data.y_train), (data.x_val, data.y_val),
        epochs=6, patience=2, monitor="val_loss", train_eval_size=300,
    )  # fmt: skip
    best = history.best_epoch
    assert history.val_loss[best] == min(history.val_loss)
    restored = torch.nn.functional.cross_entropy(model.eval()(data.x_val), data.y_val).item()
    assert restored == pytest.approx(history.val_loss[best], abs=1e-5)
    with pytest.raises(ValueError, match="monitor"):
        train_classifier(model, optimizer, (data.x_train, data.y_train),
                         (data.x_val, data.y_val), epochs=1, monitor="val_f1")  # fmt: skip
