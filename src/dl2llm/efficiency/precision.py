"""Mixed-precision training: 16-bit arithmetic with 32-bit safety nets (Micikevicius et al., 2018).

"Mixed Precision Training" (ICLR 2018, arXiv:1710.03740) runs the forward and
backward passes in 16-bit floats (half the memory traffic, and tensor cores on
GPUs) while keeping an fp32 *master copy* of the weights for the update.
``torch.autocast`` does the casting per operation: matmuls and convolutions run
in 16 bits; reductions, softmax and losses stay in fp32.

The two 16-bit formats differ in where they spend their bits:

- **bf16** (1 sign, 8 exponent, 7 mantissa bits) has fp32's range
  (down to ~1e-38) but only ~3 significant digits. Gradients practically
  never underflow, so it needs no loss scaling.
- **fp16** (1 sign, 5 exponent, 10 mantissa bits) is more precise but its
  smallest positive number is ~6e-8 (normal numbers stop at ~6.1e-5).
  Gradients of a trained network are often smaller than that and *underflow*
  to zero: those weights stop learning. **Loss scaling** multiplies the loss by
  ``S`` (say 2^16) before backpropagation, so every gradient is ``S`` times
  larger and representable, then divides the fp32 gradients by ``S`` before
  the update. ``torch.amp.GradScaler`` picks ``S`` dynamically: if a gradient
  overflows to inf/NaN it skips that step and halves ``S``; after a run of good
  steps it doubles ``S``. :func:`fp16_underflow` measures all of this on real
  gradients.

Both run on a CPU too (``torch.autocast("cpu", dtype=torch.float16)`` with
``torch.amp.GradScaler("cpu")``), but whether they are *fast* there depends on the
CPU: without bf16/fp16 instructions (AVX-512 BF16, AVX-512 FP16, AMX) oneDNN
emulates them and they are much slower than fp32. CPUs of one kind differ, so the
lesson asks :func:`dl2llm.hardware.probe` at run time and prints what it found.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import GPT2Config, GPT2LMHeadModel

from dl2llm.efficiency.checkpointing import set_gradient_checkpointing
from dl2llm.efficiency.memory import PeakMemory
from dl2llm.runtime import UsageError

PRECISIONS = ("fp32", "bf16", "fp16")
FP16_SMALLEST_NORMAL = torch.finfo(torch.float16).tiny  # 2^-14 ~ 6.1e-5
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> None:
    """Refuse unknown precisions."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}' (use one of {', '.join(PRECISIONS)})")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for bf16/fp16, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


