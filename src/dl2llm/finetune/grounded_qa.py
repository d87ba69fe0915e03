"""Fine-tuning SmolLM2 with our LoRA to choose the API entry that answers, on one
process or several (DDP).

The served answer is built from the documentation's own API entries
(:mod:`dl2llm.rag.evidence`); the encoder ranks them, and the language model
may re-rank: it reads the question and one line per candidate entry
(``- `signature`: sentence``) and answers with the line of the entry that
answers (:class:`dl2llm.rag.generate.LLMGenerator`, ``style="evidence"``).
The base model rarely does this well (its sentences fail the check), so we
teach it.

Training questions never touch the evaluation's **test** documents. They are
written from API entries of every other document (the FAQ and the changelogs
aside) by turning the first sentence of the entry's description into a
question, the way a user who does not know the name would ask it: "Return the
number of items in a container." becomes "How can I get the number of items
in a container?" (:func:`question_from_description`). Each question goes
through the real pipeline's retrieval and evidence selection; its candidates
are the entries a user would get, with the gold entry put among them at a
random place when retrieval missed it. The target is the gold entry's line. The
hand-written **dev** questions are never trained on: they decide whether the
tuned model is served (``capstone/fine_tuning_pipeline.py``).

Only the answer tokens are trained on (the prompt's labels are ``-100``), and
the language-model head computes logits for those positions only
(``logits_to_keep``), which saves a fifth of each step on a 49k-word
vocabulary. The adapter is LoRA (Hu et al., 2021) on every attention and MLP
projection (``q/k/v/o_proj``, ``gate/up/down_proj``;
:mod:`dl2llm.finetune.lora`), trained with AdamW, a linear warm-up and a
linear decay to zero. Data parallelism follows PyTorch DDP (Li et al., 2020,
"PyTorch Distributed: Experiences on Accelerating Data Parallel Training"):
every process holds the model, takes its share of each global batch
(``rank::world_size``), and the gradients are averaged across processes
before the optimizer step. With per-example losses averaged over the local
examples and equal shares, that average equals the single-process gradient of
the same global batch, so ``torchrun --nproc_per_node 2`` reproduces one
process up to floating-point summation order.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from dl2llm.classification import warmup_linear_scheduler
from dl2llm.finetune.lora import inject_lora, lora_state_dict, save_lora
from dl2llm.io import atomic_save_torch
from dl2llm.rag.choice import build_evidence_messages, candidate_line, evidence_candidates
from dl2llm.rag.evidence import Evidence, api_signatures, select_evidence, sentences_of
from dl2llm.rag.index import Index
from dl2llm.rag.pipeline import RAGPipeline
from dl2llm.rag.retrieve import Hit
from dl2llm.runtime import UsageError

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
IGNORE = -100
SKIPPED_DOCUMENTS = ("faq/", "whatsnew/")  # FAQ answers are prose; changelogs are not answers
MAX_QUESTION_WORDS = 24
SHUFFLED = 0.5  # share of examples whose candidates are shown in random order
ASKING = ("How do I", "How can I", "What's the way to", "In Python, how do I", "Is there a way to")
# Imperative openings of API descriptions ("Return ...", "Make an iterator ..."): a user's task.
_TASK = re.compile(
    r"^(Return|Make|Create|Construct|Convert|Remove|Delete|Write|Read|Open|Close|Set|Get|Add|"
    r"Change|Raise|Compute|Calculate|Split|Join|Encode|Decode|Parse|Format|Copy|Move|Rename|"
    r"Wait|Run|Start|Stop|Send|Receive|Register|Print|Build|Generate|Compare|Test|Check|Apply|"
    r"Call|Load|Dump|Serialize|Search|Find|Replace|Sort|Shuffle|Round|Insert|Append|Extend|"
    r"Update|Clear|Reset|Flush|Acquire|Release|Schedule|Cancel|Execute|Evaluate|Compile|Walk|"
    r"List|Iterate|Yield|Count|Translate|Pack|Unpack|Quote|Escape|Shut|Block|Submit|Map|Filter|"
    r"Truncate|Lock|Mark|Log|Emit|Display|Show|Determine|Decompress|Compress)s? (.+?)\.?$"
)


@dataclass(frozen=True)
class EntryQuestion:
    """A question written from an API entry's description, and that entry."""

    question: str
    doc_id: str
    anchor: str


