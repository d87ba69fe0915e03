"""Comparing fine-tuning methods on one task: score, trainable parameters, time and memory.

The task is binary sentiment classification of movie-review snippets
(:func:`dl2llm.data.sentiment_splits`) with a GPT-2 model: Hugging Face's
``GPT2ForSequenceClassification`` reads the hidden state of the last real
token and maps it to two logits with a new linear *head*. Every method trains
that head (it does not exist in the pretrained model); they differ in what
else trains:

- ``full``: every weight (the baseline every method is measured against);
- ``lora_r{r}``: rank-``r`` updates of every attention and MLP matrix, plus a
  rank-``lora_embedding_rank`` update of the token embedding table (:mod:`.lora`);
- ``adapters``: Houlsby bottlenecks after each sublayer, plus layer norms (:mod:`.adapters`);
- ``prefix``: learned per-layer key/value prefixes (:mod:`.prefix`).

:func:`lora_language_model` runs our LoRA on a Llama-family decoder (SmolLM2)
as causal-LM fine-tuning on held-out text, measured by perplexity.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import (
    AutoTokenizer,
    GPT2ForSequenceClassification,
)

from dl2llm.batching import length_grouped_batches
from dl2llm.classification import warmup_linear_scheduler
from dl2llm.data import LabelledTexts
from dl2llm.efficiency.memory import PeakMemory
from dl2llm.finetune import PrefixTuning, count_parameters, inject_adapters, inject_lora
from dl2llm.io import atomic_write_json
from dl2llm.pretrain import gpt2_hf_tokenizer
from dl2llm.runtime import UsageError

GPT2_LORA_TARGETS = ("c_attn", "c_proj", "c_fc")  # every matrix of attention and MLP
LLAMA_LORA_TARGETS = ("q_proj", "v_proj")  # the paper's choice for attention
GPT2_EMBEDDING = "wte"  # the token embedding table
HEAD = "score"  # GPT2ForSequenceClassification's new linear head


@dataclass(frozen=True)
class PeftFineTuneConfig:
    """Training settings shared by all methods (learning rates differ per method).

    Checked on the validation split of the sentiment task with the project's
    GPT-2: full fine-tuning does better with 1e-3 than with 2e-4; LoRA with the
    embedding update was tried at 3e-3 only (without it, 1e-3 beat 3e-3 and
    1e-2 after one epoch). The training time includes one validation pass per
    epoch.
    """

    epochs: int = 2
    batch_size: int = 32
    max_length: int = 64
    warmup_fraction: float = 0.06
    lora_embedding_rank: int = 1  # 0: LoRA on the attention and MLP matrices only
    adapter_bottleneck: int = 16
    prefix_length: int = 10
    learning_rates: dict[str, float] = field(
        default_factory=lambda: {"full": 1e-3, "lora": 3e-3, "adapters": 1e-3, "prefix": 1e-2}
    )

    def learning_rate(self, method: str) -> float:
        return self.learning_rates[method.split("_")[0]]


@dataclass
class MethodResult:
    """What one method's fine-tuning measured."""

    method: str
    trainable: int
    total: int
    val_accuracy: float
    test_accuracy: float
    train_time_s: float
    peak_memory_mib: float
    losses: list[float]
    val_accuracies: list[float] = field(default_factory=list)  # after each epoch

    @property
    def trainable_pct(self) -> float:
        return 100 * self.trainable / self.total


def parse_method(method: str) -> tuple[str, int | None]:
    """``"lora_r4"`` -> ``("lora", 4)``; ``"full"`` -> ``("full", None)``."""
    family, _, rank = method.partition("_r")
    if family == "lora" and rank.isdigit() and int(rank) > 0:
        return family, int(rank)
    if family in ("full", "adapters", "prefix") and not rank:
        return family, None
    raise UsageError(f"unknown method '{method}' (full, lora_r<rank>, adapters, prefix)")


