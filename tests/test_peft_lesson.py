"""The week 4 PEFT comparison's bookkeeping: flags, resume, metrics against full fine-tuning."""

from __future__ import annotations

import argparse

import pytest

from dl2llm.finetune.experiment import MethodResult, PeftFineTuneConfig, save_progress
from dl2llm.finetune.peft_lesson import (
    PeftConfig,
    Task,
    compare_methods,
    comparison_table,
    method_metrics,
    parse_learning_rates,
    parse_methods,
)
from dl2llm.runtime import UsageError


def result(method: str, trainable: int, val: float, test: float) -> MethodResult:
    return MethodResult(method, trainable, 1000, val, test, 1.0, 10.0, [0.7, 0.6])


def test_flags_are_parsed_and_checked():
    assert parse_learning_rates("full=1e-3, lora=2e-3") == {"full": 1e-3, "lora": 2e-3}
    for bad in ("bogus=1e-3", "full=fast", "full=0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_learning_rates(bad)
    assert parse_methods(" full, lora_r4 ,") == ["full", "lora_r4"]
    for bad in (" , ", "full,lora"):
        with pytest.raises(UsageError):
            parse_methods(bad)


def test_quick_config_keeps_the_quick_sizes_and_prefix_room():
    quick = PeftConfig.quick(seed=3)
    assert (quick.train_size, quick.eval_size, quick.epochs) == (64, 64, 1)
    assert (quick.smollm2_steps, quick.smollm2_block, quick.seed) == (2, 32, 3)
    tune = PeftConfig(learning_rates={"lora": 1e-4}).tune_config(n_positions=40)
    assert tune.max_length == 40 - tune.prefix_length
    assert tune.learning_rates == {**PeftFineTuneConfig().learning_rates, "lora": 1e-4}


def test_finished_methods_are_resumed_without_training(tmp_path, capsys):
    progress = tmp_path / "progress.json"
    done = result("full", 1000, 0.8, 0.8)
    save_progress(progress, {"epochs": 1}, {"full": done})
    task = Task(pretrained=None, tune=PeftFineTuneConfig(), splits={}, train_size=4, eval_size=4)
    assert compare_methods(task, ["full"], "cpu", 0, progress, {"epochs": 1}) == [done]
    assert "full: resumed from" in capsys.readouterr().out


def test_lora_target_is_judged_on_validation_against_full():
    results = [
        result("full", 1000, 0.80, 0.80),
        result("lora_r1", 10, 0.70, 0.79),  # better on test, worse on validation
        result("lora_r4", 15, 0.75, 0.70),
        result("lora_r16", 50, 0.90, 0.90),  # 5% trainable: over the target's share
    ]
    metrics = method_metrics(results, PeftFineTuneConfig(), n_test=100)
    assert metrics["best_lora"] == "lora_r4" and metrics["lora_target_met"] is False
    assert metrics["lora_r4_relative_score"] == pytest.approx(0.875)
    assert metrics["lora_r4_trainable_pct"] == 1.5
    table = comparison_table(results, PeftFineTuneConfig(), n_test=100)
    assert "-> lora_r4 (best on validation): 0.875 of full (missed)" in table
    without_full = method_metrics(results[1:], PeftFineTuneConfig(), n_test=100)
    assert "best_lora" not in without_full and "lora_r4_relative_score" not in without_full