@dataclass(frozen=True)
class QAExample:
    """A question, the candidate entries shown with it, which one answers, and the answer."""

    question: str
    candidates: tuple[Evidence, ...]
    gold: int  # position of the answering entry among the candidates
    answer: str


def question_from_description(sentence: str, asking: str = ASKING[0]) -> str | None:
    """A user's question from an API description's first sentence, or None.

    >>> question_from_description("Return the number of items in a container.")
    'How do I get the number of items in a container?'
    >>> question_from_description("Return True if the path is a directory.", "How can I")
    'How can I check whether the path is a directory?'
    >>> question_from_description("Make an iterator that returns consecutive keys.")
    'How do I make an iterator that returns consecutive keys?'
    >>> question_from_description("Alternate constructor for chain.") is None
    True
    """
    if ">>>" in sentence or len(sentence.split()) > MAX_QUESTION_WORDS:
        return None
    if match := re.match(r"^Returns? (?:True|true) if (.+?)\.?$", sentence):
        return f"{asking} check whether {match.group(1)}?"
    if not (match := _TASK.match(sentence)):
        return None
    verb, rest = match.groups()
    verb = "get" if verb == "Return" else verb.lower()
    return f"{asking} {verb} {rest}?"


def entry_hit(index: Index, chunk_id: int) -> Hit:
    """Chunk ``chunk_id`` of ``index`` as a retrieval hit (score 0)."""
    chunk = index.chunks[chunk_id]
    return Hit(chunk_id, chunk.doc_id, chunk.path, chunk.anchor, chunk.title, chunk.text, 0.0)


def entry_questions(
    index: Index, excluded_documents: set[str], limit: int | None = None, seed: int = 0
) -> list[EntryQuestion]:
    """One question per API entry outside ``excluded_documents`` whose description allows one,
    at most ``limit``, taken evenly across the corpus."""
    rng = random.Random(seed)
    entries: dict[tuple[str, str], Hit] = {}
    for chunk_id in sorted(index.chunks):
        chunk = index.chunks[chunk_id]
        if chunk.doc_id in excluded_documents or chunk.doc_id.startswith(SKIPPED_DOCUMENTS):
            continue
        hit = entry_hit(index, chunk_id)
        if (chunk.doc_id, chunk.anchor) not in entries and api_signatures(hit):
            entries[(chunk.doc_id, chunk.anchor)] = hit
    questions = []
    for (doc_id, anchor), hit in entries.items():
        first = sentences_of(hit.text)[:1]
        question = first and question_from_description(first[0], rng.choice(ASKING))
        if question:
            questions.append(EntryQuestion(question, doc_id, anchor))
    return interleave(questions, limit)


