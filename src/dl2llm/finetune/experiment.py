"""Comparing fine-tuning methods on one task: score, trainable parameters, time and memory.

The task is binary sentiment classification of movie-review snippets
(:func:`dl2llm.data.sentiment_splits`) with a pretrained encoder, by default
all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT; :func:`dl2llm.models.encoder_path`).
``AutoModelForSequenceClassification`` puts a new linear *head* on the ``[CLS]``
representation. Every method trains that head (it does not exist in the
pretrained model); they differ in what else trains:

- ``full``: every weight (the baseline every method is measured against);
- ``lora_r{r}``: rank-``r`` updates of every attention and feed-forward matrix
  (:mod:`.lora`); ``lora_r{r}_emb`` adds a rank-``r`` update of the token
  embedding table, so the rank sweep and the embedding update are measured apart;
- ``adapters``: Houlsby bottlenecks after each sublayer, plus layer norms (:mod:`.adapters`);
- ``prefix``: per-layer key/value prefixes, trained through Li & Liang's MLP
  reparameterisation and folded into plain prefix vectors after training (:mod:`.prefix`).

BERT and GPT-2 name their matrices differently (:data:`ARCHITECTURES`): BERT has
separate ``query``/``key``/``value`` ``nn.Linear`` layers, GPT-2 one fused ``Conv1D``.
:func:`lora_language_model` runs our LoRA on a Llama-family decoder (SmolLM2)
as causal-LM fine-tuning on held-out text, measured by loss and perplexity.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm

from dl2llm.batching import length_grouped_batches
from dl2llm.classification import LABELS, warmup_linear_scheduler
from dl2llm.data import LabelledTexts
from dl2llm.efficiency.memory import PeakMemory
from dl2llm.finetune import PrefixTuning, count_parameters, inject_adapters, inject_lora
from dl2llm.io import atomic_write_json
from dl2llm.models import encoder_path
from dl2llm.runtime import UsageError

LLAMA_LORA_TARGETS = ("q_proj", "v_proj")  # the paper's choice for attention


class Targets(NamedTuple):
    """Where each method goes in one architecture (module-name patterns of :func:`matches`)."""

    lora: tuple[str, ...]  # every attention and feed-forward matrix
    embedding: str  # the token embedding table
    adapters: tuple[str, ...]  # the two sublayer outputs of each block
    head: str  # the new classification head


ARCHITECTURES = {
    "bert": Targets(
        lora=(
            r"attention\.self\.(query|key|value)",
            r"attention\.output\.dense",
            r"intermediate\.dense",
            r"layer\.\d+\.output\.dense",
        ),
        embedding="word_embeddings",
        adapters=(r"attention\.output\.dense", r"layer\.\d+\.output\.dense"),
        head="classifier",
    ),  # fmt: skip
    "gpt2": Targets(
        ("c_attn", "c_proj", "c_fc"), "wte", (r"attn\.c_proj", r"mlp\.c_proj"), "score"
    ),
}


@dataclass(frozen=True)
class PeftFineTuneConfig:
    """Training settings shared by all methods (the learning rate is chosen per family)."""

    epochs: int = 1
    batch_size: int = 16
    max_length: int = 128
    warmup_fraction: float = 0.1
    adapter_bottleneck: int = 16  # about LoRA r4's parameter count on MiniLM
    prefix_length: int = 10
    prefix_hidden: int = 128  # width of the reparameterisation's embedding and MLP (0: none)


class Method(NamedTuple):
    family: str  # full, lora, adapters or prefix
    rank: int | None = None  # LoRA's rank
    embedding: bool = False  # LoRA also on the token embedding table


def parse_method(method: str) -> Method:
    """``"lora_r4_emb"`` -> ``Method("lora", 4, True)``; ``"full"`` -> ``Method("full")``."""
    family, _, rest = method.partition("_r")
    rank, _, suffix = rest.partition("_")
    if family == "lora" and rank.isdigit() and int(rank) > 0 and suffix in ("", "emb"):
        return Method(family, int(rank), suffix == "emb")
    if family in ("full", "adapters", "prefix") and not rest:
        return Method(family)
    raise UsageError(f"unknown method '{method}' (full, lora_r<rank>[_emb], adapters, prefix)")


def load_classifier(name_or_path: str | Path | None = None) -> nn.Module:
    """The pretrained encoder (default: offline MiniLM) with a new 2-way classification head."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        encoder_path(name_or_path), num_labels=len(LABELS)
    )


