"""What ``weeks/week5_alignment_deployment/inference_optimization.py`` runs: ONNX, int8, KV cache.

Two models are exported to ONNX (fp32 and dynamic int8, :mod:`dl2llm.efficiency.onnx_export`)
and timed against PyTorch fp32 on 1 and 2 threads at batch 1 and batch 32:

- the all-MiniLM-L6-v2 sentence encoder (:func:`encoder_reports`; ``InferenceConfig.quick()``
  exports a 1-layer slice), judged by embedding cosine;
- the project's GPT-2 as "ids -> next-token logits" (:func:`gpt_reports`), judged by
  next-token agreement, plus greedy generation with and without the KV cache.

:func:`run_lesson` runs both and returns the headline metrics, the per-variant reports
(:func:`latency_table` prints them) and the latency plot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dl2llm import paths
from dl2llm.data import english_text, sentiment_records
from dl2llm.efficiency.latency import VariantReport
from dl2llm.efficiency.onnx_export import (
    NextTokenLogits,
    SentenceEncoder,
    Workload,
    compare_variants,
    cosine_agreement,
    export_onnx,
    feed_forward_matmuls,
    first_layers,
    kv_cache_comparison,
    mean_cosine,
    ort_session,
    quantize_int8,
    run_session,
    top1_agreement,
)
from dl2llm.models import load_encoder, load_gpt2_tokenizer
from dl2llm.plots import plt, save_figure
from dl2llm.pretrain import load_project_gpt2

NAME = "inference_optimization"
LARGE_BATCH = 32


@dataclass(frozen=True)
class InferenceConfig:
    """What to export, how long to time each variant, how many tokens to generate, where the
    ONNX files go (``quick()`` for CI: a 1-layer MiniLM slice and the tiny quick GPT)."""

    repeats: int = 50  # timed calls at batch 1; a fifth of that (at least 2) at batch 32
    new_tokens: int = 128
    encoder_layers: int | None = None  # the first layers of MiniLM exported; None: all
    tiny_gpt: bool = False  # the tiny GPT of ``pretrain_gpt --quick`` instead of the full one
    onnx_folder: str = "full"  # the ONNX files' cache folder under ``<home>/onnx``

    @classmethod
    def quick(cls) -> InferenceConfig:
        return cls(repeats=10, encoder_layers=1, tiny_gpt=True, onnx_folder="quick")

    @property
    def timed_calls(self) -> tuple[int, int]:
        """Timed calls at batch 1 and at batch 32."""
        return self.repeats, max(2, self.repeats // 5)

    @property
    def onnx_dir(self) -> Path:
        return paths.home() / "onnx" / self.onnx_folder

    def to_dict(self) -> dict[str, Any]:
        """The results JSON's ``config``."""
        return {
            "repeats": list(self.timed_calls),
            "new_tokens": self.new_tokens,
            "onnx_dir": str(self.onnx_dir),
        }


def export_both(
    model: nn.Module,
    example: dict[str, torch.Tensor],
    folder: Path,
    stem: str,
    output_name: str,
    fp32_ffn: int | None = None,
) -> tuple[dict[str, Path], float]:
    """Export fp32 + int8 ONNX files; returns ``({variant: path}, export seconds)``.

    With ``fp32_ffn`` (the feed-forward width), the int8 file keeps the feed-forward
    products in fp32 (``feed_forward_matmuls``).
    """
    started = time.perf_counter()
    fp32 = export_onnx(model, example, folder / f"{stem}_fp32.onnx", output_name)
    export_s = time.perf_counter() - started
    keep = feed_forward_matmuls(fp32, fp32_ffn) if fp32_ffn else []
    int8 = quantize_int8(fp32, folder / f"{stem}_int8.onnx", keep_fp32=keep)
    return {"onnxruntime fp32": fp32, "onnxruntime int8": int8}, export_s