def check_gpt2_folder(model_dir: str | Path) -> Path:
    """A local Hugging Face GPT-2 checkpoint folder, or ``UsageError``."""
    folder = Path(model_dir).expanduser()
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise UsageError(f"--model: {folder} is not a Hugging Face folder (no config.json)")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type != "gpt2":
        raise UsageError(f"--model: {folder} holds a '{model_type}' model, not GPT-2")
    return folder


def load_tokenizer(model_dir: Path):
    """The checkpoint's tokenizer (GPT-2 BPE), padding with ``<|endoftext|>`` on the right."""
    if (model_dir / "tokenizer.json").is_file() or (model_dir / "vocab.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    else:
        tokenizer = gpt2_hf_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def load_classifier(model_dir: Path) -> GPT2ForSequenceClassification:
    """The pretrained GPT-2 with a new 2-way classification head.

    Set ``model.config.pad_token_id``: the head reads the last token that is not padding.
    """
    return GPT2ForSequenceClassification.from_pretrained(model_dir, num_labels=2)


def prepare(
    model: GPT2ForSequenceClassification, method: str, config: PeftFineTuneConfig
) -> nn.Module:
    """Apply ``method`` to ``model``; returns the module to train (the head always trains)."""
    family, rank = parse_method(method)
    if family == "lora":
        inject_lora(model, GPT2_LORA_TARGETS, r=rank, alpha=2 * rank)
        if config.lora_embedding_rank:
            embedding_rank = config.lora_embedding_rank
            inject_lora(model, (GPT2_EMBEDDING,), r=embedding_rank, alpha=2 * embedding_rank)
    elif family == "adapters":
        inject_adapters(model, bottleneck=config.adapter_bottleneck)
    elif family == "prefix":
        model = PrefixTuning(model, n_prefix=config.prefix_length)
    head = model.model.score if isinstance(model, PrefixTuning) else model.score
    for param in head.parameters():
        param.requires_grad_(True)
    return model


def encode(tokenizer, data: LabelledTexts, max_length: int) -> dict[str, torch.Tensor]:
    """Right-padded token ids, attention mask and labels for a whole split."""
    batch = tokenizer(
        data.texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {
        "input_ids": batch["input_ids"],  # (N, T)
        "attention_mask": batch["attention_mask"],  # (N, T)
        "labels": torch.tensor(data.labels),  # (N,)
    }


def minibatches(split: dict[str, torch.Tensor], batch_size: int, order: torch.Tensor):
    """Slices of a split in ``order``, trimmed to their longest sequence."""
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        length = int(split["attention_mask"][index].sum(dim=1).max())
        yield {
            "input_ids": split["input_ids"][index, :length],
            "attention_mask": split["attention_mask"][index, :length],
            "labels": split["labels"][index],
        }


@torch.no_grad()
def accuracy(model: nn.Module, split: dict[str, torch.Tensor], device: torch.device) -> float:
    """Share of correctly classified examples."""
    model.eval()
    correct = 0
    order = torch.arange(len(split["labels"]))
    for batch in minibatches(split, 128, order):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        correct += (logits.argmax(dim=-1) == batch["labels"]).sum().item()
    return correct / len(order)


def fine_tune(
    model: nn.Module,
    method: str,
    splits: dict[str, dict[str, torch.Tensor]],
    config: PeftFineTuneConfig,
    device: torch.device,
    seed: int = 0,
    progress: bool = True,
) -> MethodResult:
    """Train the trainable parameters of ``model`` with AdamW; measure score, time, memory."""
    model.to(device)
    trainable, total = count_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate(method), weight_decay=0.0)
    n_train = len(splits["train"]["labels"])
    total_steps = config.epochs * math.ceil(n_train / config.batch_size)
    schedule = warmup_linear_scheduler(
        optimizer, int(config.warmup_fraction * total_steps), total_steps
    )
    generator = torch.Generator().manual_seed(seed)
    lengths = splits["train"]["attention_mask"].sum(dim=1)  # (N,)
    losses, val_accuracies = [], []
    bar = tqdm(total=total_steps, desc=method, disable=not progress, leave=False)
    started = time.perf_counter()
    with PeakMemory(device) as memory:
        for _ in range(config.epochs):
            model.train()
            order = torch.cat(
                length_grouped_batches(lengths, config.batch_size, generator, pool_batches=16)
            )
            for batch in minibatches(splits["train"], config.batch_size, order):
                batch = {k: v.to(device) for k, v in batch.items()}
                loss = model(**batch).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
                bar.update()
            val_accuracies.append(accuracy(model, splits["val"], device))
    train_time = time.perf_counter() - started
    bar.close()
    return MethodResult(
        method=method,
        trainable=trainable,
        total=total,
        val_accuracy=val_accuracies[-1],
        test_accuracy=accuracy(model, splits["test"], device),
        train_time_s=train_time,
        peak_memory_mib=memory.peak_mib,
        losses=losses,
        val_accuracies=val_accuracies,
    )


def accuracy_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95% for ``z = 1.96``) of an accuracy measured on ``n`` examples."""
    shrink = 1 + z**2 / n
    centre = (accuracy + z**2 / (2 * n)) / shrink
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z**2 / (4 * n**2)) / shrink
    return centre - half, centre + half


def load_progress(path: Path, run_config: dict) -> dict[str, MethodResult]:
    """Methods already finished by an interrupted run with the same settings (resume)."""
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    if saved.get("config") != run_config:
        return {}
    return {method: MethodResult(**result) for method, result in saved["done"].items()}


def save_progress(path: Path, run_config: dict, done: dict[str, MethodResult]) -> None:
    """Record finished methods atomically, so a killed run resumes after the last one."""
    done_dicts = {method: asdict(result) for method, result in done.items()}
    atomic_write_json(path, {"config": run_config, "done": done_dicts})


def lm_windows(tokenizer, text: str, block_size: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` consecutive, non-overlapping windows of token ids, ``(N, block_size)``."""
    ids = torch.tensor(tokenizer(text)["input_ids"])
    n = min(limit, len(ids) // block_size)
    if n == 0:
        raise UsageError(f"text too short for one window of {block_size} tokens")
    return ids[: n * block_size].view(n, block_size)


@torch.no_grad()
def perplexity(model: nn.Module, windows: torch.Tensor, device: torch.device) -> float:
    """exp(mean next-token loss) over ``windows`` (each scored on its own)."""
    model.eval()
    losses = [model(input_ids=w[None].to(device), labels=w[None].to(device)).loss for w in windows]
    return math.exp(torch.stack(losses).mean().item())


@dataclass
class LanguageModelResult:
    """Causal-LM LoRA fine-tuning of a decoder: held-out perplexity before and after."""

    perplexity_before: float
    perplexity_after: float
    trainable: int
    total: int
    train_time_s: float
    peak_memory_mib: float
    losses: list[float]


def lora_language_model(
    model: nn.Module,
    train_windows: torch.Tensor,
    eval_windows: torch.Tensor,
    batch_size: int,
    r: int = 8,
    learning_rate: float = 1e-3,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> LanguageModelResult:
    """Inject our LoRA into a Llama-family model's q/v projections and fine-tune it on text."""
    device = torch.device(device)
    model.to(device)
    before = perplexity(model, eval_windows, device)
    inject_lora(model, LLAMA_LORA_TARGETS, r=r, alpha=2 * r)
    trainable, total = count_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    losses = []
    model.train()
    started = time.perf_counter()
    with PeakMemory(device) as memory:
        for start in tqdm(
            range(0, len(train_windows), batch_size), desc="SmolLM2 LoRA", disable=not progress
        ):
            batch = train_windows[start : start + batch_size].to(device)  # (B, T)
            loss = model(input_ids=batch, labels=batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    train_time = time.perf_counter() - started
    return LanguageModelResult(
        perplexity_before=before,
        perplexity_after=perplexity(model, eval_windows, device),
        trainable=trainable,
        total=total,
        train_time_s=train_time,
        peak_memory_mib=memory.peak_mib,
        losses=losses,
    )
