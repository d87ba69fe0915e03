"""A distillation student built from the teacher, and TinyBERT's intermediate-layer loss.

A student trained from random layers must learn language and the task from a few thousand
sentences. Four well-known steps let it start from what the teacher knows:

1. **Vocabulary pruning.** BERT's WordPiece table has 30,522 rows, but a corpus of movie
   snippets uses far fewer of them. :func:`kept_ids` collects the ids a text collection
   uses (plus the special tokens); :class:`CompactEmbedding` keeps only those rows and maps
   every other id to ``[UNK]`` through an id table (a buffer, not a parameter). On a text
   whose ids are all kept the model is unchanged (:func:`prune_vocabulary`; a test checks
   the logits to 1e-5).
2. **A factorised embedding** (Lan et al., 2020, ALBERT): a ``(V, E)`` table and an
   ``(E, C)`` projection instead of one ``(V, C)`` table. :func:`factorised_embedding`
   initialises it from the teacher's (kept) table by principal component analysis, so the
   pair reproduces the teacher's table projected onto its top ``E`` principal axes.
3. **Layers from the teacher** (Sanh et al., 2019, DistilBERT): the student has the
   teacher's width and takes a subset of its layers, its pooler and its classifier
   (:func:`make_student`).
4. **Intermediate-layer distillation** (Jiao et al., 2020, TinyBERT; Wang et al., 2020,
   MiniLM): on unlabelled text the student's last hidden states are pulled towards the
   teacher's through a learned projection (mean squared error) and its last-layer
   attention distributions towards the teacher's (KL divergence per head and query),
   :func:`intermediate_loss`. Prediction-layer distillation (Hinton et al.'s loss,
   :mod:`dl2llm.efficiency.distillation`) follows on the labelled sentences.

The teacher's last-layer hidden states and attention maps are computed once
(:func:`teacher_targets`, stored as float16 without padding) and reused by every seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from dl2llm import classification as clf
from dl2llm.batching import length_grouped_batches
from dl2llm.efficiency.quantization import length_order
from dl2llm.finetune import count_parameters

MAX_STUDENT_SHARE = 0.25


def kept_ids(tokenizer, texts: Sequence[str], max_length: int = 64) -> Tensor:
    """Sorted ids ``(V',)`` that ``texts`` use, plus every special token's id."""
    used = {
        i
        for row in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        for i in row
    }
    return torch.tensor(sorted(used | set(tokenizer.all_special_ids)))


class CompactEmbedding(nn.Module):
    """An embedding over kept ids only: ``up(table(lookup[ids]))``.

    ``lookup`` ``(V,)`` maps an original id to its row of ``table`` ``(V', E)``; unkept ids
    map to the ``[UNK]`` row. ``up`` is ``nn.Identity`` (plain pruning) or an ``(E, C)``
    linear map (factorised embedding).
    """

    def __init__(self, lookup: Tensor, table: nn.Embedding, up: nn.Module | None = None):
        super().__init__()
        self.register_buffer("lookup", lookup)
        self.table = table
        self.up = nn.Identity() if up is None else up

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.up(self.table(self.lookup[input_ids]))  # (B, T, C)


def id_lookup(kept: Tensor, vocab_size: int, unk_id: int) -> Tensor:
    """``(V,)``: ``lookup[kept[i]] = i``; every other id goes to ``[UNK]``'s new index."""
    position = torch.searchsorted(kept, torch.tensor([unk_id]))
    if position.item() >= len(kept) or kept[position].item() != unk_id:
        raise ValueError(f"the kept ids must include [UNK] (id {unk_id})")
    lookup = torch.full((vocab_size,), int(position.item()), dtype=torch.long)
    lookup[kept] = torch.arange(len(kept))
    return lookup


def prune_vocabulary(model: nn.Module, kept: Tensor, unk_id: int) -> nn.Module:
    """Replace a BERT model's word embedding, in place, by the rows of ``kept`` only."""
    embeddings = model.base_model.embeddings
    weight = embeddings.word_embeddings.weight.detach()  # (V, C)
    table = nn.Embedding.from_pretrained(weight[kept].clone(), freeze=False)
    embeddings.word_embeddings = CompactEmbedding(id_lookup(kept, len(weight), unk_id), table)
    return model


def factorised_embedding(weight: Tensor, kept: Tensor, unk_id: int, rank: int) -> CompactEmbedding:
    """``(V', rank)`` coordinates and a ``(rank, C)`` map from the kept rows' top principal axes.

    ``up(table(i)) = mean + (w_i - mean) P P^T`` for kept row ``w_i``, ``P`` ``(C, rank)``
    the top right singular vectors of the centred kept rows: their best rank-``rank``
    approximation (Eckart-Young).
    """
    rows = weight.detach()[kept].double()  # (V', C)
    mean = rows.mean(0)
    _, _, vt = torch.linalg.svd(rows - mean, full_matrices=False)  # vt: (C, C)
    axes = vt[:rank].T  # (C, rank)
    table = nn.Embedding.from_pretrained(((rows - mean) @ axes).float(), freeze=False)
    up = nn.Linear(rank, weight.shape[1])
    with torch.no_grad():
        up.weight.copy_(axes.float())  # (C, rank)
        up.bias.copy_(mean.float())
    return CompactEmbedding(id_lookup(kept, len(weight), unk_id), table, up)


def make_student(
    teacher: nn.Module,
    kept: Tensor,
    unk_id: int,
    layers: Sequence[int] = (0, 5),
    embedding_rank: int = 96,
    max_positions: int = 64,
) -> nn.Module:
    """A BERT classifier of the teacher's width made of its ``layers``, pooler and classifier.

    Word embeddings: :func:`factorised_embedding` of the teacher's table over ``kept`` ids;
    positions: the teacher's first ``max_positions``. Attention is the eager kind, which
    returns attention maps. Raises ``ValueError`` above a quarter of the teacher's size.
    """
    student = copy.deepcopy(teacher)
    bert = student.base_model
    bert.encoder.layer = nn.ModuleList([bert.encoder.layer[i] for i in layers])
    student.config.num_hidden_layers = len(layers)
    student.config.max_position_embeddings = max_positions
    positions = bert.embeddings.position_embeddings.weight.detach()[:max_positions].clone()
    bert.embeddings.position_embeddings = nn.Embedding.from_pretrained(positions, freeze=False)
    words = teacher.base_model.embeddings.word_embeddings.weight
    bert.embeddings.word_embeddings = factorised_embedding(words, kept, unk_id, embedding_rank)
    student.set_attn_implementation("eager")
    share = count_parameters(student).total / count_parameters(teacher).total
    if share > MAX_STUDENT_SHARE:
        raise ValueError(f"student has {share:.1%} of the teacher's parameters (max 25%)")
    return student


def hidden_projection(student_width: int, teacher_width: int) -> nn.Linear:
    """TinyBERT's learned map from student to teacher hidden states (identity if equal)."""
    projection = nn.Linear(student_width, teacher_width)
    if student_width == teacher_width:
        with torch.no_grad():
            projection.weight.copy_(torch.eye(teacher_width))
            projection.bias.zero_()
    return projection


def intermediate_loss(
    student_hidden: Tensor,
    teacher_hidden: Tensor,
    student_attention: Tensor,
    teacher_attention: Tensor,
    mask: Tensor,
    projection: nn.Module,
) -> Tensor:
    """``MSE(projection(h_s), h_t) + KL(A_t || A_s)`` over the real tokens.

    Hidden states ``(B, T, C)``, attention probabilities ``(B, H, T, T)``, ``mask`` ``(B, T)``
    (1 for a real token). The MSE averages over real tokens and channels; the KL sums over
    keys and averages over heads and real queries.
    """
    real = mask.to(student_hidden.dtype)  # (B, T)
    squared = (projection(student_hidden) - teacher_hidden).pow(2).mean(-1)  # (B, T)
    hidden = (squared * real).sum() / real.sum()
    log_student = student_attention.clamp_min(1e-12).log()  # (B, H, T, T)
    kl = (torch.xlogy(teacher_attention, teacher_attention) - teacher_attention * log_student).sum(
        -1
    )
    attention = (kl.mean(1) * real).sum() / real.sum()  # kl: (B, H, T)
    return hidden + attention


@dataclass
class TeacherTargets:
    """Teacher logits ``(N, K)``; per text, last hidden ``(T, C)`` and attention ``(H, T, T)``."""

    logits: Tensor
    hidden: list[Tensor]
    attention: list[Tensor]


@torch.no_grad()
def teacher_targets(
    teacher: nn.Module, tokenizer, texts: list[str], max_length: int = 64, batch_size: int = 64
) -> TeacherTargets:
    """One teacher pass over ``texts`` (batched by length); float16 maps without padding."""
    previous = teacher.config._attn_implementation
    teacher.set_attn_implementation("eager")
    teacher.eval()
    order = length_order(tokenizer, texts, max_length).tolist()
    logits = torch.empty(len(texts), teacher.config.num_labels)
    hidden: list[Tensor] = [torch.empty(0)] * len(texts)
    attention: list[Tensor] = [torch.empty(0)] * len(texts)
    try:
        for start in tqdm(range(0, len(texts), batch_size), desc="teacher", leave=False):
            idx = order[start : start + batch_size]
            batch = clf.encode(tokenizer, [texts[i] for i in idx], max_length, "cpu")
            out = teacher(**batch, output_hidden_states=True, output_attentions=True)
            lengths = batch["attention_mask"].sum(1).tolist()
            for row, (i, n) in enumerate(zip(idx, lengths, strict=True)):
                logits[i] = out.logits[row]
                hidden[i] = out.hidden_states[-1][row, :n].half()  # (T, C)
                attention[i] = out.attentions[-1][row, :, :n, :n].half()  # (H, T, T)
    finally:
        teacher.set_attn_implementation(previous)
    return TeacherTargets(logits, hidden, attention)


def _pad_hidden(rows: list[Tensor], length: int) -> Tensor:
    """Float16 ``(T_i, C)`` rows zero-padded and stacked: ``(B, length, C)``."""
    out = torch.zeros(len(rows), length, rows[0].shape[-1])
    for b, row in enumerate(rows):
        out[b, : len(row)] = row.float()
    return out


def _pad_attention(rows: list[Tensor], length: int) -> Tensor:
    """Float16 ``(H, T_i, T_i)`` maps zero-padded and stacked: ``(B, H, length, length)``."""
    out = torch.zeros(len(rows), rows[0].shape[0], length, length)
    for b, row in enumerate(rows):
        n = row.shape[-1]
        out[b, :, :n, :n] = row.float()
    return out


@dataclass(frozen=True)
class IntermediateConfig:
    """Stage 1: intermediate-layer distillation on unlabelled text."""

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_length: int = 64


def distil_intermediate(
    student: nn.Module,
    tokenizer,
    texts: list[str],
    targets: TeacherTargets,
    config: IntermediateConfig,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Train ``student`` and a projection in place on :func:`intermediate_loss`; loss per epoch."""
    width = student.config.hidden_size
    projection = hidden_projection(width, targets.hidden[0].shape[-1])
    params = nn.ModuleList([student, projection])
    steps = -(-len(texts) // config.batch_size) * config.epochs
    optimizer = clf.adamw_with_decay_groups(params, config.learning_rate, config.weight_decay)
    scheduler = clf.warmup_linear_scheduler(optimizer, int(config.warmup_fraction * steps), steps)
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([len(h) for h in targets.hidden])
    losses = []
    for epoch in range(1, config.epochs + 1):
        student.train()
        running = 0.0
        for idx in tqdm(
            length_grouped_batches(lengths, config.batch_size, generator, 50),
            desc="stage 1",
            leave=False,
        ):
            rows = idx.tolist()
            batch = clf.encode(tokenizer, [texts[i] for i in rows], config.max_length, "cpu")
            length = batch["input_ids"].shape[1]
            out = student.base_model(**batch, output_hidden_states=True, output_attentions=True)
            loss = intermediate_loss(
                out.hidden_states[-1],
                _pad_hidden([targets.hidden[i] for i in rows], length),
                out.attentions[-1],
                _pad_attention([targets.attention[i] for i in rows], length),
                batch["attention_mask"],
                projection,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item() * len(rows)
        losses.append(running / len(texts))
        log(f"stage 1 epoch {epoch}: intermediate loss {losses[-1]:.4f}")
    student.eval()
    return losses