def encoder_reports(
    config: InferenceConfig,
) -> tuple[list[VariantReport], dict[str, float | int]]:
    """Time MiniLM (its first ``config.encoder_layers``) as PyTorch, ONNX fp32 and ONNX int8.

    Returns the variant reports and the extra metrics (int8's worst cosine, export time).
    """
    bert, tokenizer = load_encoder()
    n_layers = (
        bert.config.num_hidden_layers if config.encoder_layers is None else config.encoder_layers
    )
    repeats, folder = config.timed_calls, config.onnx_dir
    encoder = SentenceEncoder(first_layers(bert, n_layers)).eval()
    texts = [text for text, _ in sentiment_records()[:LARGE_BATCH]]
    large = dict(tokenizer(texts, padding=True, return_tensors="pt"))  # (32, T) padded
    small = dict(tokenizer(texts[:1], return_tensors="pt"))  # (1, T1)
    large = {name: large[name] for name in ("input_ids", "attention_mask")}
    small = {name: small[name] for name in ("input_ids", "attention_mask")}
    example = {name: value[:2] for name, value in large.items()}
    files, export_s = export_both(
        encoder, example, folder, "minilm", "sentence_embedding", bert.config.intermediate_size
    )
    workload = Workload(small, large, *repeats)
    reports = compare_variants("minilm", encoder, files, workload, mean_cosine, "mean_cosine")
    with torch.inference_mode():
        expected = encoder(**large).numpy()  # (32, 384) embeddings
    int8 = run_session(ort_session(files["onnxruntime int8"]), large)
    extra = {
        "minilm_int8_min_cosine": round(float(cosine_agreement(int8, expected).min()), 5),
        "minilm_layers_exported": n_layers,
        "minilm_export_s": round(export_s, 1),
    }
    return reports, extra


def gpt_prompts(length: int) -> torch.Tensor:
    """``(32, length)`` windows of the English text, evenly spaced."""
    ids = torch.tensor(load_gpt2_tokenizer().encode(english_text()[:200_000]))
    starts = torch.linspace(0, len(ids) - length - 1, LARGE_BATCH).long()
    return torch.stack([ids[s : s + length] for s in starts.tolist()])


