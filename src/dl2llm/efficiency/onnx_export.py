"""Exporting PyTorch models to ONNX and running them with ONNX Runtime, in fp32 and int8.

ONNX (Open Neural Network Exchange, https://onnx.ai) stores a model as a graph of standard
operators (``MatMul``, ``Softmax``, ``LayerNormalization``, ...) with the weights inside. Any
runtime that implements the operators can run it, without Python or PyTorch. ONNX Runtime
(Microsoft) is one: before running, it rewrites the graph -- folds constants, fuses
LayerNorm, GELU and attention subgraphs into single kernels -- which is where most of its
speed over eager PyTorch comes from at small batch sizes.

``torch.onnx.export(..., dynamo=True)`` captures the model with ``torch.export`` (a full
graph of ATen operators, traced with symbolic shapes) and translates it to ONNX with
``onnxscript``. Marking the batch and sequence axes ``Dim.AUTO`` keeps them symbolic, so
one file serves every batch size and sequence length; without it the example's shape would
be baked in. We always check: the exported graph must give PyTorch's numbers (max abs
difference below 1e-4 in fp32) at shapes other than the example's.

Dynamic int8 quantization (Jacob et al., 2018, "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference", CVPR) stores each weight matrix
as int8 with a scale, 4x smaller than fp32; at run time each activation tensor is quantized
with a scale measured on the fly, the product runs in integer arithmetic and is rescaled to
float. It needs no calibration data and is lossy, so it is judged by agreement with the
fp32 model (embedding cosine, next-token agreement), not only by speed. The speed-up depends
on the CPU's int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX): measure it, as
:func:`compare_variants` does, next to :func:`dl2llm.hardware.probe`'s ``int8_dot_product``.

:func:`compare_variants` times PyTorch fp32 against the ONNX files on 1 and 2 threads at a
small and a large batch; :func:`kv_cache_comparison` times :meth:`dl2llm.gpt.GPT.generate`
with and without its KV cache (see :mod:`dl2llm.efficiency.latency` for what is measured).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dl2llm.efficiency.latency import VariantReport, measure_latency, torch_threads
from dl2llm.io import atomic_write_with


class SentenceEncoder(nn.Module):
    """A BERT encoder plus mean pooling and L2 normalisation: text ids -> sentence vectors.

    This is what sentence-transformers' all-MiniLM-L6-v2 computes (Reimers & Gurevych,
    2019, "Sentence-BERT"): the average of the token vectors, padding excluded, scaled to
    unit length so that a dot product is a cosine similarity.
    """

    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
        summed = (tokens * mask).sum(dim=1)  # (B, C)
        mean = summed / mask.sum(dim=1).clamp(min=1e-9)  # (B, C)
        return F.normalize(mean, dim=-1)


class NextTokenLogits(nn.Module):
    """A :class:`~dl2llm.gpt.GPT` that returns only the last position's logits ``(B, vocab)``.

    Generation needs nothing else, and the full ``(B, T, vocab)`` tensor would dominate
    the time and memory of an exported graph (50,257 floats per token for GPT-2).
    """

    def __init__(self, gpt: nn.Module):
        super().__init__()
        self.gpt = gpt

    def forward(self, input_ids: Tensor) -> Tensor:
        hidden = self.gpt.features(input_ids)  # (B, T, C)
        return self.gpt.lm_head(hidden[:, -1])  # (B, vocab)


def first_layers(bert: nn.Module, n_layers: int) -> nn.Module:
    """The same ``BertModel`` keeping only its first ``n_layers`` Transformer layers (in place)."""
    bert.encoder.layer = bert.encoder.layer[:n_layers]
    bert.config.num_hidden_layers = n_layers
    return bert


def export_onnx(
    model: nn.Module, example: Mapping[str, Tensor], path: str | Path, output_name: str
) -> Path:
    """Export ``model(**example)`` to one ONNX file with dynamic batch and sequence axes.

    Every input is ``(B, T)``; both axes stay symbolic (``Dim.AUTO``). The file is written
    to a temporary name and moved into place, so a killed export leaves nothing half-made.
    ``output_name`` must differ from the graph's internal names, which follow the module
    names (``"embedding"`` clashes with BERT's embedding layer and gives an invalid model).
    """
    from torch.export import Dim

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {name: {0: Dim.AUTO, 1: Dim.AUTO} for name in example}
    program = torch.onnx.export(
        model.eval(),
        args=(),
        kwargs=dict(example),
        dynamo=True,
        input_names=list(example),
        output_names=[output_name],
        dynamic_shapes=dynamic,
        verbose=False,
    )
    atomic_write_with(path, lambda tmp: program.save(tmp, external_data=False))
    return path


def quantize_int8(
    fp32_path: str | Path, int8_path: str | Path, keep_fp32: Sequence[str] = ()
) -> Path:
    """Dynamic int8 quantization of the ``MatMul``/``Gather`` weights with ONNX Runtime.

    Each output channel (column of a weight matrix) gets its own scale (``per_channel``):
    on all-MiniLM-L6-v2 one scale per matrix gave a mean embedding cosine of about 0.955 to
    fp32, one per channel about 0.99, at the same speed. The nodes named in ``keep_fp32``
    stay fp32 (see :func:`feed_forward_matmuls`). Activations are always quantized to uint8
    with one scale per tensor (ONNX Runtime's ``DynamicQuantizeLinear``); ``reduce_range``
    (7-bit weights, meant for CPUs without VNNI) is off. (ONNX Runtime suggests
    its ``quant_pre_process`` first; its symbolic shape inference fails on dynamo-exported
    graphs with dynamic axes, and ``ort_session`` applies the same graph optimisations.)
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = Path(int8_path)
    atomic_write_with(
        int8_path,
        lambda tmp: quantize_dynamic(
            str(fp32_path),
            tmp,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=list(keep_fp32),
        ),
    )
    return int8_path


def feed_forward_matmuls(
    path: str | Path, intermediate_size: int, outputs_only: bool = False
) -> list[str]:
    """Names of the ``MatMul`` nodes whose constant weight has a side of ``intermediate_size``.

    In a BERT these are the two feed-forward products of every layer, ``(C, 4C)`` and
    ``(4C, C)``; the attention projections are ``(C, C)``. ``outputs_only`` keeps the
    ``(4C, C)`` ones, whose output joins the residual stream. The exporter names nodes by
    position (``node_MatMul_158``), so they are found by the shape of their weight.
    On all-MiniLM-L6-v2 they are where int8 loses most: with every weight quantized the
    worst of 200 review embeddings had a cosine of 0.98 to fp32; keeping the feed-forward
    products in fp32 raised it above 0.99 (about 0.995), and the attention projections
    and the embedding table stay int8.
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    weights = {tensor.name: tuple(tensor.dims) for tensor in model.graph.initializer}
    sides = (0,) if outputs_only else (0, 1)
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul"
        and len(weights.get(node.input[1], ())) == 2
        and any(weights[node.input[1]][side] == intermediate_size for side in sides)
    ]


def ort_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and all graph fusions."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(session, inputs: Mapping[str, Tensor | np.ndarray]) -> np.ndarray:
    """The first output of ``session`` for named inputs (tensors or arrays)."""
    feed = {name: np.asarray(value) for name, value in inputs.items()}
    return session.run(None, feed)[0]


def max_abs_diff(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Largest elementwise absolute difference between two same-shaped outputs."""
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, np.float64))))


