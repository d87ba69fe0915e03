"""The curriculum registry: the single source of truth for weeks and deliverables.

The study plan (``../shared/STUDY_PLAN.md``) has five weeks and a capstone. Each
week lists topics, learning objectives and *deliverables*: runnable scripts and
notebooks whose name is their file's stem (``attention_demo``,
``annotated_transformer``). Everything that lists, runs or documents the course
(``dl2llm list``, ``dl2llm run``, ``make curriculum``, ``dl2llm plan``,
``dl2llm progress``, the README's week map, the CI test that runs every
deliverable in quick mode) reads this module.

One :class:`Deliverable` entry holds everything about a deliverable: its file,
what it measures, its estimated learner hours and its headline metrics with the
range a full run should give (:class:`Metric`). A week's recommended readings
live in ``readings.toml`` next to this module, keyed by :attr:`Week.key`. The
capstone is the :class:`Week` with ``capstone=True``. Adding a week is adding one
``Week(...)`` entry and its readings (``CONTRIBUTING.md``, "How to add a week").

A deliverable is ``ready`` once it is implemented and tested; ``planned`` ones
are shown in the map but not run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from dl2llm import paths
from dl2llm.results import load_results

READY, PLANNED = "ready", "planned"
READINGS = Path(__file__).with_name("readings.toml")


@dataclass(frozen=True)
class Metric:
    """A headline metric: a key of the results JSON shown by ``dl2llm list`` and the README.

    ``expected`` is the ``(low, high)`` a full run should give, inclusive; ``dl2llm
    progress`` judges full runs against it. ``None``: shown, not judged.
    """

    name: str
    expected: tuple[float, float] | None = None


@dataclass(frozen=True)
class Deliverable:
    """One runnable script or notebook of the course, with its hours and headline metrics."""

    name: str
    path: str
    measures: str
    status: str = PLANNED
    metrics: tuple[Metric, ...] = ()
    full_args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    timeout_s: int = 3600
    hours: float = field(kw_only=True)  # learner hours, readings and exercises included

    @property
    def kind(self) -> str:
        return "notebook" if self.path.endswith(".ipynb") else "script"

    @property
    def file(self) -> Path:
        return paths.REPO_ROOT / self.path

    @property
    def headline(self) -> tuple[str, ...]:
        """The headline metrics' names, in the order they are shown."""
        return tuple(metric.name for metric in self.metrics)

    def expected_range(self, metric: str) -> tuple[float, float] | None:
        """The ``(low, high)`` a full run should give for ``metric``, if one is stated."""
        return next((m.expected for m in self.metrics if m.name == metric), None)

    def command(self, quick: bool = False) -> str:
        """The shell command a learner types to run it."""
        flag = " --quick" if quick else ""
        return f"dl2llm run {self.name}{flag}"


@dataclass(frozen=True)
class Week:
    """A week of the plan, or the capstone (``capstone=True``).

    ``number`` orders the weeks and is how an exercise names its week
    (``Exercise.week``); the capstone's label and readings do not depend on it.
    """

    number: int
    title: str
    topics: tuple[str, ...]
    objectives: tuple[str, ...]
    deliverables: tuple[Deliverable, ...] = field(default_factory=tuple)
    capstone: bool = False

    @property
    def label(self) -> str:
        return "Capstone" if self.capstone else f"Week {self.number}"

    @property
    def key(self) -> str:
        """The week's name in ``readings.toml``: ``week1``, ``week2``, ... or ``capstone``."""
        return "capstone" if self.capstone else f"week{self.number}"

    @property
    def hours(self) -> float:
        """Estimated learner hours of the week: the sum over its deliverables."""
        return sum(d.hours for d in self.deliverables)


W1, W2, W3 = "weeks/week1_foundations", "weeks/week2_transformers", "weeks/week3_embeddings"
W4, W5 = "weeks/week4_optimization", "weeks/week5_alignment_deployment"

