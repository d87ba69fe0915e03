"""Pretraining the GPT of :mod:`dl2llm.gpt` on the bundled English text, and the project's model.

Pretraining is next-token prediction on raw text: random context-length windows of the
token stream, cross-entropy against the same windows shifted by one. :func:`pretrain` runs
it with AdamW (Loshchilov & Hutter, 2019; weight decay on matrices only), linear warmup and
a cosine learning-rate schedule (Loshchilov & Hutter, 2017) and gradient clipping, with
checkpoints that resume a run exactly (model, optimizer, batch RNG and history).

The project's own small GPT-2 (:class:`PretrainConfig`'s defaults) is trained by the
``pretrain_gpt`` deliverable; later weeks load it with :func:`load_project_gpt2` (our class) or open
:func:`ensure_project_gpt2`'s folder with ``transformers``.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from dl2llm import paths
from dl2llm.assets import AssetError, asset_file
from dl2llm.data import lee_background_lines, lm_splits
from dl2llm.gpt import GPT, GPTConfig
from dl2llm.io import atomic_save_torch, replace_dir
from dl2llm.models import GPT2_EOT, GPT2_EOT_ID, GPT2_PATTERN, load_gpt2_tokenizer
from dl2llm.runtime import UsageError


def gpt2_hf_tokenizer():
    """The real GPT-2 tokenizer as a ``transformers`` fast tokenizer (from the offline ranks).

    Saved next to our checkpoints so ``AutoTokenizer.from_pretrained(folder)`` works; it
    gives the same ids as :func:`dl2llm.models.load_gpt2_tokenizer`.
    """
    from transformers import GPT2TokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    converter = TikTokenConverter(
        vocab_file=str(asset_file("gpt2-bpe", "gpt2.tiktoken")),
        pattern=GPT2_PATTERN,
        extra_special_tokens={GPT2_EOT: GPT2_EOT_ID},
    )
    return GPT2TokenizerFast(
        tokenizer_object=converter.converted(),
        bos_token=GPT2_EOT,
        eos_token=GPT2_EOT,
        unk_token=GPT2_EOT,
        model_max_length=None,
    )


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that decides a pretraining run (the checkpoint resumes only an equal one).

    The defaults train the project's own GPT-2 (``pretrain_gpt``'s full mode, about 10
    minutes on a laptop CPU); :meth:`quick` shrinks it to seconds for CI.
    """

    model: GPTConfig = GPTConfig(context_length=256, n_layer=4, n_head=4, n_embd=128, dropout=0.1)
    batch_size: int = 8
    max_steps: int = 500
    learning_rate: float = 2e-3
    min_learning_rate: float = 2e-4
    warmup_steps: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 50
    checkpoint_every: int = 50
    seed: int = 0

    @classmethod
    def quick(cls) -> PretrainConfig:
        return cls(
            model=GPTConfig(context_length=64, n_layer=2, n_head=2, n_embd=64),
            max_steps=30,
            learning_rate=3e-3,
            min_learning_rate=3e-4,
            warmup_steps=5,
            eval_every=10,
            checkpoint_every=10,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PretrainResult:
    """What a pretraining run measured: one history row per evaluation."""

    model: GPT
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    train_tokens: int = 0
    resumed_from_step: int = 0
    steps_done: int = 0

    @property
    def final_val_loss(self) -> float:
        return self.history[-1]["val_loss"]

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / max(self.train_seconds, 1e-9)


def pretraining_corpus() -> dict[str, str]:
    """Bundled English text: *Botchan*'s train split plus 300 news articles (Lee corpus).

    Validation and test are *Botchan*'s held-out blocks (see :func:`dl2llm.data.lm_splits`),
    so the validation loss is measured on pages of the novel the model never saw.
    """
    splits = lm_splits()
    news = "\n".join(lee_background_lines())
    return {"train": splits["train"] + news, "val": splits["val"], "test": splits["test"]}


def encode_text(text: str, tokenizer=None) -> Tensor:
    """GPT-2 token ids of ``text`` as a 1-D ``LongTensor`` ending in ``<|endoftext|>``."""
    tokenizer = tokenizer or load_gpt2_tokenizer()
    return torch.tensor(tokenizer.encode_ordinary(text) + [GPT2_EOT_ID], dtype=torch.long)


def random_batch(
    tokens: Tensor, batch_size: int, block_size: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``batch_size`` random windows: inputs ``(B, T)`` and the next tokens ``(B, T)``."""
    if len(tokens) <= block_size:
        raise UsageError(f"need more than {block_size} tokens of text, got {len(tokens)}")
    starts = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)
    offsets = starts[:, None] + torch.arange(block_size + 1)  # (B, T + 1)
    windows = tokens[offsets.to(tokens.device)]
    return windows[:, :-1], windows[:, 1:]  # (B, T), (B, T)


def cosine_learning_rate(step: int, config: PretrainConfig) -> float:
    """Linear warmup to the peak rate, then a cosine decay to the minimum at ``max_steps``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return config.min_learning_rate + cosine * (config.learning_rate - config.min_learning_rate)


def language_model_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean next-token cross-entropy (nats) of ``(B, T, V)`` logits against ``(B, T)`` ids."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


@torch.no_grad()
def evaluate_loss(model: GPT, tokens: Tensor, batch_size: int = 8) -> float:
    """Mean loss over the non-overlapping context-length windows of ``tokens`` (a shorter
    tail is left out)."""
    block = model.config.context_length
    n_windows = (len(tokens) - 1) // block
    if n_windows == 0:
        block, n_windows = len(tokens) - 1, 1
    inputs = tokens[: n_windows * block].view(n_windows, block)  # (N, T)
    targets = tokens[1 : n_windows * block + 1].view(n_windows, block)
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, n_windows, batch_size):
        logits = model(inputs[start : start + batch_size])
        loss = language_model_loss(logits, targets[start : start + batch_size])
        total += loss.item() * len(logits)
    model.train(was_training)
    return total / n_windows


def unigram_loss(train_tokens: Tensor, eval_tokens: Tensor, vocab_size: int) -> float:
    """Baseline: cross-entropy of add-one smoothed token frequencies (no context at all)."""
    counts = torch.bincount(train_tokens.cpu(), minlength=vocab_size).double() + 1.0
    log_probs = (counts / counts.sum()).log()
    return -log_probs[eval_tokens.cpu()].mean().item()


def make_optimizer(model: GPT, config: PretrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, LayerNorms or positions)."""
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "position" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "position" in n]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.95))


def pretrain(
    config: PretrainConfig,
    train_tokens: Tensor,
    val_tokens: Tensor,
    checkpoint: Path | None = None,
    device: torch.device | str = "cpu",
    stop_after: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> PretrainResult:
    """Train a fresh GPT on ``train_tokens``; evaluate on ``val_tokens`` every ``eval_every``.

    With ``checkpoint`` set, the run saves model, optimizer, RNG and history there every
    ``checkpoint_every`` steps and resumes from it when it holds a run of the same config.
    ``stop_after`` ends this session after that many steps in total (checkpointed), so a long
    run can be split over several calls.
    """
    torch.manual_seed(config.seed)
    model = GPT(config.model).to(device)
    train_tokens, val_tokens = train_tokens.to(device), val_tokens.to(device)
    optimizer = make_optimizer(model, config)
    batches = torch.Generator().manual_seed(config.seed)
    result = PretrainResult(model)
    state = _load_checkpoint(checkpoint, config)
    if state is not None:
        model.load_state_dict(state["model"])  # optimizer state follows the parameters' device
        optimizer.load_state_dict(state["optimizer"])
        batches.set_state(state["batch_rng"])
        result.history, result.train_seconds = state["history"], state["train_seconds"]
        result.train_tokens = state["train_tokens"]
        result.resumed_from_step = state["step"]
        log(f"resuming from {checkpoint} at step {state['step']}")
    model.train()
    block = config.model.context_length
    done = result.resumed_from_step
    steps = range(done, config.max_steps)
    bar = tqdm(steps, "pretraining", total=config.max_steps, initial=done, disable=not progress)
    for step in bar:
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = cosine_learning_rate(step, config)
        inputs, targets = random_batch(train_tokens, config.batch_size, block, batches)
        loss = language_model_loss(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        result.train_seconds += time.perf_counter() - started
        result.train_tokens += inputs.numel()
        done = step + 1
        if done % config.eval_every == 0 or done == config.max_steps:
            result.history.append(
                {
                    "step": done,
                    "learning_rate": optimizer.param_groups[0]["lr"],
                    "train_loss": loss.item(),
                    "val_loss": evaluate_loss(model, val_tokens),
                    "tokens_per_s": result.tokens_per_s,
                }
            )
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{result.history[-1]['val_loss']:.3f}")
        pausing = done == stop_after and done < config.max_steps
        if checkpoint is not None and (done % config.checkpoint_every == 0 or pausing):
            _save_checkpoint(checkpoint, config, model, optimizer, batches, result, done)
        if pausing:
            break
    result.steps_done = done
    model.eval()
    return result


def _save_checkpoint(
    path: Path,
    config: PretrainConfig,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    batches: torch.Generator,
    result: PretrainResult,
    step: int,
) -> None:
    state = {
        "config": config.to_dict(),
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "batch_rng": batches.get_state(),
        "history": result.history,
        "train_seconds": result.train_seconds,
        "train_tokens": result.train_tokens,
    }
    atomic_save_torch(state, path)


def _load_checkpoint(path: Path | None, config: PretrainConfig) -> dict | None:
    if path is None or not Path(path).is_file():
        return None
    state = torch.load(path, weights_only=False, map_location="cpu")
    if state["config"] != config.to_dict():
        raise UsageError(
            f"checkpoint {path} is from a run with other settings; delete it or use --restart"
        )
    return state


def save_hf_folder(model: GPT, target: Path) -> Path:
    """Write ``model`` + the GPT-2 tokenizer as a Hugging Face folder, atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        staging = Path(tmp) / target.name
        model.to_hf(staging)
        gpt2_hf_tokenizer().save_pretrained(staging)
        replace_dir(staging, target)
    return target


# --------------------------------------------------------------------------------------------
# The project's own GPT-2: the offline default for weeks 3 and 4
# --------------------------------------------------------------------------------------------

PROJECT_GPT2 = "gpt2-dl2llm"


def project_gpt2_dir(quick: bool = False) -> Path:
    """Where the project's pretrained GPT-2 lives (a Hugging Face folder in the asset cache)."""
    return paths.home() / (f"{PROJECT_GPT2}-quick" if quick else PROJECT_GPT2)


def ensure_project_gpt2(quick: bool = False) -> Path:
    """The folder of the project's GPT-2, for ``transformers``' ``from_pretrained``.

    The full model comes from ``dl2llm run pretrain_gpt`` (about 10 minutes); the quick model
    is trained here on the fly (a few seconds) when it is missing, so quick runs of later
    weeks work on a fresh machine.
    """
    folder = project_gpt2_dir(quick)
    if (folder / "config.json").is_file():
        return folder
    if not quick:
        raise AssetError(
            f"the project's GPT-2 is not at {folder}; run `dl2llm run pretrain_gpt` (~10 min)"
        )
    corpus = pretraining_corpus()
    tokenizer = load_gpt2_tokenizer()
    result = pretrain(
        PretrainConfig.quick(),
        encode_text(corpus["train"], tokenizer),
        encode_text(corpus["val"], tokenizer),
        progress=False,
        log=lambda _: None,
    )
    return save_hf_folder(result.model, folder)


def load_project_gpt2(quick: bool = False) -> GPT:
    """The project's pretrained GPT-2 as our :class:`GPT` (in eval mode)."""
    return GPT.from_hf(ensure_project_gpt2(quick))
