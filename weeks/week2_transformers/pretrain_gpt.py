"""Pretrain the project's own GPT-2 from scratch on the bundled English text.

The model is the GPT-2 architecture of `dl2llm.gpt` (small: 4 layers, 128 wide, 256-token
context) with the real GPT-2 byte-level BPE tokenizer. It trains on *Botchan* plus 300 news
articles with AdamW, linear warmup, a cosine learning-rate schedule and gradient clipping,
checkpointing as it goes (a killed run resumes where it stopped). It reports the validation
and test loss on *Botchan*'s held-out blocks next to a unigram baseline, training tokens/s,
and saves loss and learning-rate curves. The trained model is written in Hugging Face format
to the asset cache, where weeks 3 and 4 find it (`dl2llm.pretrain.ensure_project_gpt2`); loading
it back with `transformers` must give the same validation loss.
"""

import math
import time
from dataclasses import replace
from pathlib import Path

import torch

from dl2llm.finetune import count_parameters
from dl2llm.gpt import GPT
from dl2llm.models import load_gpt2_tokenizer
from dl2llm.plots import plt, save_figure
from dl2llm.pretrain import (
    PretrainConfig,
    cosine_learning_rate,
    encode_text,
    evaluate_loss,
    pretrain,
    pretrain_settings,
    pretraining_corpus,
    project_gpt2_dir,
    save_hf_folder,
    unigram_loss,
)
from dl2llm.results import print_metrics, save_results
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, set_seed

NAME = "pretrain_gpt"
PROMPT = "I was sent to the school in the country, and"


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--steps", type=check_positive, help="optimizer steps (default: by mode)")
    parser.add_argument("--threads", type=check_positive, help="torch CPU threads")
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument(
        "--stop-after",
        type=check_positive,
        help="end this session after this many steps in all; run again to resume",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = replace(pretrain_settings(args.quick), seed=args.seed)
    if args.steps:
        settings = replace(settings, max_steps=args.steps)
    checkpoint = args.out / f"{NAME}.ckpt"
    if args.restart:
        checkpoint.unlink(missing_ok=True)

    tokenizer = load_gpt2_tokenizer()
    corpus = pretraining_corpus()
    tokens = {split: encode_text(text, tokenizer) for split, text in corpus.items()}
    result = pretrain(
        settings, tokens["train"], tokens["val"], checkpoint, device, stop_after=args.stop_after
    )
    if result.steps_done < settings.max_steps:
        print(f"paused at step {result.steps_done}; run again to resume from {checkpoint}")
        return 0
    model = result.model.cpu()
    folder = save_hf_folder(model, project_gpt2_dir(args.quick))
    reloaded = GPT.from_hf(folder)
    metrics = {
        "val_loss": result.final_val_loss,
        "val_perplexity": math.exp(result.final_val_loss),
        "test_loss": evaluate_loss(model, tokens["test"]),
        "unigram_val_loss": unigram_loss(tokens["train"], tokens["val"], model.config.vocab_size),
        "hf_reload_val_loss": evaluate_loss(reloaded, tokens["val"]),
        "tokens_per_s": result.tokens_per_s,
        "train_minutes": result.train_seconds / 60,
        "train_tokens": result.train_tokens,
        "train_corpus_tokens": len(tokens["train"]),
        "parameters": count_parameters(model).total,
        "steps": settings.max_steps,
        "resumed_from_step": result.resumed_from_step,
        "sample": sample_text(model, tokenizer, args.seed),
        "history": result.history,
    }
    checkpoint.unlink(missing_ok=True)
    print_table(metrics, folder)
    plot_curves(result.history, settings, args.out / f"{NAME}_curves.png")
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={**settings.to_dict(), "device": str(device), "threads": torch.get_num_threads()},
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=[f"{NAME}_curves.png"],
    )
    return 0


def sample_text(model: GPT, tokenizer, seed: int) -> str:
    """A sampled continuation of :data:`PROMPT` (temperature 0.8, top-k 50, top-p 0.95)."""
    prompt = torch.tensor([tokenizer.encode_ordinary(PROMPT)])
    new_tokens = min(60, model.config.context_length - prompt.size(1))
    generator = torch.Generator().manual_seed(seed)
    ids = model.generate(
        prompt, new_tokens, temperature=0.8, top_k=50, top_p=0.95, generator=generator
    )
    return tokenizer.decode(ids[0].tolist())


SHOWN = ("val_loss", "val_perplexity", "test_loss", "unigram_val_loss", "hf_reload_val_loss",
         "tokens_per_s", "train_minutes", "parameters")  # fmt: skip


def print_table(metrics: dict, folder: Path) -> None:
    print_metrics(metrics, SHOWN)
    print(f"\nsample: {metrics['sample']!r}\nHugging Face folder: {folder}")


def plot_curves(history: list[dict], settings: PretrainConfig, path: Path) -> None:
    steps = [row["step"] for row in history]
    fig, (loss_ax, lr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(steps, [row["train_loss"] for row in history], label="train (last batch)")
    loss_ax.plot(steps, [row["val_loss"] for row in history], label="validation")
    loss_ax.set(xlabel="step", ylabel="cross-entropy (nats/token)", title="GPT-2 pretraining")
    loss_ax.legend()
    every_step = range(settings.max_steps)
    lr_ax.plot(every_step, [cosine_learning_rate(step, settings) for step in every_step])
    lr_ax.set(xlabel="step", ylabel="learning rate", title="warmup + cosine schedule")
    fig.tight_layout()
    save_figure(fig, path, dpi=100, bbox_inches=None, image_format="png")


if __name__ == "__main__":
    run_main(main)
