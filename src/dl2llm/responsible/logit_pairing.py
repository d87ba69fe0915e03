"""Counterfactual logit pairing (CLP): fine-tuning that penalises counterfactual gaps.

Garg et al. (2019, "Counterfactual Fairness in Text Classification via Robustness")
add to the classification loss a penalty on how far the model's logit moves when only a
protected attribute changes:

    L = CE(f(x), y) + lambda * mean_{(x, x')} | g(x) - g(x') |

where ``x'`` is ``x`` with the attribute swapped (:func:`~.counterfactual.swap_attribute`)
and ``g`` is the classifier's margin ``logit_positive - logit_negative``. Unlike
counterfactual data augmentation (:mod:`~.mitigation`), which only shows the model both
versions with the same label, CLP asks for the *same score* on both, so it targets the
score gap directly; ``lambda`` trades it against accuracy.

The audit runs it against a baseline fine-tuned the same way without the penalty, probed on
held-out names and templates: :mod:`~.pairing_experiment`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dl2llm.classification import FineTuneConfig, encode, fine_tune_optimizer
from dl2llm.data import LabelledTexts


def margins(model, tokenizer, texts: list[str], max_length: int) -> torch.Tensor:
    """``logit_positive - logit_negative`` of each text, shape ``(B,)`` (with gradients)."""
    logits = model(**encode(tokenizer, texts, max_length, model.device)).logits  # (B, 2)
    return logits[:, 1] - logits[:, 0]


def pairing_gap(model, tokenizer, originals: list[str], swapped: list[str], max_length: int):
    """Mean ``|g(x) - g(x')|`` over the pairs: the penalty of CLP (a scalar tensor)."""
    return (
        (
            margins(model, tokenizer, originals, max_length)
            - margins(model, tokenizer, swapped, max_length)
        )
        .abs()
        .mean()
    )


def clp_fine_tune(
    model,
    tokenizer,
    train: LabelledTexts,
    pairs: tuple[list[str], list[str]],
    config: FineTuneConfig,
    weight: float,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Fine-tune ``model`` in place with CE on ``train`` plus ``weight`` x the pairing gap.

    ``pairs`` = (originals, swapped) counterfactual texts; each step takes the next
    ``config.batch_size`` of them (cycling). Returns per-epoch mean CE and mean gap.
    """
    originals, swapped = pairs
    steps_per_epoch = -(-len(train) // config.batch_size)
    optimizer, scheduler = fine_tune_optimizer(model, config, len(train))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor(train.labels)
    model.train()
    history, pair_start = [], 0
    for _ in range(config.epochs):
        order = torch.randperm(len(train), generator=generator).tolist()
        sums = {"ce": 0.0, "gap": 0.0}
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            texts = [train.texts[i] for i in rows]
            batch = encode(tokenizer, texts, config.max_length, model.device)
            ce = F.cross_entropy(model(**batch).logits, labels[rows])
            chosen = [(pair_start + k) % len(originals) for k in range(config.batch_size)]
            pair_start += config.batch_size
            gap = pairing_gap(
                model, tokenizer, [originals[k] for k in chosen], [swapped[k] for k in chosen],
                config.max_length,
            )  # fmt: skip
            loss = ce + weight * gap
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            sums["ce"] += ce.item() / steps_per_epoch
            sums["gap"] += gap.item() / steps_per_epoch
        history.append(sums)
    model.eval()
    return history
