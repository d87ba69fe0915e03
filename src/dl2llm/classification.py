"""Fine-tuning a pre-trained BERT encoder for sentence classification.

BERT (Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional Transformers
for Language Understanding") is pre-trained once on unlabelled text; for a
downstream task we put a small classification head on top of the ``[CLS]``
representation and train *every* weight for a few epochs with a small learning
rate. The recipe from the paper, which we follow with our own loop:

- AdamW (Loshchilov & Hutter, 2019): Adam with weight decay applied to the
  weights directly, not through the gradient; no decay on biases and LayerNorm.
- learning rate warmed up linearly from 0 over the first steps, then decayed
  linearly to 0 (:func:`warmup_linear_factor`): large early updates through a
  randomly initialised head would otherwise wreck the pre-trained features.
- gradient clipping by global norm (1.0), evaluation on the validation split
  after each epoch, and the best epoch's weights kept (early stopping without
  stopping).

The encoder is all-MiniLM-L6-v2 (Wang et al., 2020, "MiniLM"), a 6-layer,
384-wide BERT. To know whether fine-tuning is worth its cost, it is compared
with two baselines trained on the same split: TF-IDF + logistic regression and
frozen sentence embeddings + logistic regression (:func:`tfidf_baseline`,
:func:`frozen_embedding_baseline`).

The fine-tuned model is saved in Hugging Face format (atomically) to
``$DL2LLM_HOME/sentiment-minilm``; :func:`load_sentiment_classifier` loads it
(week 4 distils it; the week 5 bias audit probes it).
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dl2llm import models, paths
from dl2llm.assets import AssetError
from dl2llm.data import LabelledTexts
from dl2llm.io import atomic_save_torch, replace_dir
from dl2llm.runtime import UsageError

LABELS = ("negative", "positive")
MAX_INPUT_TOKENS = 512  # MiniLM's position embeddings: longer text cannot be read whole
CLASSIFIER_NAME = "sentiment-minilm"
BASELINE_C_GRID = (0.25, 1.0, 4.0, 16.0)


@dataclass(frozen=True)
class FineTuneConfig:
    """Hyper-parameters of :func:`fine_tune` (BERT paper defaults, scaled for MiniLM)."""

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 64


@dataclass
class FineTuneResult:
    """What :func:`fine_tune` measured; the model holds the best epoch's weights."""

    best_epoch: int
    best_val_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)


def warmup_linear_factor(
    step: int, warmup_steps: int, total_steps: int, from_first_step: bool = False
) -> float:
    """Learning-rate multiplier at ``step``: 0 -> 1 over warmup, then 1 -> 0 at the end.

    >>> [warmup_linear_factor(s, 2, 6) for s in range(7)]
    [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]

    ``from_first_step`` counts the current step as done, as nanoGPT's ``(step + 1) /
    warmup``, so the first step already learns:

    >>> [warmup_linear_factor(s, 2, 6, from_first_step=True) for s in range(7)]
    [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    """
    if step < warmup_steps:
        return (step + from_first_step) / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def warmup_linear_scheduler(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    from_first_step: bool = False,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler that multiplies each group's learning rate by :func:`warmup_linear_factor`.

    With ``from_first_step`` False it is ``transformers.get_linear_schedule_with_warmup``.
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_linear_factor(step, warmup_steps, total_steps, from_first_step),
    )


