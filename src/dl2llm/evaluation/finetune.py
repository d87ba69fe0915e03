"""Grounded-QA fine-tuning of SmolLM2 with our LoRA, on one process or several (DDP).

Training examples teach the behaviour the RAG prompt asks for and the
evaluation measures: read three numbered passages, answer with the key
sentence(s) of the one that holds the answer, cite it as ``[n]``. They come
from the corpus itself: the ``dev`` FAQ questions (never the held-out ``test``
ones) and synthetic questions made from the titles of other documentation
sections (not the FAQ, not the "What's New" changelogs). Each question is shown
with the passages hybrid retrieval returns for it; when those miss the passage
the gold answer comes from (its section's first chunk), that passage takes a
random slot among them, so every target is grounded in what the model sees.
The target is the section's opening sentences -- the same gold answer token F1
scores -- followed by the number of that passage. Only the answer tokens are
trained on (the prompt's labels are ``-100``), and the language-model head
computes logits for those positions only (``logits_to_keep``), which saves a
fifth of each step on a 49k-word vocabulary.

The adapter is LoRA (Hu et al., 2021) on every attention and MLP projection
(``q/k/v/o_proj``, ``gate/up/down_proj``; :mod:`dl2llm.finetune.lora`), trained
with AdamW, a linear warm-up and a linear decay to zero. Data parallelism
follows PyTorch DDP (Li et al., 2020, "PyTorch Distributed: Experiences on
Accelerating Data Parallel Training"): every process holds the model, takes
its share of each global batch (``rank::world_size``), and the gradients are
averaged across processes before the optimizer step. With per-example losses
averaged over the local examples and equal shares, that average equals the
single-process gradient of the same global batch, so ``torchrun
--nproc_per_node 2`` reproduces one process up to floating-point summation
order.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from dl2llm.evaluation.dataset import EvalItem, gold_answer
from dl2llm.finetune.lora import inject_lora, lora_state_dict, save_lora
from dl2llm.io import atomic_save_torch
from dl2llm.rag.generate import CONTEXT_PASSAGES, build_messages
from dl2llm.rag.index import Index
from dl2llm.rag.retrieve import Hit, Retriever
from dl2llm.runtime import UsageError

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
IGNORE = -100
SYNTHETIC_QUESTION = "What does the documentation say about {}?"
SYNTHETIC_SKIPPED = ("faq/", "whatsnew/")  # held-out FAQ; changelog entries are not answers
MAX_ANSWER_WORDS = 40


@dataclass(frozen=True)
class QAExample:
    """A question, the passages shown with it, and the answer to learn."""

    question: str
    hits: tuple[Hit, ...]
    answer: str


@dataclass(frozen=True)
class TrainConfig:
    """What a fine-tuning run does; a checkpoint only resumes a run with the same config."""

    epochs: int = 1
    global_batch: int = 8
    lr: float = 2e-4
    warmup: float = 0.1  # share of the steps with a linearly rising learning rate
    rank: int = 8
    alpha: float = 16.0
    max_length: int = 512
    seed: int = 0
    checkpoint_every: int = 10


def answer_passage(index: Index, item: EvalItem) -> Hit:
    """The passage the item's gold answer was taken from: its section's first chunk."""
    chunk = index.chunks[min(item.gold_chunk_ids)]
    return Hit(chunk.chunk_id, chunk.doc_id, chunk.path, chunk.anchor, chunk.title, chunk.text, 0.0)


def grounded_passages(
    hits: Sequence[Hit], gold: Hit, slot: int, shown: int = CONTEXT_PASSAGES
) -> tuple[tuple[Hit, ...], int]:
    """The ``shown`` passages with ``gold`` among them, and its 1-based number.

    Retrieval's order stays when its first ``shown`` hits include ``gold``;
    otherwise ``gold`` takes position ``slot`` (0-based) among the others.
    """
    first = [hit.chunk_id for hit in hits[:shown]]
    if gold.chunk_id in first:
        return tuple(hits[:shown]), first.index(gold.chunk_id) + 1
    others = [hit for hit in hits if hit.chunk_id != gold.chunk_id][: shown - 1]
    slot = min(slot, len(others))
    return (*others[:slot], gold, *others[slot:]), slot + 1


def synthetic_items(index: Index, limit: int) -> list[EvalItem]:
    """Questions "What does the documentation say about <title>?", spread over the corpus.

    One per documentation section (FAQ and changelogs excluded) whose opening
    sentences make an answer of at most ``MAX_ANSWER_WORDS`` words, taken
    evenly across the sections.
    """
    sections: dict[tuple[str, str], list[int]] = {}
    for chunk_id in sorted(index.chunks):
        chunk = index.chunks[chunk_id]
        if not chunk.doc_id.startswith(SYNTHETIC_SKIPPED) and " > " in chunk.title:
            sections.setdefault((chunk.doc_id, chunk.anchor), []).append(chunk_id)
    items = []
    for (doc_id, anchor), ids in sections.items():
        first = index.chunks[ids[0]]
        answer = gold_answer(first.text)
        if len(answer.split()) <= MAX_ANSWER_WORDS:
            question = SYNTHETIC_QUESTION.format(first.title.rpartition(" > ")[2])
            items.append(EvalItem(question, doc_id, anchor, frozenset(ids), answer, "synthetic"))
    return interleave(items, limit)


def interleave(items: Sequence[EvalItem], limit: int | None) -> list[EvalItem]:
    """At most ``limit`` items, taken evenly across ``items`` (all when ``limit`` is None)."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise UsageError(f"the training-example limit must be at least 1, got {limit}")
    step = len(items) / limit
    return [items[int(n * step)] for n in range(limit)]


