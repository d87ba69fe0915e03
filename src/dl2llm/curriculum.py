"""The curriculum registry: the single source of truth for weeks and deliverables.

The study plan (``../shared/STUDY_PLAN.md``) has five weeks and a capstone. Each
week lists topics, learning objectives and *deliverables*: runnable scripts and
notebooks whose name is their file's stem (``attention_demo``,
``annotated_transformer``). Everything that lists, runs or documents the course
(``dl2llm list``, ``dl2llm run``, ``make curriculum``, the README's week map,
the CI test that runs every deliverable in quick mode) reads this module.

A deliverable is ``ready`` once it is implemented and tested; ``planned`` ones
are shown in the map but not run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dl2llm import paths
from dl2llm.results import load_results

READY, PLANNED = "ready", "planned"


@dataclass(frozen=True)
class Deliverable:
    """One runnable script or notebook of the course."""

    name: str
    path: str
    measures: str
    status: str = PLANNED
    headline: tuple[str, ...] = ()
    full_args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    timeout_s: int = 3600

    @property
    def kind(self) -> str:
        return "notebook" if self.path.endswith(".ipynb") else "script"

    @property
    def file(self) -> Path:
        return paths.REPO_ROOT / self.path

    def command(self, quick: bool = False) -> str:
        """The shell command a learner types to run it."""
        flag = " --quick" if quick else ""
        return f"dl2llm run {self.name}{flag}"


@dataclass(frozen=True)
class Week:
    """A week of the plan (the capstone is week 6)."""

    number: int
    title: str
    topics: tuple[str, ...]
    objectives: tuple[str, ...]
    deliverables: tuple[Deliverable, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        return "Capstone" if self.number == 6 else f"Week {self.number}"


W1, W2, W3 = "weeks/week1_foundations", "weeks/week2_transformers", "weeks/week3_embeddings"
W4, W5 = "weeks/week4_optimization", "weeks/week5_alignment_deployment"

WEEKS: tuple[Week, ...] = (
    Week(
        1,
        "Deep Learning Foundations",
        (
            "Neural networks & backpropagation",
            "Optimization (SGD, momentum, Adam, AdamW, regularization)",
            "Overfitting, underfitting and generalization",
            "RNNs & LSTMs for language modeling",
        ),
        (
            "Understand the mathematical foundations of neural networks.",
            "Train and evaluate simple models on text data.",
            "Analyze training curves and apply basic optimization methods.",
        ),
        (
            Deliverable(
                "feedforward_nn",
                f"{W1}/feedforward_nn.py",
                "NumPy backprop vs autograd, optimizers from scratch, under/overfitting curves",
                READY,
                ("test_accuracy", "numpy_test_accuracy"),
            ),
            Deliverable(
                "lstm_language_model",
                f"{W1}/lstm_language_model.py",
                "LSTM LM perplexity vs a Kneser-Ney n-gram baseline, samples",
                READY,
                ("test_perplexity", "kn_test_perplexity"),
            ),
        ),
    ),
    Week(
        2,
        "Transformers & Self-Attention",
        (
            "Scaled dot-product and multi-head attention",
            "Transformer architecture: encoders, decoders, positional encoding",
            "Tokenization: BPE, SentencePiece (Unigram), WordPiece",
        ),
        (
            "Understand the role of attention and why it replaces recurrence.",
            "Implement a basic Transformer block.",
            "Explore tokenization strategies and their impact on downstream performance.",
        ),
        (
            Deliverable(
                "attention_demo",
                f"{W2}/attention_demo.py",
                "attention heatmaps; LSTM vs self-attention path length and wall time",
            ),
            Deliverable(
                "annotated_transformer",
                f"{W2}/annotated_transformer.ipynb",
                "encoder-decoder Transformer trained to >= 99% sequence accuracy",
            ),
            Deliverable(
                "tokenizer_experiments",
                f"{W2}/tokenizer_experiments.py",
                "BPE, WordPiece and Unigram: bytes/token, fertility, speed",
                READY,
                (
                    "bpe_bytes_per_token",
                    "wordpiece_bytes_per_token",
                    "unigram_bytes_per_token",
                    "unigram_token_ratio_spm",
                ),
            ),
            Deliverable(
                "pretrain_gpt",
                f"{W2}/pretrain_gpt.py",
                "GPT-2 from scratch pretrained on bundled text: validation loss, tokens/s",
                READY,
                ("val_loss", "unigram_val_loss", "tokens_per_s"),
            ),
        ),
    ),
    Week(
        3,
        "Embeddings & Pre-Trained Models",
        (
            "Traditional embeddings: Word2Vec, GloVe",
            "Contextual embeddings: BERT, GPT",
            "Fine-tuning pre-trained models for classification",
            "Prompt engineering for autoregressive models",
        ),
        (
            "Understand how word and contextual embeddings represent language semantics.",
            "Fine-tune BERT for downstream NLP tasks.",
            "Experiment with prompting GPT-based models for zero-shot or few-shot learning.",
        ),
        (
            Deliverable(
                "embeddings_demo",
                f"{W3}/embeddings_demo.ipynb",
                "Word2Vec vs GloVe vs gensim: analogies, similarity, projections, polysemy",
            ),
            Deliverable(
                "bert_fine_tuning",
                f"{W3}/bert_fine_tuning.py",
                "MiniLM fine-tuned for sentiment vs TF-IDF and frozen-embedding baselines",
            ),
            Deliverable(
                "prompt_engineering",
                f"{W3}/prompt_engineering.ipynb",
                "k-shot prompting, templates, calibration with SmolLM2 (with intervals)",
            ),
        ),
    ),
    Week(
        4,
        "Advanced Fine-Tuning & Optimization",
        (
            "Parameter-efficient tuning: LoRA, adapters, prefix-tuning",
            "Mixed-precision training and gradient checkpointing",
            "Model compression: pruning, quantization, distillation",
        ),
        (
            "Reduce resource requirements with parameter-efficient tuning.",
            "Speed up training and inference with mixed precision and optimization tricks.",
            "Explore compression techniques for constrained environments.",
        ),
        (
            Deliverable(
                "parameter_efficient_tuning",
                f"{W4}/parameter_efficient_tuning.py",
                "full fine-tuning vs LoRA vs adapters vs prefix-tuning: score, params, time",
                READY,
                headline=(
                    "full_accuracy",
                    "lora_r4_accuracy",
                    "lora_r4_relative_score",
                    "lora_r4_trainable_pct",
                ),
            ),
            Deliverable(
                "mixed_precision_training",
                f"{W4}/mixed_precision_training.py",
                "fp32 vs bf16 (vs fp16 + GradScaler on GPU), gradient checkpointing memory",
                READY,
                headline=(
                    "fp32_peak_mib",
                    "fp32_ckpt_peak_mib",
                    "bf16_max_abs_loss_diff",
                    "fp16_underflow_share_unscaled",
                ),
            ),
            Deliverable(
                "model_compression",
                f"{W4}/model_compression.ipynb",
                "pruning, int8 quantization and distillation: size, latency, accuracy",
            ),
        ),
    ),
    Week(
        5,
        "RLHF, Ethical AI & Deployment",
        (
            "Reinforcement learning from human feedback (reward model, PPO, DPO)",
            "Responsible AI: bias detection and mitigation, fairness, transparency",
            "Deployment: ONNX Runtime, FastAPI, vector databases (FAISS) for RAG",
        ),
        (
            "Understand alignment strategies and RLHF.",
            "Identify bias in model outputs and measure mitigation strategies.",
            "Deploy optimized models with low latency and retrieval capabilities.",
        ),
        (
            Deliverable(
                "rl_hf_demo",
                f"{W5}/rl_hf_demo.py",
                "reward model accuracy; PPO and DPO reward, KL and win rate",
            ),
            Deliverable(
                "inference_optimization",
                f"{W5}/inference_optimization.py",
                "ONNX Runtime fp32/int8 and KV cache: latency, throughput, agreement",
            ),
            Deliverable(
                "vector_store_demo",
                f"{W5}/vector_store_demo.ipynb",
                "FAISS Flat/IVF/HNSW/IVF-PQ: recall@10 vs latency",
            ),
            Deliverable(
                "bias_audit",
                f"{W5}/bias_audit.py",
                "CrowS-Pairs, StereoSet, BBQ, counterfactual flips, WEAT; mitigation",
            ),
        ),
    ),
    Week(
        6,
        "A domain question-answering service",
        (
            "Retrieval-augmented generation over the Python documentation",
            "Fine-tuning on domain data (LoRA), distributed training",
            "Deployment as a web API; evaluation; bias audit and report",
        ),
        (
            "Build, deploy and evaluate a complete LLM application.",
            "Document its capabilities, performance and ethical considerations.",
        ),
        (
            Deliverable(
                "retrieval_augmented_generation",
                "capstone/retrieval_augmented_generation.py",
                "grounded answers with citations from a FAISS + BM25 index",
            ),
            Deliverable(
                "deployment_script",
                "capstone/deployment_script.py",
                "the FastAPI QA service (web page, OpenAI-compatible API)",
            ),
            Deliverable(
                "fine_tuning_pipeline",
                "capstone/fine_tuning_pipeline.py",
                "LoRA fine-tuning of SmolLM2 on grounded QA: base vs tuned",
            ),
            Deliverable(
                "evaluation_metrics",
                "capstone/evaluation_metrics.py",
                "recall@k, MRR, nDCG, EM/F1, groundedness, refusal, latency",
            ),
        ),
    ),
)


class UnknownDeliverable(KeyError):
    """No deliverable has that name."""

    def __str__(self) -> str:
        return self.args[0]


def all_deliverables() -> list[Deliverable]:
    """Every deliverable, in course order."""
    return [d for week in WEEKS for d in week.deliverables]


def ready_deliverables() -> list[Deliverable]:
    """The deliverables that are implemented and tested."""
    return [d for d in all_deliverables() if d.status == READY]


def week_of(deliverable: Deliverable) -> Week:
    """The week a deliverable belongs to."""
    return next(week for week in WEEKS if deliverable in week.deliverables)


def get(name: str) -> Deliverable:
    """Look a deliverable up by name (its file's stem, with or without extension)."""
    stem = Path(name).stem
    for deliverable in all_deliverables():
        if deliverable.name == stem:
            return deliverable
    names = ", ".join(d.name for d in all_deliverables())
    raise UnknownDeliverable(f"unknown deliverable '{name}' (known: {names})")


def run(
    deliverable: Deliverable,
    quick: bool = False,
    out: Path | None = None,
    extra_args: list[str] | None = None,
    timeout_s: int | None = None,
) -> int:
    """Run one deliverable in a fresh process and return its exit status.

    Scripts run as ``python <path> [--quick] --out <out> ...``; notebooks are
    executed with ``nbclient`` (see :mod:`dl2llm.notebooks`) with
    ``DL2LLM_QUICK`` and ``DL2LLM_OUT`` in the environment.
    """
    out = Path(out or paths.results_dir())
    args = list(deliverable.quick_args if quick else deliverable.full_args)
    args += ["--out", str(out), *(extra_args or [])]
    env = dict(os.environ)
    if quick:
        env.setdefault("OMP_NUM_THREADS", "1")  # tiny models: one thread is faster
    if deliverable.kind == "notebook":
        cmd = [sys.executable, "-m", "dl2llm.notebooks", str(deliverable.file), *args]
    else:
        cmd = [sys.executable, str(deliverable.file), *args]
    result = subprocess.run(
        cmd, cwd=paths.REPO_ROOT, env=env, timeout=timeout_s or deliverable.timeout_s
    )
    return result.returncode


def headline(deliverable: Deliverable, out: Path | None = None) -> dict[str, Any] | None:
    """The last results of a deliverable reduced to its headline metrics."""
    record = load_results(deliverable.name, out or paths.results_dir())
    if record is None:
        return None
    metrics = record.get("metrics", {})
    return {
        "mode": record.get("mode"),
        "wall_time_s": record.get("wall_time_s"),
        "metrics": {key: metrics[key] for key in deliverable.headline if key in metrics},
    }


def format_value(value: Any) -> str:
    """Numbers to 4 significant digits; everything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def readme_map() -> str:
    """The README's week-by-week map, generated from :data:`WEEKS`."""
    lines = []
    for week in WEEKS:
        lines.append(f"### {week.label}: {week.title}")
        lines.append("")
        lines.append("Topics: " + "; ".join(week.topics) + ".")
        lines.append("")
        lines.append("| Deliverable | Kind | Run it | What it shows | Status |")
        lines.append("|---|---|---|---|---|")
        for d in week.deliverables:
            lines.append(
                f"| [`{Path(d.path).name}`]({d.path}) | {d.kind} | `{d.command()}` "
                f"| {d.measures} | {d.status} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def results_table(out: Path | None = None) -> str:
    """Markdown table of the latest full-mode headline results (for README and SUMMARY)."""
    lines = [
        "| Week | Deliverable | Headline results | Run time |",
        "|---|---|---|---|",
    ]
    for d in all_deliverables():
        summary = headline(d, out)
        if summary is None or summary["mode"] != "full":
            continue
        shown = ", ".join(f"{k} = {format_value(v)}" for k, v in summary["metrics"].items())
        minutes = (summary["wall_time_s"] or 0) / 60
        lines.append(f"| {week_of(d).label} | `{d.name}` | {shown} | {minutes:.1f} min |")
    return "\n".join(lines) + "\n"