def interleave(items: Sequence, limit: int | None) -> list:
    """At most ``limit`` items, taken evenly across ``items`` (all when ``limit`` is None)."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise UsageError(f"the training-example limit must be at least 1, got {limit}")
    step = len(items) / limit
    return [items[int(n * step)] for n in range(limit)]


def gold_candidate(index: Index, question: EntryQuestion, encoder) -> Evidence:
    """The gold entry as a candidate: its sentence that best matches the question."""
    entry = (question.doc_id, question.anchor)
    hits = [
        entry_hit(index, chunk_id)
        for chunk_id, chunk in sorted(index.chunks.items())
        if (chunk.doc_id, chunk.anchor) == entry
    ]
    return select_evidence(question.question, hits, encoder.encode_short)[0]


def build_examples(
    pipeline: RAGPipeline,
    questions: Sequence[EntryQuestion],
    seed: int = 0,
    shuffled: float = SHUFFLED,
) -> list[QAExample]:
    """One example per question: the pipeline's candidate entries (gold among them), its line.

    In a ``shuffled`` share of the examples the candidates are shown in random
    order, so the encoder's order is a hint, not the answer. Questions the
    pipeline refuses (out of scope, no evidence) are skipped.
    """
    rng = random.Random(seed)
    index, encoder = pipeline.retriever.index, pipeline.retriever.encoder
    examples = []
    for question in tqdm(questions, desc="examples", leave=False):
        prepared = pipeline.prepare(question.question)
        if not prepared.evidence:
            continue
        candidates = evidence_candidates(prepared.evidence)
        keys = [(c.hit.doc_id, c.hit.anchor) for c in candidates]
        if (question.doc_id, question.anchor) in keys:
            gold = keys.index((question.doc_id, question.anchor))
        else:
            gold = rng.randrange(len(candidates))
            candidates[gold:] = [gold_candidate(index, question, encoder), *candidates[gold:-1]]
        if rng.random() < shuffled:  # read the question, not just the encoder's order
            order = rng.sample(range(len(candidates)), len(candidates))
            candidates, gold = [candidates[n] for n in order], order.index(gold)
        answer = candidate_line(candidates[gold])
        examples.append(QAExample(question.question, tuple(candidates), gold, answer))
    return examples


@dataclass(frozen=True)
class QAFineTuneConfig:
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


def encode_example(tokenizer, example: QAExample, max_length: int) -> dict[str, torch.Tensor]:
    """Token ids and labels (prompt masked) of one example.

    Candidates other than the gold one are dropped from the last until prompt
    and answer fit in ``max_length``; if even that leaves too little room,
    the answer is cut.
    """
    others = [n for n in range(len(example.candidates)) if n != example.gold]
    answer_ids = tokenizer(example.answer + tokenizer.eos_token, add_special_tokens=False)[
        "input_ids"
    ]
    for kept in range(len(others), -1, -1):
        keep = sorted([example.gold, *others[:kept]])
        shown = [example.candidates[n] for n in keep]
        messages = build_evidence_messages(example.question, shown)
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
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


def _checkpoint(
    path: Path, model, optimizer, schedule, step: int, config, losses, seconds: float
) -> None:
    state = {
        "lora": lora_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "step": step,
        "config": asdict(config),
        "losses": losses,
        "seconds": seconds,
    }
    atomic_save_torch(state, path)


def train_lora(
    model: nn.Module,
    tokenizer,
    examples: Sequence[QAExample],
    config: QAFineTuneConfig,
    checkpoint: Path | None = None,
    progress: bool = True,
) -> dict:
    """LoRA-fine-tune ``model`` in place on ``examples``; returns losses, step count and
    training seconds (summed over resumed runs).

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
    warmup_steps = max(1, round(config.warmup * len(batches)))
    schedule = warmup_linear_scheduler(optimizer, warmup_steps, len(batches), from_first_step=True)
    step, losses, earlier = 0, [], 0.0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        if state["config"] == asdict(config):
            model.load_state_dict(state["lora"], strict=False)
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            step, losses, earlier = state["step"], state["losses"], state.get("seconds", 0.0)
    started = time.perf_counter()

    def seconds() -> float:  # training time over every run that got here
        return earlier + time.perf_counter() - started

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
            _checkpoint(checkpoint, model, optimizer, schedule, step, config, losses, seconds())
    bar.close()
    model.eval()
    if checkpoint is not None and rank == 0:
        _checkpoint(checkpoint, model, optimizer, schedule, step, config, losses, seconds())
    return {"steps": step, "losses": losses, "world_size": world_size, "seconds": seconds()}


def save_adapter(model: nn.Module, path: Path) -> Path | None:
    """Rank 0 saves the adapter (see :func:`dl2llm.finetune.lora.save_lora`)."""
    rank, _ = world()
    return save_lora(model, path) if rank == 0 else None