def adamw_with_decay_groups(
    model: nn.Module, learning_rate: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW that decays weight matrices but not biases or LayerNorm parameters."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate)


def fine_tune_optimizer(
    model: nn.Module, config: FineTuneConfig, n_train: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """The BERT recipe's AdamW (decay groups) and warmup-linear schedule for ``n_train`` texts."""
    total_steps = -(-n_train // config.batch_size) * config.epochs
    optimizer = adamw_with_decay_groups(model, config.learning_rate, config.weight_decay)
    scheduler = warmup_linear_scheduler(
        optimizer, int(config.warmup_fraction * total_steps), total_steps
    )
    return optimizer, scheduler


def load_base_classifier(num_labels: int = len(LABELS)):
    """``(model, tokenizer)``: MiniLM with a fresh classification head on ``[CLS]``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = models.encoder_path()
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=num_labels,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    return model, tokenizer


def training_batches(
    data: LabelledTexts, batch_size: int, generator: torch.Generator, bucket_batches: int = 50
):
    """Yield shuffled ``(texts, labels)`` mini-batches of texts of similar length.

    Padding to the longest text in a batch wastes compute on ``[PAD]``; so each
    window of ``bucket_batches`` batches' worth of shuffled examples is sorted by
    length and cut into batches, and the batches are shuffled again.
    """
    order = torch.randperm(len(data), generator=generator).tolist()
    window = batch_size * bucket_batches
    groups = []
    for start in range(0, len(order), window):
        bucket = sorted(order[start : start + window], key=lambda i: len(data.texts[i]))
        groups += [bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size)]
    for g in torch.randperm(len(groups), generator=generator).tolist():
        yield [data.texts[i] for i in groups[g]], torch.tensor([data.labels[i] for i in groups[g]])


def encode(tokenizer, texts: list[str], max_length: int, device: torch.device) -> dict:
    """Tokenize a batch, padded to its longest text (dynamic padding)."""
    enc = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {key: value.to(device) for key, value in enc.items()}  # each (B, T)


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    tokenizer,
    texts: list[str],
    max_length: int = 64,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Class probabilities, shape ``(N, num_labels)``."""
    model.eval()
    device = torch.device(device)
    chunks = []
    for start in range(0, len(texts), batch_size):
        enc = encode(tokenizer, texts[start : start + batch_size], max_length, device)
        logits = model(**enc).logits  # (B, num_labels)
        chunks.append(torch.softmax(logits, dim=-1).cpu())
    return torch.cat(chunks).numpy()


def classification_metrics(labels: list[int] | np.ndarray, predicted: np.ndarray) -> dict:
    """Accuracy, binary F1 (positive class) and the confusion matrix (rows = true)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted)),
        "confusion": confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
    }


def _train_one_epoch(model, tokenizer, data, optimizer, scheduler, config, device, generator):
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total, seen = 0.0, 0
    steps = tqdm(
        training_batches(data, config.batch_size, generator),
        total=-(-len(data) // config.batch_size),
        desc="train",
        leave=False,
    )
    for texts, labels in steps:
        enc = encode(tokenizer, texts, config.max_length, device)
        logits = model(**enc).logits  # (B, 2)
        loss = loss_fn(logits, labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(texts)
        seen += len(texts)
        steps.set_postfix(loss=f"{total / seen:.3f}")
    return total / seen


def fine_tune(
    model: nn.Module,
    tokenizer,
    train: LabelledTexts,
    val: LabelledTexts,
    config: FineTuneConfig,
    device: torch.device | str = "cpu",
    seed: int = 0,
    checkpoint: Path | None = None,
    log: Callable[[str], None] = print,
) -> FineTuneResult:
    """Fine-tune ``model`` in place; on return it holds the best validation epoch.

    After every epoch the full training state is written to ``checkpoint`` (if
    given); a later call with the same config resumes after the last finished
    epoch. The checkpoint is removed when training completes.
    """
    device = torch.device(device)
    model.to(device)
    optimizer, scheduler = fine_tune_optimizer(model, config, len(train))
    generator = torch.Generator().manual_seed(seed)
    result = FineTuneResult(best_epoch=0, best_val_accuracy=-1.0)
    best_state = copy.deepcopy(model.state_dict())
    start_epoch = 1
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        if state["config"] == asdict(config):
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            result, best_state = state["result"], state["best_state"]
            start_epoch = state["epoch"] + 1
            log(f"resumed from {checkpoint} after epoch {state['epoch']}")
    for epoch in range(start_epoch, config.epochs + 1):
        train_loss = _train_one_epoch(
            model, tokenizer, train, optimizer, scheduler, config, device, generator
        )
        val_probs = predict_proba(model, tokenizer, val.texts, config.max_length, device=device)
        val_accuracy = classification_metrics(val.labels, val_probs.argmax(1))["accuracy"]
        result.history.append(
            {"epoch": epoch, "train_loss": train_loss, "val_accuracy": val_accuracy}
        )
        if val_accuracy > result.best_val_accuracy:
            result.best_epoch, result.best_val_accuracy = epoch, val_accuracy
            best_state = copy.deepcopy(model.state_dict())
        if checkpoint is not None:
            atomic_save_torch(
                {
                    "config": asdict(config),
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),  # dropout masks
                    "result": result,
                    "best_state": best_state,
                },
                checkpoint,
            )
        log(f"epoch {epoch}: train loss {train_loss:.4f}, val accuracy {val_accuracy:.4f}")
    model.load_state_dict(best_state)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return result


def classifier_dir(quick: bool = False) -> Path:
    """Where the fine-tuned classifier lives (quick-mode models go to a separate folder)."""
    return paths.home() / (f"{CLASSIFIER_NAME}-quick" if quick else CLASSIFIER_NAME)


def save_classifier(model: nn.Module, tokenizer, target: Path) -> Path:
    """Save in Hugging Face format, atomically: build in a temp folder, then swap it in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    staging.chmod(0o755)  # mkdtemp makes it private; the model is for every reader
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    return replace_dir(staging, target)


def _classifier_folder(quick: bool) -> Path:
    folder = classifier_dir(quick)
    if not (folder / "config.json").is_file():
        how = "dl2llm run bert_fine_tuning" + (" --quick" if quick else "")
        raise AssetError(f"no fine-tuned sentiment classifier in {folder}: run `{how}` first")
    return folder


def load_sentiment_classifier(quick: bool = False):
    """``(model, tokenizer)`` of the fine-tuned sentiment classifier (label 1 = positive).

    Raises :class:`AssetError` if ``bert_fine_tuning`` has not been run yet.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = _classifier_folder(quick)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    model.eval()
    return model, AutoTokenizer.from_pretrained(folder)


def check_texts(texts: list[str], tokenizer=None) -> None:
    """Refuse empty texts and, given a tokenizer, texts longer than the model can read."""
    if not texts:
        raise UsageError("no text given: pass one or more sentences to classify")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise UsageError(f"text {number} is empty: give a sentence to classify")
        if tokenizer is None:
            continue
        n_tokens = len(tokenizer(text, verbose=False)["input_ids"])  # no warning: we say it
        if n_tokens > MAX_INPUT_TOKENS:
            raise UsageError(
                f"text {number} is {n_tokens} tokens long; the classifier reads at most "
                f"{MAX_INPUT_TOKENS} tokens: shorten it or split it into sentences"
            )


def predict_sentiment(texts: list[str], model: nn.Module, tokenizer) -> list[tuple[str, float]]:
    """``(label, probability of that label)`` for each text, after :func:`check_texts`."""
    check_texts(texts, tokenizer)
    probs = predict_proba(model, tokenizer, texts, max_length=MAX_INPUT_TOKENS)  # (N, 2)
    return [(LABELS[int(p.argmax())], float(p.max())) for p in probs]


def classify(texts: list[str], quick: bool = False) -> list[tuple[str, float]]:
    """Check ``texts`` (before loading the model), then :func:`predict_sentiment` them."""
    from transformers import AutoTokenizer

    check_texts(texts)  # empty input is refused even before a model exists
    check_texts(texts, AutoTokenizer.from_pretrained(_classifier_folder(quick)))
    model, tokenizer = load_sentiment_classifier(quick)
    return predict_sentiment(texts, model, tokenizer)


def _best_logistic_regression(x_train, y_train, x_val, y_val):
    """Logistic regression with the inverse regularisation ``C`` chosen on validation."""
    from sklearn.linear_model import LogisticRegression

    best, best_accuracy = None, -1.0
    for c in BASELINE_C_GRID:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        accuracy = clf.score(x_val, y_val)
        if accuracy > best_accuracy:
            best, best_accuracy = clf, accuracy
    return best


def tfidf_baseline(train: LabelledTexts, val: LabelledTexts, test: LabelledTexts) -> np.ndarray:
    """Test-set predictions of TF-IDF (word 1-2 grams) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform(train.texts)  # (N, V) sparse
    clf = _best_logistic_regression(
        x_train, train.labels, vectorizer.transform(val.texts), val.labels
    )
    return clf.predict(vectorizer.transform(test.texts))


def frozen_embedding_baseline(
    train: LabelledTexts, val: LabelledTexts, test: LabelledTexts, batch_size: int = 64
) -> np.ndarray:
    """Test-set predictions of logistic regression on frozen MiniLM sentence embeddings."""
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(models.encoder_path(), device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        return encoder.encode(texts, batch_size=batch_size, convert_to_numpy=True)  # (N, 384)

    clf = _best_logistic_regression(embed(train.texts), train.labels, embed(val.texts), val.labels)
    return clf.predict(embed(test.texts))
