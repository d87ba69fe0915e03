"""The week 4 PEFT comparison's bookkeeping: flags, tuning, resume, paired metrics."""

from __future__ import annotations

import numpy as np
import pytest

from dl2llm.classification import tfidf_baseline
from dl2llm.data import sentiment_splits
from dl2llm.finetune.experiment import PeftFineTuneConfig, RunResult, save_progress
from dl2llm.finetune.peft_lesson import (
    LEARNING_RATE_GRID,
    PeftConfig,
    Runner,
    Task,
    bag_of_words_accuracy,
    chosen_rates,
    lesson_splits,
    parse_learning_rates,
    parse_methods,
    run_all,
    tune_learning_rates,
)
from dl2llm.finetune.peft_stats import comparison_table, method_metrics
from dl2llm.prompting import paired_difference_interval
from dl2llm.runtime import UsageError


def result(method: str, seed: int, val: float, correct: list[int], trainable: int = 10,
           lr: float = 1e-3) -> RunResult:  # fmt: skip
    return RunResult(method, lr, seed, trainable, 1000, val, correct, 1.0, 10.0, [0.7, 0.6], 10)


def test_flags_are_parsed_and_checked():
    assert parse_learning_rates("full=1e-3, lora=2e-3") == {"full": 1e-3, "lora": 2e-3}
    for bad in ("bogus=1e-3", "full=fast", "full=0"):
        with pytest.raises(UsageError):
            parse_learning_rates(bad)
    assert parse_methods(" full, lora_r4_emb ,") == ["full", "lora_r4_emb"]
    for bad in (" , ", "full,lora"):
        with pytest.raises(UsageError):
            parse_methods(bad)


def test_quick_config_and_fixed_rates():
    quick = PeftConfig.quick(seed=3)
    assert (quick.seeds, quick.train_size, quick.val_size, quick.test_size) == (2, 16, 16, 16)
    assert all(len(rates) == 1 for rates in quick.grid.values())
    full = PeftConfig()
    assert {len(rates) for rates in full.grid.values()} == {3}  # same budget per family
    full.fix_learning_rates({"lora": 1e-4})
    assert full.grid["lora"] == (1e-4,) and full.grid["full"] == LEARNING_RATE_GRID["full"]


def filled_runner(tmp_path, runs: list[RunResult]) -> Runner:
    """A runner whose every run is already in its progress file (nothing trains)."""
    progress = tmp_path / "progress.json"
    save_progress(progress, {"epochs": 1}, {r.key: r for r in runs})
    task = Task(pretrained=None, tune=PeftFineTuneConfig(), splits={})
    return Runner(task, "cpu", progress, {"epochs": 1})


def test_rates_are_chosen_on_validation_and_tuning_runs_are_reused(tmp_path, capsys):
    runs = [
        result("full", 0, 0.70, [1, 1], lr=1e-5),
        result("full", 0, 0.80, [0, 0], lr=1e-4),  # best on validation, worst on test
        result("lora_r4", 0, 0.75, [1, 0], lr=1e-3),
        result("lora_r4", 0, 0.75, [1, 1], lr=2e-3),  # a tie: the smaller rate wins
        result("lora_r1", 0, 0.60, [1, 0], lr=1e-3),
    ]
    runner = filled_runner(tmp_path, runs)
    assert "resuming 5 finished runs" in capsys.readouterr().out
    grid = {"full": (1e-5, 1e-4), "lora": (1e-3, 2e-3)}
    search = tune_learning_rates(runner, ["full", "lora"], grid, seed=0)
    assert search == {"full": {1e-5: 0.70, 1e-4: 0.80}, "lora": {1e-3: 0.75, 2e-3: 0.75}}
    rates = chosen_rates(search)
    assert rates == {"full": 1e-4, "lora": 1e-3}
    chosen = run_all(runner, ["full", "lora_r1", "lora_r4"], rates, seeds=[0])
    assert chosen == {"full": [runs[1]], "lora_r1": [runs[4]], "lora_r4": [runs[2]]}


def test_paired_differences_and_the_lora_target():
    correct = {  # method -> (per-item correctness at seed 0, at seed 1), trainable
        "full": ([1, 1, 1, 0], [1, 1, 0, 0], 1000),
        "lora_r4": ([1, 0, 1, 0], [1, 1, 0, 0], 15),
        "lora_r16": ([1, 1, 1, 1], [1, 1, 1, 1], 50),
    }
    val = {"full": 0.8, "lora_r4": 0.75, "lora_r16": 0.9}
    runs = {
        m: [result(m, 0, val[m], first, n), result(m, 1, val[m], second, n)]
        for m, (first, second, n) in correct.items()
    }
    metrics = method_metrics(runs)
    assert metrics["full_accuracy"] == 0.625 and metrics["lora_r4_accuracy"] == 0.5
    assert metrics["lora_r4_accuracy_seeds"] == [0.5, 0.5]
    assert metrics["lora_r4_minus_full_pts"] == -12.5
    assert metrics["lora_r4_minus_full_pts_seeds"] == [-25.0, 0.0]
    _, low, high = paired_difference_interval([1, 0, 1, 0, 1, 1, 0, 0], [1, 1, 1, 0, 1, 1, 0, 0])
    assert metrics["lora_r4_minus_full_pts_interval"] == [round(100 * low, 2), round(100 * high, 2)]
    assert metrics["lora_r4_relative_score"] == 0.8 and metrics["lora_r4_trainable_pct"] == 1.5
    assert "full_minus_full_pts" not in metrics
    # lora_r16 is better on validation but trains 5%: over the target's share
    assert metrics["best_lora"] == "lora_r4" and metrics["lora_target_met"] is False
    table = comparison_table(runs)
    assert "-> lora_r4 (best on validation): 0.800 of full (missed); 2 seeds x 4 test" in table
    without_full = method_metrics({"lora_r4": runs["lora_r4"]})
    assert "best_lora" not in without_full and "lora_r4_relative_score" not in without_full


def test_the_bag_of_words_yardstick_trains_on_the_lessons_snippets():
    config = PeftConfig(train_size=64, val_size=32, test_size=48)
    splits = lesson_splits(config)
    assert [len(splits[name]) for name in ("train", "val", "test")] == [64, 32, 48]
    data = sentiment_splits()
    assert splits["train"].texts == data["train"].texts[:64]
    accuracy = bag_of_words_accuracy(config)
    expected = tfidf_baseline(splits["train"], splits["val"], splits["test"])
    assert accuracy == pytest.approx(np.mean(expected == np.asarray(splits["test"].labels)))
    assert accuracy * 48 == pytest.approx(round(accuracy * 48))  # a share of 48 snippets
