"""The week 4 mixed-precision lesson's settings, its choices from the hardware, its metrics."""

from __future__ import annotations

import doctest

import pytest
import torch

from dl2llm.efficiency import precision_lesson
from dl2llm.efficiency.precision import PrecisionRun
from dl2llm.efficiency.precision_lesson import (
    PrecisionConfig,
    choose_precisions,
    noise_ratio,
    run_key,
    run_metrics,
    steps_per_precision,
)
from dl2llm.hardware import HardwareProbe
from dl2llm.runtime import UsageError

CPU = torch.device("cpu")
AVX2_GFLOPS = (("fp32", 135.0), ("bf16", 0.3), ("fp16", 0.2))
AVX2_ONLY = HardwareProbe("X", 2, ("avx2",), False, False, matmul_gflops=AVX2_GFLOPS)
AMX_GFLOPS = (("fp32", 139.0), ("bf16", 360.0), ("fp16", 120.0))
AMX = HardwareProbe("Y", 2, ("avx512_bf16", "amx_bf16"), True, True, matmul_gflops=AMX_GFLOPS)


def test_overrides_replace_only_the_sizes_given():
    config = PrecisionConfig.quick().override(steps=7, n_head=None)
    assert (config.n_layer, config.n_embd, config.n_head, config.steps) == (2, 64, 2, 7)
    assert config.emulated_steps == PrecisionConfig.quick().emulated_steps
    with pytest.raises(UsageError, match="divisible"):
        PrecisionConfig().override(n_head=3)


def test_fp32_is_required_and_fp16_runs_on_the_cpu():
    assert choose_precisions("fp32, bf16,fp16") == ["fp32", "bf16", "fp16"]
    for bad in ("bf16", "fp32,fp8"):
        with pytest.raises(UsageError):
            choose_precisions(bad)
    assert (run_key("bf16", False), run_key("bf16", True)) == ("bf16", "bf16_ckpt")


def test_emulated_16_bit_formats_get_fewer_steps_on_the_cpu_only():
    config = PrecisionConfig(steps=60, emulated_steps=8)
    steps, notes = steps_per_precision(["fp32", "bf16", "fp16"], config, CPU, AVX2_ONLY)
    assert steps == {"fp32": 60, "bf16": 8, "fp16": 8}
    assert len(notes) == 2 and "emulates bf16" in notes[0] and "8 steps" in notes[0]
    steps, notes = steps_per_precision(["fp32", "bf16", "fp16"], config, CPU, AMX)
    assert steps == {"fp32": 60, "bf16": 60, "fp16": 60} and notes == []
    cuda = steps_per_precision(["fp32", "bf16"], config, torch.device("cuda"), AVX2_ONLY)
    assert cuda == ({"fp32": 60, "bf16": 60}, [])
    # oneDNN kernels but a measured matmul 20x slower than fp32's: emulated too
    slow = HardwareProbe("Z", 2, (), True, True, matmul_gflops=(("fp32", 100.0), ("fp16", 5.0)))
    assert slow.emulated("fp16") and not slow.emulated("bf16")


def run(precision, losses, checkpointing=False, scales=(), skipped=0):
    return PrecisionRun(precision, checkpointing, losses=losses, step_times_s=[0.1] * len(losses),
                        peak_memory_mib=10.0, skipped_steps=skipped,
                        scale_history=list(scales))  # fmt: skip


def test_run_metrics_read_each_gap_against_the_seed_noise_floor():
    fp32 = [5.0, 4.0, 3.0, 2.0]
    runs = {
        "fp32": run("fp32", fp32),
        "fp32_ckpt": run("fp32", fp32, checkpointing=True),
        "bf16": run("bf16", [5.0, 4.03, 3.0, 2.03]),
        "fp16": run("fp16", [5.0, 4.3], scales=[2.0**16, 2.0**15], skipped=1),  # short
    }
    noise = run("fp32", [5.5, 3.9, 3.2, 1.9])  # gaps .5 .1 .2 .1
    metrics = run_metrics(runs, noise)
    assert metrics["fp32_seed_noise_max_abs_loss_diff"] == pytest.approx(0.5)
    assert metrics["fp32_seed_noise_median_abs_loss_diff"] == pytest.approx(0.15)
    assert metrics["bf16_median_abs_loss_diff"] == pytest.approx(0.015)
    assert metrics["bf16_loss_diff_to_seed_noise"] == pytest.approx(0.1)  # medians .015 / .15
    assert metrics["fp16_loss_diff_to_seed_noise"] == pytest.approx(0.5)  # .15 / .3 (2 steps)
    assert metrics["fp16_steps"] == 2 and metrics["fp16_skipped_steps"] == 1
    assert metrics["fp16_scale_history"] == [2.0**16, 2.0**15]
    assert "fp32_loss_diff_to_seed_noise" not in metrics and "bf16_skipped_steps" not in metrics
    assert metrics["bf16_step_speedup"] == 1.0 and metrics["checkpointing_memory_ratio"] == 1.0
    assert noise_ratio(fp32, fp32, fp32) == 0.0  # no noise at all: no division by zero


def test_docstring_examples():
    result = doctest.testmod(precision_lesson)
    assert result.attempted >= 2 and result.failed == 0