def build_examples(
    retriever: Retriever, items: Sequence[EvalItem], seed: int = 0
) -> list[QAExample]:
    """One grounded example per item: retrieved passages (gold included), cited answer."""
    if any(item.split == "test" for item in items):
        raise UsageError("training examples must not use the held-out test split")
    rng = random.Random(seed)
    examples = []
    for item in tqdm(items, desc="examples", leave=False):
        hits = retriever.retrieve(item.question, CONTEXT_PASSAGES, "hybrid")
        gold = answer_passage(retriever.index, item)
        shown, number = grounded_passages(hits, gold, rng.randrange(CONTEXT_PASSAGES))
        examples.append(QAExample(item.question, shown, f"{item.gold_answer} [{number}]"))
    return examples


def encode_example(tokenizer, example: QAExample, max_length: int) -> dict[str, torch.Tensor]:
    """Token ids and labels (prompt masked) of one example.

    Passages are dropped from the last until prompt and answer fit in
    ``max_length``; if even the bare prompt leaves too little room, the
    answer is cut.
    """
    for shown in range(len(example.hits), -1, -1):
        messages = build_messages(example.question, example.hits[:shown])
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(example.answer + tokenizer.eos_token, add_special_tokens=False)[
            "input_ids"
        ]
        if len(prompt_ids) + len(answer_ids) <= max_length:
            break
    if len(prompt_ids) >= max_length:
        raise UsageError(f"max_length {max_length} leaves no room for the answer; raise it")
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_length]
    return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels])}  # (1, T)


def world() -> tuple[int, int]:
    """``(rank, world_size)``; starts the process group under ``torchrun``."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def tiny_llama(seed: int = 0) -> tuple[nn.Module, object]:
    """``(model, tokenizer)``: a 2-layer random Llama (hidden 32) with SmolLM2's tokenizer.

    For fast tests of the training loop; it learns nothing useful.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from dl2llm.models import llm_path

    tokenizer = AutoTokenizer.from_pretrained(llm_path())
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    return LlamaForCausalLM(config), tokenizer