def load_tokenizer(name_or_path: str | Path | None = None):
    """The encoder's tokenizer, padding on the right."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoder_path(name_or_path))
    tokenizer.padding_side = "right"
    return tokenizer


def prepare(model: nn.Module, method: str, config: PeftFineTuneConfig) -> nn.Module:
    """Apply ``method`` to ``model``; returns the module to train (the head always trains)."""
    targets = ARCHITECTURES.get(model.config.model_type)
    if targets is None:
        raise UsageError(f"no PEFT targets for '{model.config.model_type}' (bert or gpt2)")
    family, rank, embedding = parse_method(method)
    head = model.get_submodule(targets.head)
    if family == "lora":
        inject_lora(model, targets.lora, r=rank, alpha=2 * rank)
        if embedding:
            inject_lora(model, (targets.embedding,), r=rank, alpha=2 * rank)
    elif family == "adapters":
        inject_adapters(model, targets.adapters, bottleneck=config.adapter_bottleneck)
    elif family == "prefix":
        model = PrefixTuning(model, config.prefix_length, config.prefix_hidden or None)
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
def correct(model: nn.Module, split: dict[str, torch.Tensor], device: torch.device) -> list[int]:
    """1 for each correctly classified example of ``split``, else 0 (in the split's order)."""
    model.eval()
    order = torch.argsort(split["attention_mask"].sum(dim=1))  # similar lengths: little padding
    right = torch.zeros(len(order), dtype=torch.int)
    starts = range(0, len(order), 128)
    for start, batch in zip(starts, minibatches(split, 128, order), strict=True):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        right[order[start : start + 128]] = (logits.argmax(dim=-1) == batch["labels"]).int().cpu()
    return right.tolist()


@dataclass
class RunResult:
    """One (method, learning rate, seed) fine-tuning run: its scores, size, time and memory."""

    method: str
    learning_rate: float
    seed: int
    trainable: int
    total: int
    val_accuracy: float
    test_correct: list[int]  # per test example, so that methods can be paired item by item
    train_time_s: float
    peak_memory_mib: float
    losses: list[float]
    stored: int = 0  # parameters to keep after training (prefix: after folding)

    @property
    def trainable_pct(self) -> float:
        return 100 * self.trainable / self.total

    @property
    def test_accuracy(self) -> float:
        return sum(self.test_correct) / len(self.test_correct)

    @property
    def key(self) -> str:
        return run_key(self.method, self.learning_rate, self.seed)


def run_key(method: str, learning_rate: float, seed: int) -> str:
    """``"lora_r4@0.001#1"``: how runs are named in the progress file."""
    return f"{method}@{learning_rate:g}#{seed}"


def fine_tune(
    model: nn.Module,
    method: str,
    learning_rate: float,
    splits: dict[str, dict[str, torch.Tensor]],
    config: PeftFineTuneConfig,
    device: torch.device,
    seed: int = 0,
    progress: bool = True,
) -> RunResult:
    """Train the trainable parameters of ``model`` with AdamW; measure score, time, memory.

    A prefix is folded (:meth:`PrefixTuning.fold`) before the model is scored.
    """
    model.to(device)
    trainable, total = count_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    total_steps = config.epochs * math.ceil(len(splits["train"]["labels"]) / config.batch_size)
    schedule = warmup_linear_scheduler(
        optimizer, int(config.warmup_fraction * total_steps), total_steps
    )
    generator = torch.Generator().manual_seed(seed)
    lengths = splits["train"]["attention_mask"].sum(dim=1)  # (N,)
    losses = []
    bar = tqdm(total=total_steps, desc=f"{method} lr={learning_rate:g} seed={seed}",
               disable=not progress, leave=False)  # fmt: skip
    started = time.perf_counter()
    with PeakMemory(device) as memory:
        model.train()
        for _ in range(config.epochs):
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
    train_time = time.perf_counter() - started
    bar.close()
    if isinstance(model, PrefixTuning):
        model.fold()
    val = correct(model, splits["val"], device)
    return RunResult(
        method=method,
        learning_rate=learning_rate,
        seed=seed,
        trainable=trainable,
        total=total,
        val_accuracy=sum(val) / len(val),
        test_correct=correct(model, splits["test"], device),
        train_time_s=train_time,
        peak_memory_mib=memory.peak_mib,
        losses=losses,
        stored=count_parameters(model).trainable,
    )


def load_progress(path: Path, run_config: dict) -> dict[str, RunResult]:
    """Runs already finished by an interrupted run with the same settings (resume)."""
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    if saved.get("config") != run_config:
        return {}
    return {key: RunResult(**result) for key, result in saved["done"].items()}


def save_progress(path: Path, run_config: dict, done: dict[str, RunResult]) -> None:
    """Record finished runs atomically, so a killed run resumes after the last one."""
    done_dicts = {key: asdict(result) for key, result in done.items()}
    atomic_write_json(path, {"config": run_config, "done": done_dicts})


def lm_windows(tokenizer, text: str, block_size: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` consecutive, non-overlapping windows of token ids, ``(N, block_size)``."""
    ids = torch.tensor(tokenizer(text)["input_ids"])
    n = min(limit, len(ids) // block_size)
    if n == 0:
        raise UsageError(f"text too short for one window of {block_size} tokens")
    return ids[: n * block_size].view(n, block_size)


@torch.no_grad()
def mean_loss(model: nn.Module, windows: torch.Tensor, device: torch.device) -> float:
    """Mean next-token loss (nats) over ``windows`` (each scored on its own)."""
    model.eval()
    losses = [model(input_ids=w[None].to(device), labels=w[None].to(device)).loss for w in windows]
    return torch.stack(losses).mean().item()


@dataclass
class LanguageModelResult:
    """Causal-LM LoRA fine-tuning of a decoder: held-out loss before and after."""

    val_loss_before: float
    val_loss_after: float
    trainable: int
    total: int
    train_time_s: float
    peak_memory_mib: float
    losses: list[float] = field(default_factory=list)

    @property
    def perplexity_before(self) -> float:
        return math.exp(self.val_loss_before)

    @property
    def perplexity_after(self) -> float:
        return math.exp(self.val_loss_after)


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
    before = mean_loss(model, eval_windows, device)
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
        val_loss_before=before,
        val_loss_after=mean_loss(model, eval_windows, device),
        trainable=trainable,
        total=total,
        train_time_s=train_time,
        peak_memory_mib=memory.peak_mib,
        losses=losses,
    )
