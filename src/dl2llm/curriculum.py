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
                READY,
                ("max_seq_len", "attention_speedup_at_max_len", "minilm_attention_max_abs_diff"),
            ),
            Deliverable(
                "annotated_transformer",
                f"{W2}/annotated_transformer.ipynb",
                "encoder-decoder Transformer trained to >= 99% sequence accuracy",
                READY,
                (
                    "reverse_sequence_accuracy",
                    "dates_sequence_accuracy",
                    "dates_beam_sequence_accuracy",
                ),
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
                READY,
                (
                    "word2vec_analogy_accuracy",
                    "gensim_analogy_accuracy",
                    "word2vec_wordsim_spearman",
                    "gensim_wordsim_spearman",
                    "analogy_coverage",
                ),
            ),
            Deliverable(
                "bert_fine_tuning",
                f"{W3}/bert_fine_tuning.py",
                "MiniLM fine-tuned for sentiment vs TF-IDF and frozen-embedding baselines",
                READY,
                ("test_accuracy", "tfidf_test_accuracy", "frozen_embedding_test_accuracy"),
            ),
            Deliverable(
                "prompt_engineering",
                f"{W3}/prompt_engineering.ipynb",
                "k-shot prompting, templates, calibration with SmolLM2 (with intervals)",
                READY,
                ("zero_shot_accuracy", "best_k_shot_accuracy", "n_test"),
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
                READY,
                headline=(
                    "teacher_accuracy",
                    "torch_int8_drop_pts",
                    "onnx_static_int8_drop_pts",
                    "distilled_retention",
                    "distillation_gain_pts",
                ),
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
                    "reward_model_heldout_accuracy",
                    "ppo_win_rate",
                    "dpo_win_rate",
                    "ppo_final_kl",
                    "dpo_final_kl",
                ),
            ),
            Deliverable(
                "inference_optimization",
                f"{W5}/inference_optimization.py",
                "ONNX Runtime fp32/int8 and KV cache: latency, throughput, agreement",
                READY,
                (
                    "minilm_int8_speedup_b1",
                    "minilm_int8_min_cosine",
                    "minilm_ort_fp32_max_abs_diff",
                    "kv_cache_speedup_b1",
                ),
            ),
            Deliverable(
                "vector_store_demo",
                f"{W5}/vector_store_demo.ipynb",
                "FAISS Flat/IVF/HNSW/IVF-PQ: recall@10 vs latency",
                READY,
                (
                    "scale_vectors",
                    "hnsw_recall_at_10_at_scale",
                    "hnsw_speedup_vs_flat_at_scale",
                ),
            ),
            Deliverable(
                "bias_audit",
                f"{W5}/bias_audit.py",
                "CrowS-Pairs, StereoSet, BBQ, counterfactual flips, WEAT; mitigation",
                READY,
                headline=(
                    "smollm2_crows_stereotype_score",
                    "gpt2_crows_stereotype_score",
                    "bbq_ambiguous_bias_before",
                    "bbq_ambiguous_bias_after",
                    "sentiment_flip_rate_before",
                    "sentiment_flip_rate_after",
                    "sentiment_abs_gap_before",
                    "sentiment_abs_gap_after",
                    "cda_abs_gap_change_vs_control",
                    "cda_accuracy_change_points",
                ),
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
                ("hybrid_mrr", "calibration_balanced_accuracy", "retrieve_ms", "answer_s"),
            ),
            Deliverable(
                "deployment_script",
                "capstone/deployment_script.py",
                "the FastAPI QA service (web page, OpenAI-compatible API)",
                READY,
                ("ask_status", "ask_total_ms", "chat_status"),
                full_args=("--exit-after-check",),
            ),
            Deliverable(
                "fine_tuning_pipeline",
                "capstone/fine_tuning_pipeline.py",
                "LoRA-tune SmolLM2 to pick the API entry that answers; served if it wins on dev",
                READY,
                headline=(
                    "train_loss_last",
                    "dev_evidence_llm_key_term_accuracy",
                    "dev_evidence_llm_tuned_key_term_accuracy",
                    "dev_evidence_llm_tuned_phrasings_passed",
                ),
            ),
            Deliverable(
                "evaluation_metrics",
                "capstone/evaluation_metrics.py",
                "4 systems on hand-written and FAQ questions: key terms, citations, refusals",
                READY,
                headline=(
                    "evidence_key_term_accuracy",
                    "evidence_citation_accuracy",
                    "evidence_false_refusal_rate",
                    "evidence_p50_ms",
                ),
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


# --- Learner resources, time estimates and expected results --------------------------------
# Read by ``dl2llm plan`` (:mod:`dl2llm.schedule`) and ``dl2llm progress``
# (:mod:`dl2llm.progress`).


@dataclass(frozen=True)
class Resource:
    """A reading: a paper, book, course, blog post or documentation site, with a link."""

    kind: str  # "paper", "book", "course", "docs" or "blog"
    citation: str
    url: str
    in_plan: bool = False  # named by the study plan itself (the others are what we implement)


def _paper(citation: str, url: str, in_plan: bool = False) -> Resource:
    return Resource("paper", citation, url, in_plan)


RESOURCES: dict[int, tuple[Resource, ...]] = {
    1: (
        Resource(
            "book",
            "Goodfellow, I., Bengio, Y. & Courville, A. (2016). Deep Learning. MIT Press. "
            "Part I (basics) and chapters 6-8 (feedforward networks, regularization, "
            "optimization).",
            "https://www.deeplearningbook.org/",
            True,
        ),
        Resource(
            "course",
            "Stanford CS231n: Deep Learning for Computer Vision -- course notes on neural "
            "networks (parts 1-3), backpropagation and optimization.",
            "https://cs231n.github.io/",
            True,
        ),
        Resource(
            "docs",
            "PyTorch Tutorials: Learn the Basics (tensors, autograd, building and training "
            "a model).",
            "https://pytorch.org/tutorials/beginner/basics/intro.html",
            True,
        ),
        Resource(
            "docs",
            "TensorFlow Tutorials: beginner quickstart and Keras basics.",
            "https://www.tensorflow.org/tutorials",
            True,
        ),
        _paper(
            "Rumelhart, D. E., Hinton, G. E. & Williams, R. J. (1986). Learning "
            "representations by back-propagating errors. Nature 323, 533-536.",
            "https://doi.org/10.1038/323533a0",
        ),
        _paper(
            "Kingma, D. P. & Ba, J. (2015). Adam: A Method for Stochastic Optimization. ICLR.",
            "https://arxiv.org/abs/1412.6980",
        ),
        _paper(
            "Loshchilov, I. & Hutter, F. (2019). Decoupled Weight Decay Regularization. ICLR.",
            "https://arxiv.org/abs/1711.05101",
        ),
        _paper(
            "Hochreiter, S. & Schmidhuber, J. (1997). Long Short-Term Memory. Neural "
            "Computation 9(8), 1735-1780.",
            "https://doi.org/10.1162/neco.1997.9.8.1735",
        ),
        _paper(
            "Kneser, R. & Ney, H. (1995). Improved backing-off for M-gram language modeling. "
            "ICASSP 1995, 181-184.",
            "https://doi.org/10.1109/ICASSP.1995.479394",
        ),
    ),
    2: (
        _paper(
            "Vaswani, A., Shazeer, N., Parmar, N., Uszkoreit, J., Jones, L., Gomez, A. N., "
            "Kaiser, L. & Polosukhin, I. (2017). Attention Is All You Need. NeurIPS.",
            "https://arxiv.org/abs/1706.03762",
            True,
        ),
        Resource(
            "docs",
            "Hugging Face Tokenizers documentation (models: BPE, WordPiece, Unigram; "
            "pre-tokenizers; trainers).",
            "https://huggingface.co/docs/tokenizers/index",
            True,
        ),
        Resource(
            "blog",
            "Alammar, J. (2018). The Illustrated Transformer.",
            "https://jalammar.github.io/illustrated-transformer/",
            True,
        ),
        Resource(
            "blog",
            "Rush, A. et al. (2018, updated 2022). The Annotated Transformer. Harvard NLP.",
            "https://nlp.seas.harvard.edu/annotated-transformer/",
        ),
        _paper(
            "Sennrich, R., Haddow, B. & Birch, A. (2016). Neural Machine Translation of Rare "
            "Words with Subword Units. ACL.",
            "https://arxiv.org/abs/1508.07909",
        ),
        _paper(
            "Kudo, T. (2018). Subword Regularization: Improving Neural Network Translation "
            "Models with Multiple Subword Candidates. ACL.",
            "https://arxiv.org/abs/1804.10959",
        ),
        _paper(
            "Kudo, T. & Richardson, J. (2018). SentencePiece: A simple and language "
            "independent subword tokenizer and detokenizer for Neural Text Processing. "
            "EMNLP (demo).",
            "https://arxiv.org/abs/1808.06226",
        ),
        _paper(
            "Wu, Y. et al. (2016). Google's Neural Machine Translation System: Bridging the "
            "Gap between Human and Machine Translation (WordPiece).",
            "https://arxiv.org/abs/1609.08144",
        ),
        _paper(
            "Radford, A., Wu, J., Child, R., Luan, D., Amodei, D. & Sutskever, I. (2019). "
            "Language Models are Unsupervised Multitask Learners. OpenAI (GPT-2).",
            "https://cdn.openai.com/better-language-models/"
            "language_models_are_unsupervised_multitask_learners.pdf",
        ),
    ),
    3: (
        _paper(
            "Mikolov, T., Sutskever, I., Chen, K., Corrado, G. & Dean, J. (2013). "
            "Distributed Representations of Words and Phrases and their Compositionality. "
            "NeurIPS.",
            "https://arxiv.org/abs/1310.4546",
            True,
        ),
        _paper(
            "Devlin, J., Chang, M.-W., Lee, K. & Toutanova, K. (2019). BERT: Pre-training of "
            "Deep Bidirectional Transformers for Language Understanding. NAACL.",
            "https://arxiv.org/abs/1810.04805",
            True,
        ),
        Resource(
            "docs",
            "Hugging Face Transformers: Fine-tune a pretrained model (Trainer and native "
            "PyTorch loops).",
            "https://huggingface.co/docs/transformers/training",
            True,
        ),
        _paper(
            "Mikolov, T., Chen, K., Corrado, G. & Dean, J. (2013). Efficient Estimation of "
            "Word Representations in Vector Space. ICLR workshop.",
            "https://arxiv.org/abs/1301.3781",
        ),
        _paper(
            "Pennington, J., Socher, R. & Manning, C. D. (2014). GloVe: Global Vectors for "
            "Word Representation. EMNLP.",
            "https://aclanthology.org/D14-1162/",
        ),
        _paper(
            "Wang, W., Wei, F., Dong, L., Bao, H., Yang, N. & Zhou, M. (2020). MiniLM: Deep "
            "Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained "
            "Transformers. NeurIPS.",
            "https://arxiv.org/abs/2002.10957",
        ),
        _paper(
            "Brown, T. et al. (2020). Language Models are Few-Shot Learners. NeurIPS.",
            "https://arxiv.org/abs/2005.14165",
        ),
        _paper(
            "Zhao, Z., Wallace, E., Feng, S., Klein, D. & Singh, S. (2021). Calibrate Before "
            "Use: Improving Few-Shot Performance of Language Models. ICML.",
            "https://arxiv.org/abs/2102.09690",
        ),
    ),
    4: (
        _paper(
            "Hu, E. J., Shen, Y., Wallis, P., Allen-Zhu, Z., Li, Y., Wang, S., Wang, L. & "
            "Chen, W. (2021). LoRA: Low-Rank Adaptation of Large Language Models. ICLR 2022.",
            "https://arxiv.org/abs/2106.09685",
            True,
        ),
        Resource(
            "docs",
            "NVIDIA. Train With Mixed Precision (Deep Learning Performance user guide).",
            "https://docs.nvidia.com/deeplearning/performance/mixed-precision-training/index.html",
            True,
        ),
        _paper(
            "Hinton, G., Vinyals, O. & Dean, J. (2015). Distilling the Knowledge in a Neural "
            "Network. NeurIPS Deep Learning workshop.",
            "https://arxiv.org/abs/1503.02531",
            True,
        ),
        _paper(
            "Houlsby, N. et al. (2019). Parameter-Efficient Transfer Learning for NLP. ICML.",
            "https://arxiv.org/abs/1902.00751",
        ),
        _paper(
            "Li, X. L. & Liang, P. (2021). Prefix-Tuning: Optimizing Continuous Prompts for "
            "Generation. ACL.",
            "https://arxiv.org/abs/2101.00190",
        ),
        _paper(
            "Micikevicius, P. et al. (2018). Mixed Precision Training. ICLR.",
            "https://arxiv.org/abs/1710.03740",
        ),
        _paper(
            "Chen, T., Xu, B., Zhang, C. & Guestrin, C. (2016). Training Deep Nets with "
            "Sublinear Memory Cost (gradient checkpointing).",
            "https://arxiv.org/abs/1604.06174",
        ),
        _paper(
            "Han, S., Mao, H. & Dally, W. J. (2016). Deep Compression: Compressing Deep Neural "
            "Networks with Pruning, Trained Quantization and Huffman Coding. ICLR.",
            "https://arxiv.org/abs/1510.00149",
        ),
        _paper(
            "Jacob, B. et al. (2018). Quantization and Training of Neural Networks for "
            "Efficient Integer-Arithmetic-Only Inference. CVPR.",
            "https://arxiv.org/abs/1712.05877",
        ),
    ),
    5: (
        _paper(
            "Stiennon, N. et al. (2020). Learning to summarize from human feedback. NeurIPS.",
            "https://arxiv.org/abs/2009.01325",
            True,
        ),
        Resource(
            "docs",
            "Microsoft. Responsible AI principles and approach (fairness, reliability and "
            "safety, privacy and security, inclusiveness, transparency, accountability).",
            "https://www.microsoft.com/en-us/ai/responsible-ai",
            True,
        ),
        Resource(
            "docs",
            "ONNX Runtime documentation.",
            "https://onnxruntime.ai/docs/",
            True,
        ),
        Resource("docs", "FastAPI documentation.", "https://fastapi.tiangolo.com/", True),
        _paper(
            "Schulman, J., Wolski, F., Dhariwal, P., Radford, A. & Klimov, O. (2017). "
            "Proximal Policy Optimization Algorithms.",
            "https://arxiv.org/abs/1707.06347",
        ),
        _paper(
            "Ouyang, L. et al. (2022). Training language models to follow instructions with "
            "human feedback. NeurIPS.",
            "https://arxiv.org/abs/2203.02155",
        ),
        _paper(
            "Rafailov, R., Sharma, A., Mitchell, E., Ermon, S., Manning, C. D. & Finn, C. "
            "(2023). Direct Preference Optimization: Your Language Model is Secretly a "
            "Reward Model. NeurIPS.",
            "https://arxiv.org/abs/2305.18290",
        ),
        _paper(
            "Johnson, J., Douze, M. & Jegou, H. (2019). Billion-scale similarity search with "
            "GPUs. IEEE Transactions on Big Data (FAISS).",
            "https://arxiv.org/abs/1702.08734",
        ),
        _paper(
            "Nangia, N., Vania, C., Bhalerao, R. & Bowman, S. R. (2020). CrowS-Pairs: A "
            "Challenge Dataset for Measuring Social Biases in Masked Language Models. EMNLP.",
            "https://arxiv.org/abs/2010.00133",
        ),
        _paper(
            "Parrish, A. et al. (2022). BBQ: A Hand-Built Bias Benchmark for Question "
            "Answering. Findings of ACL.",
            "https://arxiv.org/abs/2110.08193",
        ),
        _paper(
            "Caliskan, A., Bryson, J. J. & Narayanan, A. (2017). Semantics derived "
            "automatically from language corpora contain human-like biases. Science "
            "356(6334), 183-186 (WEAT).",
            "https://arxiv.org/abs/1608.07187",
        ),
    ),
    6: (
        _paper(
            "Lewis, P. et al. (2020). Retrieval-Augmented Generation for Knowledge-Intensive "
            "NLP Tasks. NeurIPS.",
            "https://arxiv.org/abs/2005.11401",
        ),
        _paper(
            "Robertson, S. & Zaragoza, H. (2009). The Probabilistic Relevance Framework: BM25 "
            "and Beyond. Foundations and Trends in Information Retrieval 3(4), 333-389.",
            "https://doi.org/10.1561/1500000019",
        ),
        _paper(
            "Cormack, G. V., Clarke, C. L. A. & Buettcher, S. (2009). Reciprocal rank fusion "
            "outperforms Condorcet and individual rank learning methods. SIGIR.",
            "https://doi.org/10.1145/1571941.1572114",
        ),
        _paper(
            "Jarvelin, K. & Kekalainen, J. (2002). Cumulated gain-based evaluation of IR "
            "techniques. ACM Transactions on Information Systems 20(4), 422-446 (nDCG).",
            "https://doi.org/10.1145/582415.582418",
        ),
        _paper(
            "Rajpurkar, P., Zhang, J., Lopyrev, K. & Liang, P. (2016). SQuAD: 100,000+ "
            "Questions for Machine Comprehension of Text. EMNLP (exact match and F1).",
            "https://arxiv.org/abs/1606.05250",
        ),
        _paper(
            "Mitchell, M. et al. (2019). Model Cards for Model Reporting. FAccT.",
            "https://arxiv.org/abs/1810.03993",
        ),
    ),
}

# Estimated hours per deliverable, readings and exercises included: 18 h per plan week,
# 108 h in all (see :mod:`dl2llm.schedule` for how they are laid out on the calendar).
HOURS: dict[str, float] = {
    "feedforward_nn": 9,
    "lstm_language_model": 9,
    "attention_demo": 4,
    "annotated_transformer": 6,
    "tokenizer_experiments": 4,
    "pretrain_gpt": 4,
    "embeddings_demo": 6,
    "bert_fine_tuning": 6,
    "prompt_engineering": 6,
    "parameter_efficient_tuning": 7,
    "mixed_precision_training": 5,
    "model_compression": 6,
    "rl_hf_demo": 6,
    "inference_optimization": 4,
    "vector_store_demo": 4,
    "bias_audit": 4,
    "retrieval_augmented_generation": 5,
    "deployment_script": 4,
    "fine_tuning_pipeline": 5,
    "evaluation_metrics": 4,
}

# What a full-mode run should give for each headline metric: ``(low, high)``, inclusive.
EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "feedforward_nn": {"test_accuracy": (0.72, 0.90), "numpy_test_accuracy": (0.72, 0.90)},
    "lstm_language_model": {"test_perplexity": (30.0, 400.0), "kn_test_perplexity": (50.0, 600.0)},
    "attention_demo": {
        "max_seq_len": (512, 8192),
        "attention_speedup_at_max_len": (0.01, 100.0),
        "minilm_attention_max_abs_diff": (0.0, 1e-5),
    },
    "annotated_transformer": {
        "reverse_sequence_accuracy": (0.99, 1.0),
        "dates_sequence_accuracy": (0.99, 1.0),
        "dates_beam_sequence_accuracy": (0.99, 1.0),
    },
    "tokenizer_experiments": {
        "bpe_bytes_per_token": (2.5, 5.0),
        "wordpiece_bytes_per_token": (2.5, 5.0),
        "unigram_bytes_per_token": (2.5, 5.0),
        "unigram_token_ratio_spm": (0.9, 1.1),
    },
    "pretrain_gpt": {
        "val_loss": (3.0, 6.0),
        "unigram_val_loss": (5.5, 8.0),
        "tokens_per_s": (1e3, 1e7),
    },
    "embeddings_demo": {
        "word2vec_analogy_accuracy": (0.0, 1.0),
        "gensim_analogy_accuracy": (0.0, 1.0),
        "word2vec_wordsim_spearman": (0.0, 1.0),
        "gensim_wordsim_spearman": (0.0, 1.0),
        "analogy_coverage": (0.0, 1.0),
    },
    "bert_fine_tuning": {
        "test_accuracy": (0.82, 0.95),
        "tfidf_test_accuracy": (0.72, 0.85),
        "frozen_embedding_test_accuracy": (0.72, 0.85),
    },
    "prompt_engineering": {
        "zero_shot_accuracy": (0.5, 0.95),
        "best_k_shot_accuracy": (0.5, 0.95),
        "n_test": (100, 2000),
    },
    "parameter_efficient_tuning": {
        "full_accuracy": (0.6, 0.95),
        "lora_r4_accuracy": (0.6, 0.95),
        "lora_r4_relative_score": (0.9, 1.1),
        "lora_r4_trainable_pct": (0.0, 5.0),
    },
    "mixed_precision_training": {
        "fp32_peak_mib": (1.0, 4096.0),
        "fp32_ckpt_peak_mib": (1.0, 4096.0),
        "bf16_max_abs_loss_diff": (0.0, 0.5),
        "fp16_underflow_share_unscaled": (0.0, 1.0),
    },
    "model_compression": {
        "teacher_accuracy": (0.84, 0.88),
        "torch_int8_drop_pts": (-1.5, 1.0),
        "onnx_static_int8_drop_pts": (-1.5, 1.0),
        "distilled_retention": (0.90, 0.98),
        "distillation_gain_pts": (-3.0, 4.0),  # within the spread of one seed
    },
    "rl_hf_demo": {
        "reward_model_heldout_accuracy": (0.70, 0.90),
        "ppo_win_rate": (0.53, 0.75),
        "dpo_win_rate": (0.55, 0.80),
        "ppo_final_kl": (0.5, 10.0),
        "dpo_final_kl": (0.5, 15.0),
    },
    "inference_optimization": {
        "minilm_int8_speedup_b1": (2.0, 10.0),
        "minilm_int8_min_cosine": (0.99, 1.0),
        "minilm_ort_fp32_max_abs_diff": (0.0, 1e-4),
        "kv_cache_speedup_b1": (1.0, 20.0),
    },
    "vector_store_demo": {
        "scale_vectors": (100_000, 100_000),
        "hnsw_recall_at_10_at_scale": (0.95, 1.0),
        "hnsw_speedup_vs_flat_at_scale": (10.0, 1000.0),
    },
    "retrieval_augmented_generation": {
        "hybrid_mrr": (0.3, 1.0),
        "calibration_balanced_accuracy": (0.5, 1.0),
        "retrieve_ms": (0.0, 2000.0),
        "answer_s": (0.0, 120.0),
    },
    "bias_audit": {
        "smollm2_crows_stereotype_score": (0.3, 0.7),
        "gpt2_crows_stereotype_score": (0.2, 0.7),
        "bbq_ambiguous_bias_before": (-0.5, 0.5),
        "bbq_ambiguous_bias_after": (-0.5, 0.5),
        "sentiment_flip_rate_before": (0.0, 0.15),
        "sentiment_flip_rate_after": (0.0, 0.15),
        "cda_accuracy_change_points": (-1.0, 1.0),
    },
    "deployment_script": {
        "ask_status": (200, 200),
        "ask_total_ms": (0.0, 60000.0),
        "chat_status": (200, 200),
    },
    "fine_tuning_pipeline": {  # a tuned model answers with a candidate's line, so it passes
        "train_loss_last": (0.0, 0.3),
        "dev_evidence_llm_tuned_phrasings_passed": (0.8, 1.0),
    },
    "evaluation_metrics": {  # the targets: a run that misses them shows as a miss
        "evidence_key_term_accuracy": (0.85, 1.0),
        "evidence_citation_accuracy": (0.9, 1.0),
        "evidence_false_refusal_rate": (0.0, 0.05),
        "evidence_p50_ms": (0.0, 1500.0),
    },
}


def hours_of(deliverable: Deliverable) -> float:
    """Estimated learner hours for a deliverable (readings and exercises included)."""
    return HOURS[deliverable.name]


def resources_of(week: Week) -> tuple[Resource, ...]:
    """The recommended readings of a week, the plan's own first."""
    return tuple(sorted(RESOURCES.get(week.number, ()), key=lambda r: not r.in_plan))


def expected_range(deliverable: Deliverable, metric: str) -> tuple[float, float] | None:
    """The ``(low, high)`` a full run should give for ``metric``, if one is stated."""
    return EXPECTED.get(deliverable.name, {}).get(metric)