def answer_loss(model: nn.Module, example: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens, with logits computed only where needed.

    The answer sits at the end of the sequence, so its ``n`` tokens are
    predicted by the last ``n + 1`` positions but one; the same number as
    ``model(**example).loss``, without the other positions' vocabulary logits.
    """
    answer = example["labels"][0][example["labels"][0] != IGNORE]  # (n,)
    out = model(input_ids=example["input_ids"], logits_to_keep=len(answer) + 1)
    return F.cross_entropy(out.logits[0, :-1].float(), answer)  # logits (n, V)


def warmup_then_decay(steps: int, warmup: float) -> Callable[[int], float]:
    """The learning-rate factor: linear from 0 to 1 over the warm-up, then down to 0."""
    rising = max(1, round(warmup * steps))

    def factor(step: int) -> float:
        if step < rising:
            return (step + 1) / rising
        return max(0.0, (steps - step) / max(1, steps - rising))

    return factor


def _checkpoint(path: Path, model, optimizer, schedule, step: int, config, losses) -> None:
    state = {
        "lora": lora_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "step": step,
        "config": asdict(config),
        "losses": losses,
    }
    atomic_save_torch(state, path)


def train_lora(
    model: nn.Module,
    tokenizer,
    examples: Sequence[QAExample],
    config: TrainConfig,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> dict:
    """LoRA-fine-tune ``model`` in place on ``examples``; returns losses and step count.

    Runs data-parallel when started by ``torchrun``. Each global batch of
    ``config.global_batch`` examples is split ``rank::world_size``; a
    checkpoint (rank 0 writes it) lets an interrupted run resume at its step.
    """
    rank, world_size = world()
    if config.global_batch % world_size:
        raise UsageError(
            f"global batch {config.global_batch} must be divisible by {world_size} processes"
        )
    torch.manual_seed(config.seed)  # the same LoRA initialisation on every rank
    inject_lora(model, LORA_TARGETS, config.rank, config.alpha)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    encoded = [encode_example(tokenizer, e, config.max_length) for e in examples]
    order = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(config.seed))
    batches = [
        order[i : i + config.global_batch].tolist()
        for i in range(0, len(order) - config.global_batch + 1, config.global_batch)
    ] * config.epochs
    if not batches:
        raise UsageError(
            f"{len(encoded)} examples are fewer than one batch of {config.global_batch}"
        )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_then_decay(len(batches), config.warmup)
    )
    step, losses = 0, []
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        if state["config"] == asdict(config):
            model.load_state_dict(state["lora"], strict=False)
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            step, losses = state["step"], state["losses"]
    parallel = nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    bar = tqdm(total=len(batches), initial=step, desc="lora", disable=not progress or rank != 0)
    for batch in batches[step:]:
        local = batch[rank::world_size]
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros(())
        for n, index in enumerate(local):
            last = n == len(local) - 1
            sync = contextlib.nullcontext() if last or world_size == 1 else parallel.no_sync()
            with sync:
                loss = answer_loss(parallel, encoded[index]) / len(local)
                loss.backward()
            total += loss.detach()
        if world_size > 1:
            dist.all_reduce(total)
            total /= world_size
        optimizer.step()
        schedule.step()
        step += 1
        losses.append(float(total))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if checkpoint is not None and rank == 0 and step % config.checkpoint_every == 0:
            _checkpoint(checkpoint, model, optimizer, schedule, step, config, losses)
    bar.close()
    model.eval()
    if checkpoint is not None and rank == 0:
        _checkpoint(checkpoint, model, optimizer, schedule, step, config, losses)
    return {"steps": step, "losses": losses, "world_size": world_size}


def save_adapter(model: nn.Module, path: Path) -> Path | None:
    """Rank 0 saves the adapter (see :func:`dl2llm.finetune.lora.save_lora`)."""
    rank, _ = world()
    return save_lora(model, path) if rank == 0 else None