def cosine_agreement(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity ``(N,)`` between two ``(N, C)`` sets of vectors."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def file_mb(path: str | Path) -> float:
    """Size of a file in MiB."""
    return Path(path).stat().st_size / 2**20


# --------------------------------------------------------------------------------------------
# Comparing variants: PyTorch fp32 vs ONNX Runtime fp32 vs ONNX Runtime int8, 1 vs 2 threads
# --------------------------------------------------------------------------------------------

Inputs = Mapping[str, Tensor]
Agreement = Callable[[np.ndarray, np.ndarray], float]


def mean_cosine(outputs: np.ndarray, reference: np.ndarray) -> float:
    """The average embedding cosine between a variant and the reference."""
    return float(cosine_agreement(outputs, reference).mean())


def top1_agreement(logits: np.ndarray, reference: np.ndarray) -> float:
    """Share of rows whose most likely next token is the reference's."""
    return float(np.mean(logits.argmax(axis=-1) == reference.argmax(axis=-1)))


def parameter_mb(model: nn.Module) -> float:
    """Bytes of the distinct parameters and buffers of ``model``, in MiB."""
    tensors = {t.data_ptr(): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values()) / 2**20


def batch_size(inputs: Inputs) -> int:
    return len(next(iter(inputs.values())))


@dataclass(frozen=True)
class Workload:
    """What to time: a small and a large batch, and how often to call each."""

    small: Inputs
    large: Inputs
    repeats_small: int
    repeats_large: int


def compare_variants(
    model_name: str,
    reference: nn.Module,
    onnx_files: Mapping[str, Path],
    workload: Workload,
    agreement: Agreement,
    agreement_kind: str,
    threads: Sequence[int] = (1, 2),
) -> list[VariantReport]:
    """Time PyTorch fp32 and each ONNX file at every thread count; compare their outputs.

    Agreement and max abs difference are measured on the large batch against PyTorch fp32.
    """
    with torch.inference_mode():
        expected = reference(**workload.large).numpy()

    def report(variant: str, n_threads: int, run, size_mb: float) -> VariantReport:
        outputs = run(workload.large)
        small = measure_latency(
            lambda: run(workload.small), batch_size(workload.small), workload.repeats_small
        )
        large = measure_latency(
            lambda: run(workload.large), batch_size(workload.large), workload.repeats_large
        )
        return VariantReport(
            model_name,
            variant,
            n_threads,
            small,
            large,
            large.throughput,
            "items/s",
            size_mb,
            agreement(outputs, expected),
            agreement_kind,
            max_abs_diff(outputs, expected),
        )

    def run_torch(inputs: Inputs) -> np.ndarray:
        with torch.inference_mode():
            return reference(**inputs).numpy()

    reports = []
    for n_threads in threads:
        with torch_threads(n_threads):
            reports.append(report("pytorch fp32", n_threads, run_torch, parameter_mb(reference)))
        for variant, path in onnx_files.items():
            session = ort_session(path, n_threads)
            reports.append(report(variant, n_threads, partial(run_session, session), file_mb(path)))
    return reports


def kv_cache_comparison(
    gpt: nn.Module, prompts: Tensor, new_tokens: int, repeats: int, threads: int = 1
) -> list[VariantReport]:
    """Greedy generation with and without the KV cache, one prompt and all ``prompts`` ``(B, T)``.

    Without a cache, step ``i`` re-runs the model over ``T + i`` tokens; with it, over one.
    Agreement is the share of generated tokens equal to the cached run's (1.0 expected).
    """
    one = prompts[:1]
    size_mb = parameter_mb(gpt)

    def generate(ids: Tensor, use_cache: bool) -> Tensor:
        return gpt.generate(ids, new_tokens, temperature=0.0, use_cache=use_cache)

    with torch_threads(threads):
        tokens = {use_cache: generate(prompts, use_cache) for use_cache in (True, False)}
        reports = []
        for use_cache in (True, False):
            small = measure_latency(partial(generate, one, use_cache), 1, repeats)
            large = measure_latency(partial(generate, prompts, use_cache), len(prompts), repeats)
            new_part = slice(prompts.size(1), None)
            same = (tokens[use_cache][:, new_part] == tokens[True][:, new_part]).float().mean()
            reports.append(
                VariantReport(
                    "gpt",
                    "generate, KV cache" if use_cache else "generate, no cache",
                    threads,
                    small,
                    large,
                    len(prompts) * new_tokens / (large.p50_ms / 1000.0),
                    "tokens/s",
                    size_mb,
                    same.item(),
                    "same_tokens",
                    None,
                )
            )
    return reports
