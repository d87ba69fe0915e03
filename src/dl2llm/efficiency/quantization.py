"""int8 quantization of a classifier, in PyTorch and ONNX Runtime, and how to measure any variant.

Quantization stores a float tensor ``x`` as 8-bit integers ``q = round(x / s) + z`` with a
scale ``s`` (and zero point ``z``), 4x smaller than fp32 (Jacob et al., 2018, "Quantization
and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference", CVPR).
Matrix products then run on int8 and are rescaled to float.

- **Dynamic** quantization stores the weights in int8 ahead of time; each activation's scale
  is measured on the fly, at every call. No data needed. PyTorch:
  ``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear``; ONNX Runtime:
  ``onnxruntime.quantization.quantize_dynamic``
  (:func:`dl2llm.efficiency.onnx_export.quantize_int8`).
- **Static** quantization also fixes the activations' scales ahead of time, from the ranges
  seen on a *calibration* set (here a few hundred training sentences,
  :class:`SentenceCalibrationReader`): no range computation at run time, at the price of
  error when a real input leaves the calibrated range.

Without int8 dot-product instructions (VNNI, AMX; ``dl2llm.hardware.probe().int8_dot_product``
says whether this CPU has them) the int8 kernels gain less speed, so every variant is measured --
size on disk, latency at batch 1 and 32 on one thread, accuracy -- never assumed
(:func:`measure_variant`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from dl2llm.efficiency.latency import measure_latency, torch_threads
from dl2llm.efficiency.onnx_export import export_onnx, ort_session, run_session
from dl2llm.io import atomic_save_torch, atomic_write_with

Logits = Callable[[dict[str, np.ndarray]], np.ndarray]


def quantize_dynamic_torch(model: nn.Module, per_channel: bool = True) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers hold int8 weights (PyTorch dynamic).

    One scale per output channel (``per_channel_dynamic_qconfig``) by default, as in ONNX
    Runtime's :func:`~dl2llm.efficiency.onnx_export.quantize_int8`; ``per_channel=False``
    is PyTorch's own default, one scale per matrix (the ablation the notebook measures; why
    one scale per matrix rounds more coarsely: :func:`int8_roundtrip`).
    """
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear: qconfig}, dtype=torch.qint8)


def int8_roundtrip(weight: Tensor, per_channel: bool) -> Tensor:
    """Symmetric int8 quantize-then-dequantize of a ``(out, in)`` weight.

    The scale maps the largest ``|w|`` to 127: one scale for the whole matrix, or one per
    output row (channel). One large row then coarsens only its own rounding per channel,
    but every row's per tensor.

    >>> w = torch.tensor([[100.0, -50.0], [0.3, 0.2]])
    >>> int8_roundtrip(w, per_channel=False)[1].tolist()  # step 100 / 127: the row is lost
    [0.0, 0.0]
    >>> [round(v, 4) for v in int8_roundtrip(w, per_channel=True)[1].tolist()]  # step 0.3 / 127
    [0.3, 0.2008]
    """
    amax = weight.abs().amax(dim=1, keepdim=True) if per_channel else weight.abs().amax()
    scale = amax.clamp_min(1e-12) / 127  # (out, 1) or ()
    return (weight / scale).round().clamp(-127, 127) * scale


def saved_size_mb(model: nn.Module, path: str | Path) -> float:
    """Save ``model``'s ``state_dict`` to ``path`` (atomically) and return the file's MiB."""
    atomic_save_torch(model.state_dict(), path)
    return Path(path).stat().st_size / 2**20