# Hours: 18 per plan week, readings and exercises included (:mod:`dl2llm.schedule` lays them
# out on the calendar). Expected ranges are for full-mode runs.
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
                (
                    Metric("test_accuracy", (0.72, 0.90)),
                    Metric("numpy_test_accuracy", (0.72, 0.90)),
                ),
                hours=9,
            ),
            Deliverable(
                "lstm_language_model",
                f"{W1}/lstm_language_model.py",
                "LSTM LM perplexity vs a Kneser-Ney n-gram baseline, samples",
                READY,
                (
                    Metric("test_perplexity", (30.0, 400.0)),
                    Metric("kn_test_perplexity", (50.0, 600.0)),
                ),
                hours=9,
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
                READY,
                (
                    Metric("max_seq_len", (512, 8192)),
                    Metric("attention_speedup_at_max_len", (0.01, 100.0)),
                    Metric("minilm_attention_max_abs_diff", (0.0, 1e-5)),
                ),
                hours=4,
            ),
            Deliverable(
                "annotated_transformer",
                f"{W2}/annotated_transformer.ipynb",
                "encoder-decoder Transformer trained to >= 99% sequence accuracy",
                READY,
                (
                    Metric("reverse_sequence_accuracy", (0.99, 1.0)),
                    Metric("dates_sequence_accuracy", (0.99, 1.0)),
                    Metric("dates_beam_sequence_accuracy", (0.99, 1.0)),
                ),
                hours=6,
            ),
            Deliverable(
                "tokenizer_experiments",
                f"{W2}/tokenizer_experiments.py",
                "BPE, WordPiece and Unigram: bytes/token, fertility, speed",
                READY,
                (
                    Metric("bpe_bytes_per_token", (2.5, 5.0)),
                    Metric("wordpiece_bytes_per_token", (2.5, 5.0)),
                    Metric("unigram_bytes_per_token", (2.5, 5.0)),
                    Metric("unigram_token_ratio_spm", (0.9, 1.1)),
                ),
                hours=4,
            ),
            Deliverable(
                "pretrain_gpt",
                f"{W2}/pretrain_gpt.py",
                "GPT-2 from scratch pretrained on bundled text: validation loss, tokens/s",
                READY,
                (
                    Metric("val_loss", (3.0, 6.0)),
                    Metric("unigram_val_loss", (5.5, 8.0)),
                    Metric("tokens_per_s", (1e3, 1e7)),
                ),
                hours=4,
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
                READY,
                (
                    Metric("word2vec_analogy_accuracy", (0.0, 1.0)),
                    Metric("gensim_analogy_accuracy", (0.0, 1.0)),
                    Metric("word2vec_wordsim_spearman", (0.0, 1.0)),
                    Metric("gensim_wordsim_spearman", (0.0, 1.0)),
                    Metric("analogy_coverage", (0.0, 1.0)),
                ),
                hours=6,
            ),
            Deliverable(
                "bert_fine_tuning",
                f"{W3}/bert_fine_tuning.py",
                "MiniLM fine-tuned for sentiment vs TF-IDF and frozen-embedding baselines",
                READY,
                (
                    Metric("test_accuracy", (0.82, 0.95)),
                    Metric("tfidf_test_accuracy", (0.72, 0.85)),
                    Metric("frozen_embedding_test_accuracy", (0.72, 0.85)),
                ),
                hours=6,
            ),
            Deliverable(
                "prompt_engineering",
                f"{W3}/prompt_engineering.ipynb",
                "k-shot prompting, templates, calibration with SmolLM2 (with intervals)",
                READY,
                (
                    Metric("zero_shot_accuracy", (0.5, 0.95)),
                    Metric("best_k_shot_accuracy", (0.5, 0.95)),
                    Metric("n_test", (100, 2000)),
                ),
                hours=6,
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
                (
                    Metric("full_accuracy", (0.6, 0.95)),
                    Metric("lora_r4_accuracy", (0.6, 0.95)),
                    Metric("lora_r4_relative_score", (0.9, 1.1)),
                    Metric("lora_r4_trainable_pct", (0.0, 5.0)),
                ),
                hours=7,
            ),
            Deliverable(
                "mixed_precision_training",
                f"{W4}/mixed_precision_training.py",
                "fp32 vs bf16 (vs fp16 + GradScaler on GPU), gradient checkpointing memory",
                READY,
                (
                    Metric("fp32_peak_mib", (1.0, 4096.0)),
                    Metric("fp32_ckpt_peak_mib", (1.0, 4096.0)),
                    Metric("bf16_max_abs_loss_diff", (0.0, 0.5)),
                    Metric("fp16_underflow_share_unscaled", (0.0, 1.0)),
                ),
                hours=5,
            ),
            Deliverable(
                "model_compression",
                f"{W4}/model_compression.ipynb",
                "pruning, int8 quantization and distillation: size, latency, accuracy",
                READY,
                (
                    Metric("teacher_accuracy", (0.84, 0.88)),
                    Metric("torch_int8_drop_pts", (-1.5, 1.0)),
                    Metric("onnx_static_int8_drop_pts", (-1.5, 1.0)),
                    Metric("distilled_retention", (0.90, 0.98)),
                    Metric("distillation_gain_pts", (-3.0, 4.0)),  # within the spread of one seed
                ),
                hours=6,
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
                READY,
                (
                    Metric("reward_model_heldout_accuracy", (0.70, 0.90)),
                    Metric("ppo_win_rate", (0.53, 0.75)),
                    Metric("dpo_win_rate", (0.55, 0.80)),
                    Metric("ppo_final_kl", (0.5, 10.0)),
                    Metric("dpo_final_kl", (0.5, 15.0)),
                ),
                hours=6,
            ),
            Deliverable(
                "inference_optimization",
                f"{W5}/inference_optimization.py",
                "ONNX Runtime fp32/int8 and KV cache: latency, throughput, agreement",
                READY,
                (
                    Metric("minilm_int8_speedup_b1", (2.0, 10.0)),
                    Metric("minilm_int8_min_cosine", (0.99, 1.0)),
                    Metric("minilm_ort_fp32_max_abs_diff", (0.0, 1e-4)),
                    Metric("kv_cache_speedup_b1", (1.0, 20.0)),
                ),
                hours=4,
            ),
            Deliverable(
                "vector_store_demo",
                f"{W5}/vector_store_demo.ipynb",
                "FAISS Flat/IVF/HNSW/IVF-PQ: recall@10 vs latency",
                READY,
                (
                    Metric("scale_vectors", (100_000, 100_000)),
                    Metric("hnsw_recall_at_10_at_scale", (0.95, 1.0)),
                    Metric("hnsw_speedup_vs_flat_at_scale", (10.0, 1000.0)),
                ),
                hours=4,
            ),
            Deliverable(
                "bias_audit",
                f"{W5}/bias_audit.py",
                "CrowS-Pairs, StereoSet, BBQ, counterfactual flips, WEAT; mitigation",
                READY,
                (
                    Metric("smollm2_crows_stereotype_score", (0.3, 0.7)),
                    Metric("gpt2_crows_stereotype_score", (0.2, 0.7)),
                    Metric("bbq_ambiguous_bias_before", (-0.5, 0.5)),
                    Metric("bbq_ambiguous_bias_after", (-0.5, 0.5)),
                    Metric("sentiment_flip_rate_before", (0.0, 0.15)),
                    Metric("sentiment_flip_rate_after", (0.0, 0.15)),
                    Metric("sentiment_abs_gap_before"),
                    Metric("sentiment_abs_gap_after"),
                    Metric("cda_abs_gap_change_vs_control"),
                    Metric("cda_accuracy_change_points", (-1.0, 1.0)),
                ),
                hours=4,
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
                "evidence-first answers (API signature, cited sentence) from FAISS + BM25",
                READY,
                (
                    Metric("hybrid_mrr", (0.3, 1.0)),
                    Metric("calibration_balanced_accuracy", (0.5, 1.0)),
                    Metric("retrieve_ms", (0.0, 2000.0)),
                    Metric("answer_s", (0.0, 120.0)),
                ),
                hours=5,
            ),
            Deliverable(
                "deployment_script",
                "capstone/deployment_script.py",
                "the FastAPI QA service (web page, OpenAI-compatible API)",
                READY,
                (
                    Metric("ask_status", (200, 200)),
                    Metric("ask_total_ms", (0.0, 60000.0)),
                    Metric("chat_status", (200, 200)),
                ),
                full_args=("--exit-after-check",),
                hours=4,
            ),
            Deliverable(
                "fine_tuning_pipeline",
                "capstone/fine_tuning_pipeline.py",
                "LoRA-tune SmolLM2 to pick the API entry that answers; served if it wins on dev",
                READY,
                (  # a tuned model answers with a candidate's line, so it passes
                    Metric("train_loss_last", (0.0, 0.3)),
                    Metric("dev_evidence_llm_key_term_accuracy"),
                    Metric("dev_evidence_llm_tuned_key_term_accuracy"),
                    Metric("dev_evidence_llm_tuned_phrasings_passed", (0.8, 1.0)),
                ),
                hours=5,
            ),
            Deliverable(
                "evaluation_metrics",
                "capstone/evaluation_metrics.py",
                "4 systems on hand-written and FAQ questions: key terms, citations, refusals",
                READY,
                (  # the targets: a run that misses them shows as a miss
                    Metric("evidence_key_term_accuracy", (0.85, 1.0)),
                    Metric("evidence_citation_accuracy", (0.9, 1.0)),
                    Metric("evidence_false_refusal_rate", (0.0, 0.05)),
                    Metric("evidence_p50_ms", (0.0, 1500.0)),
                ),
                hours=4,
            ),
        ),
        capstone=True,
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


# --- Readings ------------------------------------------------------------------------------
# Read by ``dl2llm plan`` (:mod:`dl2llm.schedule`), from ``readings.toml``.


@dataclass(frozen=True)
class Resource:
    """A reading: a paper, book, course, blog post or documentation site, with a link."""

    kind: str  # "paper", "book", "course", "docs" or "blog"
    citation: str
    url: str
    in_plan: bool = False  # named by the study plan itself (the others are what we implement)


@cache
def load_readings(path: Path) -> dict[str, tuple[Resource, ...]]:
    """The readings in a TOML file: ``[[<week key>]]`` tables of :class:`Resource` fields."""
    with open(path, "rb") as file:
        data = tomllib.load(file)
    return {key: tuple(Resource(**entry) for entry in entries) for key, entries in data.items()}


def resources_of(week: Week) -> tuple[Resource, ...]:
    """The recommended readings of a week (from :data:`READINGS`), the plan's own first."""
    readings = load_readings(READINGS).get(week.key, ())
    return tuple(sorted(readings, key=lambda r: not r.in_plan))
