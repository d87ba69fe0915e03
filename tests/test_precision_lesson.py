"""The week 4 mixed-precision lesson's settings and its choice of precisions."""

from __future__ import annotations

import pytest
import torch

from dl2llm.efficiency.precision_lesson import PrecisionConfig, choose_precisions, run_key
from dl2llm.runtime import UsageError

CPU = torch.device("cpu")


def test_overrides_replace_only_the_sizes_given():
    config = PrecisionConfig.quick().override(steps=7, n_head=None)
    assert config == PrecisionConfig(n_layer=2, n_embd=64, n_head=2, block_size=64,
                                     batch_size=4, steps=7)  # fmt: skip
    with pytest.raises(UsageError, match="divisible"):
        PrecisionConfig().override(n_head=3)


def test_fp32_is_required_and_fp16_needs_cuda():
    precisions, notes = choose_precisions("fp32, bf16,fp16", CPU)
    assert precisions == ["fp32", "bf16"]
    assert notes[0].startswith("note: fp16 + GradScaler training needs CUDA")
    for bad in ("bf16", "fp32,fp8"):
        with pytest.raises(UsageError):
            choose_precisions(bad, CPU)
    assert (run_key("bf16", False), run_key("bf16", True)) == ("bf16", "bf16_ckpt")
