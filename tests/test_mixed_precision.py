"""Mixed precision, gradient checkpointing and memory measurement (dl2llm.efficiency)."""

from __future__ import annotations

import copy

import pytest
import torch

from dl2llm.efficiency import (
    PeakMemory,
    fp16_underflow,
    loss_agreement,
    set_gradient_checkpointing,
    train_with_precision,
)
from dl2llm.efficiency.precision import byte_batches, byte_gpt2, check_precision, model_gradients
from dl2llm.runtime import UsageError

CPU = torch.device("cpu")


def tiny_model_and_batches():
    text = "The quick brown fox jumps over the lazy dog. " * 20
    return byte_gpt2(2, 32, 2, 32, seed=0), byte_batches(text, 2, 32, 3, seed=0)


def test_peak_memory_measures_a_known_allocation():
    with PeakMemory(CPU) as memory:
        block = torch.ones(16 * 2**20)  # 64 MiB of fp32
        block.add_(1)
        del block
    assert 60 <= memory.peak_mib <= 72  # 64 MiB plus allocator noise


def test_byte_batches_repeat_and_hold_bytes():
    text = "abcdefghij" * 10
    first = byte_batches(text, batch_size=3, block_size=5, n_batches=2, seed=1)
    again = byte_batches(text, batch_size=3, block_size=5, n_batches=2, seed=1)
    assert [b.shape for b in first] == [(3, 5), (3, 5)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    row = bytes(first[0][0].tolist()).decode()
    assert row in text


def test_checkpointing_gives_the_same_gradients():
    model, batches = tiny_model_and_batches()
    model.train()
    plain = model_gradients(model, batches[0])
    set_gradient_checkpointing(model, True)
    checkpointed = model_gradients(model, batches[0])
    set_gradient_checkpointing(model, False)
    torch.testing.assert_close(checkpointed, plain, atol=1e-6, rtol=0)


def test_bf16_autocast_follows_the_fp32_loss_curve():
    model, batches = tiny_model_and_batches()
    fp32 = train_with_precision(copy.deepcopy(model), batches, "fp32", CPU, progress=False)
    bf16 = train_with_precision(copy.deepcopy(model), batches, "bf16", CPU, progress=False)
    assert len(fp32.losses) == len(bf16.losses) == 3
    assert fp32.losses != bf16.losses  # bf16 arithmetic really ran
    assert loss_agreement(fp32.losses, bf16.losses)["max_abs_diff"] < 0.05
    assert fp32.losses[-1] < fp32.losses[0]
    assert fp32.final_loss_scale is None and bf16.skipped_steps == 0


def test_fp16_underflow_and_overflow_are_counted_exactly():
    grads = torch.tensor([1e-9, 1e-6, 1e-3, 10.0, 0.0])  # the 0 is ignored
    unscaled, scaled, huge = fp16_underflow(grads, [1.0, 2.0**16, 2.0**27])
    assert unscaled["underflow_share"] == 0.25  # 1e-9 is below fp16's smallest subnormal
    assert unscaled["subnormal_share"] == 0.25  # 1e-6 keeps only a few bits
    assert unscaled["overflow_share"] == 0.0
    assert scaled["underflow_share"] == 0.0 and scaled["subnormal_share"] == 0.0
    assert scaled["overflow_share"] == 0.25  # 10 * 2^16 > 65504, fp16's largest number
    assert scaled["relative_error"] is None
    assert huge["overflow_share"] == 0.5  # 1e-3 * 2^27 overflows too
    small = fp16_underflow(torch.tensor([1e-9, 1e-6, 1e-3]), [2.0**16])[0]
    assert small["underflow_share"] == 0.0 and small["relative_error"] < 1e-3


def test_bad_precisions_raise_usage_error():
    with pytest.raises(UsageError, match="unknown precision 'fp8'"):
        check_precision("fp8")
    check_precision("fp16")  # fp16 + GradScaler runs on the CPU too


def inject_inf_at(model, calls: set[int]):
    """Make one weight's gradient inf on the given backward calls (0-based): an overflow."""
    weight = model.transformer.h[0].mlp.c_fc.weight
    count = iter(range(10**6))

    def hook(grad):
        return grad * float("inf") if next(count) in calls else grad

    return weight.register_hook(hook)


def test_grad_scaler_skips_an_inf_step_halves_the_scale_then_grows_it_on_cpu():
    model, batches = tiny_model_and_batches()
    batches = batches + batches[:1]  # 4 steps
    inject_inf_at(model, {1})
    run = train_with_precision(
        model, batches, "fp16", CPU, progress=False, init_scale=2.0**10, growth_interval=2
    )
    # step 1 good (1 in a row), step 2 inf: skipped and halved, steps 3-4 good: doubled
    assert run.scale_history == [2.0**10, 2.0**9, 2.0**9, 2.0**10]
    assert run.skipped_steps == 1 and run.final_loss_scale == 2.0**10
    assert all(torch.isfinite(torch.tensor(run.losses)))


def test_a_skipped_fp16_step_leaves_the_weights_unchanged():
    model, batches = tiny_model_and_batches()
    before = copy.deepcopy(model.state_dict())
    inject_inf_at(model, {0})
    run = train_with_precision(model, batches[:1], "fp16", CPU, progress=False)
    assert run.skipped_steps == 1 and run.scale_history == [2.0**15]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    good = train_with_precision(model, batches[:1], "fp16", CPU, progress=False)
    assert good.skipped_steps == 0 and good.scale_history == [2.0**16]
    assert not torch.equal(model.state_dict()["lm_head.weight"], before["lm_head.weight"])


def test_fp16_with_grad_scaler_follows_fp32_on_cpu():
    model, batches = tiny_model_and_batches()
    fp32 = train_with_precision(copy.deepcopy(model), batches, "fp32", CPU, progress=False)
    fp16 = train_with_precision(copy.deepcopy(model), batches, "fp16", CPU, progress=False)
    assert fp16.losses != fp32.losses  # fp16 arithmetic really ran
    assert loss_agreement(fp32.losses, fp16.losses)["max_abs_diff"] < 0.01
    assert fp16.skipped_steps == 0 and fp16.scale_history == [2.0**16] * 3


def test_loss_agreement_compares_the_steps_both_runs_have():
    gaps = loss_agreement([3.0, 2.0, 1.0], [3.5, 2.0])
    assert gaps == {"max_abs_diff": 0.5, "median_abs_diff": 0.25, "mean_abs_diff": 0.25,
                    "final_rel_diff": 0.0}  # fmt: skip
    spike = loss_agreement([5.0, 4.0, 3.0, 2.0, 1.0], [5.0, 4.1, 5.5, 2.1, 1.0])
    assert spike["max_abs_diff"] == 2.5 and spike["median_abs_diff"] == pytest.approx(0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_with_grad_scaler_on_cuda():
    model, batches = tiny_model_and_batches()
    device = torch.device("cuda")
    fp32 = train_with_precision(copy.deepcopy(model), batches, "fp32", device, progress=False)
    fp16 = train_with_precision(copy.deepcopy(model), batches, "fp16", device, progress=False)
    assert fp16.final_loss_scale is not None
    assert loss_agreement(fp32.losses, fp16.losses)["max_abs_diff"] < 0.05