class ClassifierLogits(nn.Module):
    """A Hugging Face sequence classifier that returns its logits tensor ``(B, classes)``."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.classifier(input_ids=input_ids, attention_mask=attention_mask).logits


def tokenize(tokenizer, texts: list[str], max_length: int = 64) -> dict[str, np.ndarray]:
    """``input_ids`` and ``attention_mask`` as int64 arrays ``(B, T)``, padded to the longest."""
    enc = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="np"
    )
    return {name: enc[name].astype(np.int64) for name in ("input_ids", "attention_mask")}


def export_classifier(model: nn.Module, tokenizer, path: str | Path) -> Path:
    """Export a sequence classifier to ONNX (logits output, dynamic batch and length)."""
    example = tokenize(tokenizer, ["an example sentence", "and another, a little longer one"])
    tensors = {name: torch.from_numpy(array) for name, array in example.items()}
    return export_onnx(ClassifierLogits(model).eval(), tensors, path, "logits")


class SentenceCalibrationReader:
    """ONNX Runtime calibration data: batches of tokenized sentences.

    Implements the ``onnxruntime.quantization.CalibrationDataReader`` protocol
    (``get_next`` returns one feed dict, then ``None`` when exhausted).
    """

    def __init__(self, tokenizer, texts: list[str], batch_size: int = 32, max_length: int = 64):
        self._batches = iter(
            [
                tokenize(tokenizer, texts[start : start + batch_size], max_length)
                for start in range(0, len(texts), batch_size)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_static_onnx(
    fp32_path: str | Path,
    int8_path: str | Path,
    calibration: SentenceCalibrationReader,
    keep_fp32: Sequence[str] = (),
) -> Path:
    """Static int8 (QDQ format) of the ``MatMul``/``Gemm`` ops, activation ranges from MinMax.

    Weights are quantized per output channel (signed int8); activations unsigned int8.
    Only the matrix products are quantized: they hold the weights and the time, while
    softmax, GELU and LayerNorm are sensitive to rounding and cheap. The nodes named in
    ``keep_fp32`` stay fp32. The feed-forward output products of a BERT are the ones to
    keep (:func:`~dl2llm.efficiency.onnx_export.feed_forward_matmuls` with
    ``outputs_only``): their inputs have a few huge outlier values (Bondarenko et al.,
    2021, "Understanding and Overcoming the Challenges of Efficient Transformer
    Quantization"), so one calibrated uint8 scale per tensor rounds every other value
    coarsely. The model compression notebook measures the static variant with and
    without them kept fp32.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    int8_path = Path(int8_path)
    atomic_write_with(
        int8_path,
        lambda tmp: quantize_static(
            str(fp32_path),
            tmp,
            calibration,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=list(keep_fp32),
        ),
    )
    return int8_path


def torch_logits(model: nn.Module) -> Logits:
    """Run a Hugging Face classifier on a feed dict of arrays; returns logits ``(B, classes)``."""

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            tensors = {name: torch.from_numpy(array) for name, array in feed.items()}
            return model(**tensors).logits.numpy()

    model.eval()
    return run


def onnx_logits(path: str | Path, threads: int = 1) -> Logits:
    """Run an exported classifier with ONNX Runtime on ``threads`` threads."""
    session = ort_session(path, threads)
    return lambda feed: run_session(session, feed)


# --------------------------------------------------------------------------------------------
# Measuring a variant: size, latency at batch 1 and 32, accuracy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantResult:
    """One row of the trade-off table."""

    variant: str
    size_mb: float
    b1_p50_ms: float
    b32_p50_ms: float
    accuracy: float
    parameters: int | None = None

    def row(self) -> dict[str, float | int | str | None]:
        return {key: round(v, 4) if isinstance(v, float) else v for key, v in asdict(self).items()}


def batches(tokenizer, texts: list[str], batch_size: int, max_length: int = 64) -> Iterator[dict]:
    """Tokenized feed dicts of ``batch_size`` texts each."""
    for start in range(0, len(texts), batch_size):
        yield tokenize(tokenizer, texts[start : start + batch_size], max_length)


def length_order(tokenizer, texts: list[str], max_length: int = 64) -> np.ndarray:
    """Indices of ``texts`` from the fewest tokens to the most (stable).

    Batches of neighbours in this order need little padding: on the sentiment snippets
    that halves the tokens a model runs on, against batches in the given order.
    """
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return np.argsort([len(row) for row in ids], kind="stable")


def accuracy_of(run: Logits, tokenizer, texts: list[str], labels: list[int]) -> float:
    """Share of ``texts`` whose argmax logit equals the label (batches of similar lengths)."""
    order = length_order(tokenizer, texts)
    by_length = [texts[i] for i in order]
    predicted = np.empty(len(texts), dtype=np.int64)
    predicted[order] = np.concatenate(
        [run(feed).argmax(-1) for feed in batches(tokenizer, by_length, 64)]
    )
    return float(np.mean(predicted == np.asarray(labels)))


def measure_variant(
    variant: str,
    run: Logits,
    size_mb: float,
    tokenizer,
    texts: list[str],
    labels: list[int],
    repeats: int,
    parameters: int | None = None,
) -> VariantResult:
    """Accuracy on ``texts`` and p50 latency (1 thread) at batch 1 and 32 of the first texts."""
    one = tokenize(tokenizer, texts[:1])
    many = tokenize(tokenizer, texts[:32])
    with torch_threads(1):
        b1 = measure_latency(lambda: run(one), 1, repeats)
        b32 = measure_latency(lambda: run(many), len(texts[:32]), max(3, repeats // 3))
    accuracy = accuracy_of(run, tokenizer, texts, labels)
    return VariantResult(variant, size_mb, b1.p50_ms, b32.p50_ms, accuracy, parameters)