@dataclass
class PrecisionRun:
    """What :func:`train_with_precision` measured."""

    precision: str
    checkpointing: bool
    losses: list[float] = field(default_factory=list)
    step_times_s: list[float] = field(default_factory=list)
    peak_memory_mib: float = 0.0
    skipped_steps: int = 0
    scale_history: list[float] = field(default_factory=list)  # GradScaler's scale after each step

    @property
    def final_loss_scale(self) -> float | None:
        """The loss scale after the last step (None without a GradScaler)."""
        return self.scale_history[-1] if self.scale_history else None

    @property
    def median_step_s(self) -> float:
        """Median step time, skipping the first (warm-up) step when there are more."""
        times = sorted(self.step_times_s[1:] or self.step_times_s)
        return times[len(times) // 2]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def byte_gpt2(
    n_layer: int, n_embd: int, n_head: int, block_size: int, seed: int
) -> GPT2LMHeadModel:
    """A GPT-2-architecture model over bytes (vocabulary 256), seeded."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=256,
        n_positions=block_size,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        bos_token_id=0,
        eos_token_id=0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(config)


def byte_batches(
    text: str, batch_size: int, block_size: int, n_batches: int, seed: int
) -> list[torch.Tensor]:
    """``n_batches`` random windows of UTF-8 bytes, each ``(B, T)``; the same for every run."""
    data = torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(data) - block_size, (n_batches, batch_size), generator=generator)
    return [torch.stack([data[s : s + block_size] for s in row]) for row in starts]


def train_with_precision(
    model: nn.Module,
    batches: list[torch.Tensor],
    precision: str,
    device: torch.device,
    checkpointing: bool = False,
    learning_rate: float = 1e-3,
    progress: bool = True,
    init_scale: float = 2.0**16,
    growth_interval: int = 2000,
    clip_norm: float = 1.0,
) -> PrecisionRun:
    """Train a causal LM on ``batches`` (each ``(B, T)`` token ids) and measure it.

    Weights and optimizer state stay in fp32 (the master copy); only the
    forward/backward arithmetic uses ``precision``. fp16 goes through a
    dynamic ``GradScaler`` that starts at ``init_scale``, halves it (and skips
    the step) when a gradient is inf/NaN, and doubles it after
    ``growth_interval`` good steps in a row. Gradients are clipped to norm
    ``clip_norm`` (after unscaling), which keeps loss spikes from derailing a run.
    """
    check_precision(precision)
    model.to(device).train()
    set_gradient_checkpointing(model, checkpointing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    scaler = torch.amp.GradScaler(
        device.type,
        init_scale=init_scale,
        growth_interval=growth_interval,
        enabled=precision == "fp16",
    )
    run = PrecisionRun(precision, checkpointing)
    label = f"{precision}{' + checkpointing' if checkpointing else ''}"
    with PeakMemory(device) as memory:
        for batch in tqdm(batches, desc=label, disable=not progress, leave=False):
            batch = batch.to(device)  # (B, T)
            _synchronize(device)
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with autocast(precision, device):
                loss = model(input_ids=batch, labels=batch).loss
            scale_before = scaler.get_scale() if scaler.is_enabled() else None
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            scaler.step(optimizer)
            scaler.update()
            _synchronize(device)
            run.step_times_s.append(time.perf_counter() - started)
            run.losses.append(loss.item())
            if scale_before is not None:
                run.scale_history.append(scaler.get_scale())
                if scaler.get_scale() < scale_before:
                    run.skipped_steps += 1  # inf/NaN gradients: step skipped, scale halved
    run.peak_memory_mib = memory.peak_mib
    set_gradient_checkpointing(model, False)
    return run


def loss_agreement(reference: list[float], other: list[float]) -> dict[str, float]:
    """How closely a loss curve follows the fp32 one, over the steps both have.

    The median gap is robust to a single-batch loss spike in one of the runs; the max is not.
    """
    steps = min(len(reference), len(other))
    ref, oth = torch.tensor(reference[:steps]), torch.tensor(other[:steps])
    gap = (oth - ref).abs()
    return {
        "max_abs_diff": gap.max().item(),
        "median_abs_diff": gap.quantile(0.5).item(),
        "mean_abs_diff": gap.mean().item(),
        "final_rel_diff": (gap[-1] / ref[-1]).item(),
    }


def model_gradients(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """All of the model's fp32 gradients for one batch, flattened."""
    model.zero_grad(set_to_none=True)
    model(input_ids=batch, labels=batch).loss.backward()
    grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return torch.cat(grads)


def fp16_underflow(grads: torch.Tensor, scales: list[float]) -> list[dict]:
    """Cast real fp32 gradients to fp16 after multiplying by each loss scale ``S``.

    For each ``S``: the share of non-zero gradients that became 0 (underflow),
    that became subnormal (below 2^-14, where fp16 keeps fewer than 10 bits),
    that became inf (overflow), and the relative error of the gradient vector
    after dividing by ``S`` again in fp32.
    """
    nonzero = grads[grads != 0].double()
    rows = []
    for scale in scales:
        in_fp16 = (nonzero * scale).to(torch.float16)
        finite = torch.isfinite(in_fp16)
        recovered = in_fp16.double() / scale
        error = ((recovered - nonzero).norm() / nonzero.norm()).item() if finite.all() else None
        rows.append(
            {
                "scale": scale,
                "underflow_share": (in_fp16 == 0).double().mean().item(),
                "subnormal_share": ((in_fp16 != 0) & (in_fp16.abs() < FP16_SMALLEST_NORMAL))
                .double()
                .mean()
                .item(),
                "overflow_share": (~finite).double().mean().item(),
                "relative_error": error,
            }
        )
    return rows
