"""Week 2 lesson: pretrain a small GPT on the Python documentation with our own BPE.

The experiment behind ``weeks/week2_transformers/pretrain_gpt.py``:

1. Hold out every 40th file of the Python 3.11 documentation sources (the capstone corpus)
   and train a byte-level BPE (:mod:`dl2llm.tokenizers.bpe`, Sennrich et al., 2016) of
   4,096 tokens on the rest. A small vocabulary keeps the embedding and output head from
   dominating a model this size, as nanoGPT's character runs do.
2. Pretrain a GPT of :mod:`dl2llm.gpt` with :func:`dl2llm.pretrain.pretrain` (AdamW, warmup,
   cosine schedule), checkpointing in the results folder: a killed or ``stop_after`` run
   resumes there.
3. Score the held-out files in bits per byte (:mod:`dl2llm.bits_per_byte`) next to a
   Kneser-Ney trigram on the same tokens (the model must be below it) and, on a slice,
   SmolLM2-135M-Instruct, pretrained at scale (Allal et al., 2025), with its own tokenizer.
4. Report throughput against nanoGPT's CPU "baby" run and as model FLOPs utilisation (MFU)
   of this CPU's fp32 matmul peak, measured in the same run; print samples.

Later weeks need the project's GPT-2-vocabulary model (:func:`dl2llm.pretrain.ensure_project_gpt2`);
when its folder is missing this lesson also trains it with :class:`~dl2llm.pretrain.PretrainConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from dl2llm import bits_per_byte as bpb
from dl2llm.data import python_docs_texts
from dl2llm.finetune import count_parameters
from dl2llm.gpt import GPT, GPTConfig
from dl2llm.models import load_gpt2_tokenizer, load_llm
from dl2llm.plots import plt, save_figure
from dl2llm.pretrain import (
    PretrainConfig,
    cosine_learning_rate,
    encode_text,
    ensure_project_gpt2,
    evaluate_loss,
    pretrain,
    pretraining_corpus,
    project_gpt2_dir,
    save_hf_folder,
)
from dl2llm.tokenizers.bpe import ByteBPETokenizer

NAME = "pretrain_gpt"
EOT = "<|endoftext|>"
PROMPTS = ("The for statement", "A dictionary is", "import os\n")
# nanoGPT's "baby" character config (4 layers, 128 wide, block 64, batch 12) trained at about
# 70 ms per iteration on 2 idle threads of the course's 2-core CPU, torch 2.13
NANOGPT_BABY_TOKENS_PER_S = 11_000.0
SHOWN = ("val_bpb", "kn_val_bpb", "bpb_gain_over_kn", "slice_bpb", "kn_slice_bpb",
         "smollm2_slice_bpb", "val_loss", "tokens_per_s", "speed_vs_nanogpt_baby", "peak_gflops",
         "mfu", "train_minutes", "parameters", "train_tokens_per_corpus_token")  # fmt: skip


@dataclass(frozen=True)
class PretrainLessonConfig:
    """Corpus, tokenizer, model and evaluation of one lesson run (defaults: the full run)."""

    pretrain: PretrainConfig = PretrainConfig(
        # 128 wide rather than 192: at this compute a smaller model seeing ~2x the tokens
        # learns more (Hoffmann et al., 2022); 192 wide for 700 steps stopped at 1.90 bpb.
        model=GPTConfig(vocab_size=4096, context_length=256, n_layer=4, n_head=4, n_embd=128),
        batch_size=16,
        max_steps=1400,
        learning_rate=2e-3,
        min_learning_rate=2e-4,
        warmup_steps=40,
        eval_every=50,
        checkpoint_every=50,
    )
    max_files: int | None = None  # documentation files used (None: all 497)
    val_every: int = 40  # every val_every-th file is held out
    history_val_tokens: int = 20_000  # the loss curve's validation prefix
    kn_order: int = 3
    reference_bytes: int = 16_000  # SmolLM2's slice of the validation text (0: skip it)
    sample_tokens: int = 80
    peak_seconds: float = 1.0  # how long the fp32 matmul peak is timed

    @classmethod
    def quick(cls) -> PretrainLessonConfig:
        return cls(
            pretrain=replace(
                PretrainConfig.quick(), model=replace(PretrainConfig.quick().model, vocab_size=512)
            ),
            max_files=40,
            val_every=10,
            history_val_tokens=2_000,
            reference_bytes=1_000,
            sample_tokens=20,
            peak_seconds=0.1,
        )

    @property
    def vocab_size(self) -> int:
        return self.pretrain.model.vocab_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PretrainLesson:
    """One session of the lesson: finished (``metrics`` set) or paused at ``steps_done``."""

    steps_done: int
    checkpoint: Path
    config: dict[str, Any]
    metrics: dict[str, Any] | None = None
    artifacts: list[str] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        return self.metrics is None


def lesson_settings(quick: bool, seed: int, steps: int | None = None) -> PretrainLessonConfig:
    """:class:`PretrainLessonConfig` (or its ``quick()``) with ``seed`` and ``steps``."""
    settings = PretrainLessonConfig.quick() if quick else PretrainLessonConfig()
    pretrain_settings = replace(settings.pretrain, seed=seed)
    if steps:
        pretrain_settings = replace(pretrain_settings, max_steps=steps)
    return replace(settings, pretrain=pretrain_settings)


def docs_splits(settings: PretrainLessonConfig) -> dict[str, list[str]]:
    """Documentation files as ``{"train", "val"}``: every ``val_every``-th file is held out."""
    docs = python_docs_texts()[: settings.max_files]
    held_out = settings.val_every - 1
    return {
        "train": [doc for i, doc in enumerate(docs) if i % settings.val_every != held_out],
        "val": docs[held_out :: settings.val_every],
    }


def reference_slice(docs: list[str], n_bytes: int) -> str:
    """The first ``n_bytes`` (or fewer) of the validation text, cut after a whole line."""
    text = "\n".join(docs).encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore")
    return text[: text.rfind("\n") + 1] or text


def sample_texts(model: GPT, tokenizer: ByteBPETokenizer, n_tokens: int, seed: int) -> list[str]:
    """A sampled continuation of each of :data:`PROMPTS` (temperature 0.8, top-k 50)."""
    generator = torch.Generator().manual_seed(seed)
    texts = []
    for prompt in PROMPTS:
        ids = torch.tensor([[tokenizer.special_tokens[EOT], *tokenizer.encode_ordinary(prompt)]])
        new_tokens = min(n_tokens, model.config.context_length - ids.size(1))
        out = model.generate(ids, new_tokens, temperature=0.8, top_k=50, generator=generator)
        texts.append(tokenizer.decode(out[0, 1:].tolist()))  # (T + n) ids without the EOT
    return texts


def plot_curves(history: list[dict[str, float]], settings: PretrainConfig, path: Path) -> Path:
    """Train and validation loss per evaluation, and the learning rate of every step."""
    steps = [row["step"] for row in history]
    fig, (loss_ax, lr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(steps, [row["train_loss"] for row in history], label="train (last batch)")
    loss_ax.plot(steps, [row["val_loss"] for row in history], label="validation")
    loss_ax.set(xlabel="step", ylabel="cross-entropy (nats/token)", title="GPT pretraining")
    loss_ax.legend()
    every_step = range(settings.max_steps)
    lr_ax.plot(every_step, [cosine_learning_rate(step, settings) for step in every_step])
    lr_ax.set(xlabel="step", ylabel="learning rate", title="warmup + cosine schedule")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100, bbox_inches=None, image_format="png")


def score_bits_per_byte(
    model: GPT,
    tokenizer: ByteBPETokenizer,
    splits: dict[str, list[str]],
    train_ids: torch.Tensor,
    settings: PretrainLessonConfig,
) -> dict[str, float]:
    """Bits per byte of the validation files: our GPT and a Kneser-Ney n-gram fitted to
    ``train_ids``; on the reference slice also SmolLM2-135M-Instruct."""
    eot = tokenizer.special_tokens[EOT]

    def stream(docs: list[str]) -> torch.Tensor:
        return bpb.document_stream(docs, tokenizer.encode_ordinary, eot)

    kneser_ney = bpb.fit_kneser_ney(train_ids.tolist(), settings.vocab_size, settings.kn_order)
    scores = {}
    texts = {"val": splits["val"]}
    if settings.reference_bytes:
        texts["slice"] = [reference_slice(splits["val"], settings.reference_bytes)]
    for name, docs in texts.items():
        ids, n_bytes = stream(docs), bpb.utf8_bytes(docs)
        scores[f"{name}_bpb"] = bpb.bits_per_byte(bpb.gpt_nats(model, ids, eot), n_bytes)
        scores[f"kn_{name}_bpb"] = bpb.bits_per_byte(
            bpb.kneser_ney_nats(kneser_ney, ids.tolist(), eot), n_bytes
        )
    if settings.reference_bytes:
        llm, llm_tokenizer = load_llm()
        scores["smollm2_slice_bpb"] = bpb.bits_per_byte(
            bpb.hf_nats(llm, llm_tokenizer, texts["slice"]), bpb.utf8_bytes(texts["slice"])
        )
        scores["slice_bytes"] = bpb.utf8_bytes(texts["slice"])
    else:
        scores["smollm2_slice_bpb"] = None  # reference_bytes=0: SmolLM2 is not loaded
    scores["val_bytes"] = bpb.utf8_bytes(splits["val"])
    scores["bpb_gain_over_kn"] = scores["kn_val_bpb"] - scores["val_bpb"]
    return scores


def ensure_project_model(out: Path, device, quick: bool) -> str:
    """Train the project's GPT-2-vocabulary model for later weeks if its folder is missing.

    Returns ``"present"`` or ``"trained"``. The full model trains with
    :class:`~dl2llm.pretrain.PretrainConfig`'s defaults (checkpointed in ``out``).
    """
    if (project_gpt2_dir(quick) / "config.json").is_file():
        return "present"
    if quick:
        ensure_project_gpt2(quick=True)
        return "trained"
    tokenizer = load_gpt2_tokenizer()
    tokens = {split: encode_text(text, tokenizer) for split, text in pretraining_corpus().items()}
    checkpoint = out / f"{NAME}_project_gpt2.ckpt"
    result = pretrain(PretrainConfig(), tokens["train"], tokens["val"], checkpoint, device)
    folder = save_hf_folder(result.model.cpu(), project_gpt2_dir(quick))
    if abs(evaluate_loss(GPT.from_hf(folder), tokens["val"]) - result.final_val_loss) > 1e-4:
        raise RuntimeError(f"the saved model in {folder} does not reload to the same loss")
    checkpoint.unlink(missing_ok=True)
    return "trained"


def run_lesson(
    settings: PretrainLessonConfig,
    out: Path,
    device: torch.device,
    quick: bool,
    restart: bool = False,
    stop_after: int | None = None,
    project_model: bool = True,
) -> PretrainLesson:
    """Pretrain (resuming from ``out/pretrain_gpt.ckpt`` unless ``restart``), then evaluate.

    ``stop_after`` pauses the session after that many steps in all; the checkpoint stays
    for the next call. A finished run removes its checkpoint and writes the tokenizer and
    the curves plot to ``out``; with ``project_model`` it then trains the project's GPT-2 for
    later weeks if that is missing (:func:`ensure_project_model`).
    """
    checkpoint = out / f"{NAME}.ckpt"
    if restart:
        checkpoint.unlink(missing_ok=True)
    splits = docs_splits(settings)
    tokenizer = ByteBPETokenizer.train(splits["train"], settings.vocab_size, special_tokens=[EOT])
    eot = tokenizer.special_tokens[EOT]
    train = bpb.document_stream(splits["train"], tokenizer.encode_ordinary, eot)
    val = bpb.document_stream(splits["val"], tokenizer.encode_ordinary, eot)
    config = {**settings.to_dict(), "device": str(device), "threads": torch.get_num_threads()}
    result = pretrain(settings.pretrain, train, val[: settings.history_val_tokens], checkpoint,
                      device, stop_after=stop_after)  # fmt: skip
    if result.steps_done < settings.pretrain.max_steps:
        return PretrainLesson(result.steps_done, checkpoint, config)
    model = result.model.cpu()
    parameters = count_parameters(model).total
    peak = bpb.peak_gflops(min_time_s=settings.peak_seconds)
    flops = bpb.training_flops_per_token(model.config, parameters)
    metrics = {
        **score_bits_per_byte(model, tokenizer, splits, train, settings),
        "val_loss": result.final_val_loss,
        "tokens_per_s": result.tokens_per_s,
        "speed_vs_nanogpt_baby": result.tokens_per_s / NANOGPT_BABY_TOKENS_PER_S,
        "nanogpt_baby_tokens_per_s": NANOGPT_BABY_TOKENS_PER_S,
        "peak_gflops": peak,
        "flops_per_token": flops,
        "mfu": bpb.model_flops_utilisation(flops, result.tokens_per_s, peak),
        "train_minutes": result.train_seconds / 60,
        "train_tokens": result.train_tokens,
        "train_corpus_tokens": len(train),
        "train_tokens_per_corpus_token": result.train_tokens / len(train),
        "bytes_per_token": bpb.utf8_bytes(splits["val"]) / (len(val) - len(splits["val"])),
        "parameters": parameters,
        "steps": settings.pretrain.max_steps,
        "resumed_from_step": result.resumed_from_step,
        "samples": sample_texts(model, tokenizer, settings.sample_tokens, settings.pretrain.seed),
        "history": result.history,
    }
    if project_model:
        metrics["project_gpt2"] = ensure_project_model(out, device, quick)
    checkpoint.unlink(missing_ok=True)
    tokenizer.save(out / f"{NAME}_tokenizer.json")
    plot_curves(result.history, settings.pretrain, out / f"{NAME}_curves.png")
    return PretrainLesson(settings.pretrain.max_steps, checkpoint, config, metrics,
                          [f"{NAME}_curves.png", f"{NAME}_tokenizer.json"])  # fmt: skip