def gpt_reports(config: InferenceConfig) -> tuple[list[VariantReport], dict[str, float | int]]:
    """Time the project's GPT-2 next-token head (PyTorch, ONNX fp32/int8) and generation.

    ``config.new_tokens`` is capped so that prompt + generation fit the context. Returns the
    variant reports (the KV-cache ones last) and the extra metrics (sizes, export time).
    """
    repeats, folder = config.timed_calls, config.onnx_dir
    gpt = load_project_gpt2(quick=config.tiny_gpt).eval()
    context = gpt.config.context_length
    prompt_len = min(32, context // 4)
    new_tokens = min(config.new_tokens, context - prompt_len)
    prompts = gpt_prompts(prompt_len)  # (32, prompt_len)
    head = NextTokenLogits(gpt).eval()
    files, export_s = export_both(
        head, {"input_ids": prompts[:2]}, folder, "gpt", "next_token_logits"
    )
    workload = Workload({"input_ids": prompts[:1]}, {"input_ids": prompts}, *repeats)
    reports = compare_variants("gpt", head, files, workload, top1_agreement, "top1_agreement")
    reports += kv_cache_comparison(gpt, prompts, new_tokens, repeats=max(2, repeats[1] // 2))
    extra = {
        "gpt_layers": gpt.config.n_layer,
        "gpt_export_s": round(export_s, 1),
        "gpt_prompt_tokens": prompt_len,
        "gpt_new_tokens": new_tokens,
    }
    return reports, extra


def find(reports: list[VariantReport], model: str, variant: str, threads: int) -> VariantReport:
    """The report of ``model``'s ``variant`` on ``threads`` threads."""
    return next(r for r in reports if (r.model, r.variant, r.threads) == (model, variant, threads))


def headline(reports: list[VariantReport]) -> dict[str, float]:
    """int8 and KV-cache speed-ups (single thread) and the exported models' agreement."""
    torch_b1 = find(reports, "minilm", "pytorch fp32", 1)
    int8 = find(reports, "minilm", "onnxruntime int8", 1)
    cached = find(reports, "gpt", "generate, KV cache", 1)
    uncached = find(reports, "gpt", "generate, no cache", 1)
    return {
        "minilm_int8_speedup_b1": round(torch_b1.small.p50_ms / int8.small.p50_ms, 2),
        "minilm_int8_mean_cosine": round(int8.agreement, 5),
        "minilm_ort_fp32_max_abs_diff": find(reports, "minilm", "onnxruntime fp32", 1).max_abs_diff,
        "gpt_ort_fp32_max_abs_diff": find(reports, "gpt", "onnxruntime fp32", 1).max_abs_diff,
        "gpt_int8_top1_agreement": find(reports, "gpt", "onnxruntime int8", 1).agreement,
        "kv_cache_speedup_b1": round(uncached.small.p50_ms / cached.small.p50_ms, 2),
        "kv_cache_speedup_b32": round(uncached.large.p50_ms / cached.large.p50_ms, 2),
    }


def latency_table(reports: list[VariantReport]) -> str:
    """One row per variant: p50/p95 at both batches, throughput, size, agreement."""
    header = (
        f"{'variant':<34} {'b1 p50':>8} {'b1 p95':>8} {'b32 p50':>9} {'b32 p95':>9} "
        f"{'throughput':>18} {'MB':>7} {'agreement':>22} {'max|diff|':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in reports:
        diff = "-" if r.max_abs_diff is None else f"{r.max_abs_diff:.1e}"
        lines.append(
            f"{r.label:<34} {r.small.p50_ms:>8.2f} {r.small.p95_ms:>8.2f} "
            f"{r.large.p50_ms:>9.2f} {r.large.p95_ms:>9.2f} "
            f"{r.throughput:>9.0f} {r.throughput_unit:<8} {r.size_mb:>7.1f} "
            f"{r.agreement_kind + ' ' + format(r.agreement, '.4f'):>22} {diff:>9}"
        )
    lines.append("latencies in ms (p50/p95 over repeated calls); agreement vs PyTorch fp32\n")
    return "\n".join(lines)


def plot_latency(reports: list[VariantReport], path: str | Path) -> Path:
    """p50 latency per variant at batch 1 and batch 32, side by side (log scale)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.35 * len(reports) + 1.5), sharey=True)
    labels = [r.label for r in reports]
    for ax, title, values in (
        (axes[0], "batch 1", [r.small.p50_ms for r in reports]),
        (axes[1], f"batch {LARGE_BATCH}", [r.large.p50_ms for r in reports]),
    ):
        colors = ["tab:gray" if "pytorch" in lab else "tab:blue" for lab in labels]
        ax.barh(labels, values, color=colors)
        ax.set(xscale="log", xlabel="p50 latency (ms, log scale)", title=title)
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    fig.suptitle("Inference latency per variant (lower is better)")
    return save_figure(fig, path)


def run_lesson(
    config: InferenceConfig, out_dir: str | Path
) -> tuple[dict[str, Any], list[VariantReport], list[str]]:
    """Export, time and compare MiniLM and GPT-2; write the latency plot.

    Returns the metrics (headline numbers, extras, and ``variants``: one row per report),
    the reports in table order, and the artifact names.
    """
    encoder, encoder_extra = encoder_reports(config)
    gpt, gpt_extra = gpt_reports(config)
    reports = encoder + gpt
    metrics = {**headline(reports), **encoder_extra, **gpt_extra}
    metrics["variants"] = [r.row() for r in reports]
    plot_name = f"{NAME}_latency.png"
    plot_latency(reports, Path(out_dir) / plot_name)
    return metrics, reports, [plot_name]
