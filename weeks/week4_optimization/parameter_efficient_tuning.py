"""Parameter-efficient fine-tuning: LoRA, adapters and prefix-tuning against full fine-tuning.

Fine-tunes a GPT-2 model (default: the project's own pretrained GPT-2; any
local Hugging Face GPT-2 folder with ``--model``) for sentiment classification
of movie-review snippets, once per method: full fine-tuning, LoRA with rank 1,
4 and 16, Houlsby adapters and prefix-tuning, all written from scratch in
``dl2llm.finetune``. Every method trains the new classification head too; LoRA
adapts every attention and MLP matrix and, with rank 1 by default
(``--lora-embedding-rank``), the token embedding table. Each method has its own
learning rate, chosen on the validation split (``--lr`` overrides them). For
each it reports the share of parameters that train (head included), validation
and test accuracy with the test accuracy's 95% interval, training wall time and
measured peak memory, as a table and a plot. Then it runs our LoRA on SmolLM2
(a Llama-family decoder) as causal-LM fine-tuning on held-out *Botchan* text
and reports perplexity before and after, and saves that adapter alone
(``save_lora``). Target (full mode): LoRA reaches >= 98% of full fine-tuning's
accuracy with < 2% of the parameters trainable.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from dl2llm.data import lm_splits, sentiment_splits
from dl2llm.finetune import save_lora
from dl2llm.finetune.experiment import (
    TuneConfig,
    accuracy_interval,
    check_gpt2_folder,
    encode,
    fine_tune,
    lm_windows,
    load_classifier,
    load_progress,
    load_tokenizer,
    lora_language_model,
    parse_method,
    prepare,
    save_progress,
)
from dl2llm.models import load_llm
from dl2llm.pretrain import ensure_project_gpt2
from dl2llm.results import save_results
from dl2llm.runtime import (
    UsageError,
    check_positive,
    deliverable_parser,
    resolve_device,
    run_main,
    set_seed,
)

NAME = "parameter_efficient_tuning"
METHODS = "full,lora_r1,lora_r4,lora_r16,adapters,prefix"
TARGET_RELATIVE_SCORE, TARGET_TRAINABLE_PCT = 0.98, 2.0
QUICK = {"train": 64, "eval": 64, "epochs": 1, "lm_windows": 2, "lm_block": 32}
FULL = {"train": None, "eval": None, "epochs": 2, "lm_windows": 24, "lm_block": 128}


def learning_rates(text: str) -> dict[str, float]:
    """``"full=1e-3,lora=2e-3"`` -> ``{"full": 0.001, "lora": 0.002}`` (argparse type)."""
    families = TuneConfig().learning_rates
    rates = {}
    for item in filter(None, text.split(",")):
        family, _, value = item.partition("=")
        if family.strip() not in families:
            raise argparse.ArgumentTypeError(f"'{family}' is not one of {', '.join(families)}")
        try:
            rate = float(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"'{item}': need family=rate") from error
        if not rate > 0:
            raise argparse.ArgumentTypeError(f"'{item}': the rate must be positive")
        rates[family.strip()] = rate
    return rates


def plot(results: list, path: Path) -> None:
    from dl2llm.plots import plt, save_figure

    fig, (score, curves) = plt.subplots(1, 2, figsize=(13, 4.5))
    for result in results:
        score.scatter(result.trainable_pct, 100 * result.test_accuracy, s=60)
        score.annotate(result.method, (result.trainable_pct, 100 * result.test_accuracy))
        window = max(1, len(result.losses) // 20)
        smooth = [
            sum(result.losses[i : i + window]) / window
            for i in range(0, len(result.losses) - window + 1, window)
        ]
        curves.plot([i * window for i in range(len(smooth))], smooth, label=result.method)
    score.set(
        xscale="log",
        xlabel="trainable parameters (% of model, log scale)",
        ylabel="test accuracy (%)",
        title="score vs trainable parameters",
    )
    curves.set(xlabel="step", ylabel="training loss (smoothed)", title="training loss")
    curves.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=110, bbox_inches=None)


def method_metrics(results: list, config: TuneConfig, n_test: int) -> dict[str, object]:
    """Print the comparison table; return its numbers (relative to full fine-tuning)."""
    metrics: dict[str, object] = {}
    full = next((r for r in results if r.method == "full"), None)
    print(f"\n{'method':<10} {'lr':>7} {'trainable':>10} {'share %':>8} {'val acc':>8} "
          f"{'test acc':>9} {'95% interval':>14} {'rel. full':>9} {'time s':>7} "
          f"{'peak MiB':>9}")  # fmt: skip
    for result in results:
        relative = result.test_accuracy / full.test_accuracy if full else None
        low, high = accuracy_interval(result.test_accuracy, n_test)
        metrics.update(
            {
                f"{result.method}_accuracy": result.test_accuracy,
                f"{result.method}_accuracy_ci95": [round(low, 4), round(high, 4)],
                f"{result.method}_val_accuracy": result.val_accuracy,
                f"{result.method}_val_accuracies": [round(a, 4) for a in result.val_accuracies],
                f"{result.method}_learning_rate": config.learning_rate(result.method),
                f"{result.method}_trainable_pct": round(result.trainable_pct, 4),
                f"{result.method}_trainable": result.trainable,
                f"{result.method}_train_time_s": round(result.train_time_s, 2),
                f"{result.method}_peak_mib": round(result.peak_memory_mib, 1),
            }
        )
        if relative is not None:
            metrics[f"{result.method}_relative_score"] = round(relative, 4)
        shown = "-" if relative is None else f"{relative:.3f}"
        print(
            f"{result.method:<10} {config.learning_rate(result.method):>7.0e} "
            f"{result.trainable:>10,} {result.trainable_pct:>8.3f} {result.val_accuracy:>8.4f} "
            f"{result.test_accuracy:>9.4f} {f'{low:.3f}-{high:.3f}':>14} {shown:>9} "
            f"{result.train_time_s:>7.1f} {result.peak_memory_mib:>9.1f}"
        )
    lora = [
        r for r in results if r.method.startswith("lora") and r.trainable_pct < TARGET_TRAINABLE_PCT
    ]
    if full and lora:
        best = max(lora, key=lambda r: r.val_accuracy)  # chosen on validation, not test
        met = best.test_accuracy >= TARGET_RELATIVE_SCORE * full.test_accuracy
        verdict = "met" if met else "missed"
        metrics.update(best_lora=best.method, lora_target_met=met)
        print(
            f"\ntarget: LoRA >= {TARGET_RELATIVE_SCORE:.0%} of full fine-tuning with "
            f"< {TARGET_TRAINABLE_PCT}% trainable -> {best.method} (best on validation): "
            f"{best.test_accuracy / full.test_accuracy:.3f} of full ({verdict}); "
            f"test accuracies carry +-{100 * (high - low) / 2:.1f} points of sampling error "
            f"({n_test} examples)"
        )
    return metrics


def smollm2_lora(steps: int, block: int, device, adapter_path: Path) -> dict[str, object]:
    """Our LoRA on SmolLM2 (Llama architecture): held-out perplexity before and after."""
    llm, tokenizer = load_llm()
    text = lm_splits()
    lm = lora_language_model(
        llm,
        lm_windows(tokenizer, text["train"], block, steps * 2),
        lm_windows(tokenizer, text["val"], block, max(2, steps // 4)),
        batch_size=2,
        device=device,
    )
    save_lora(llm, adapter_path)
    share = 100 * lm.trainable / lm.total
    print(
        f"\nSmolLM2 + our LoRA (q_proj, v_proj, r=8): {lm.trainable:,} trainable "
        f"({share:.3f}%), held-out perplexity {lm.perplexity_before:.2f} -> "
        f"{lm.perplexity_after:.2f} in {lm.train_time_s:.1f} s; adapter: {adapter_path.name}"
    )
    return {
        "smollm2_perplexity_before": round(lm.perplexity_before, 3),
        "smollm2_perplexity_after": round(lm.perplexity_after, 3),
        "smollm2_trainable_pct": round(share, 4),
        "smollm2_train_time_s": round(lm.train_time_s, 2),
        "smollm2_peak_mib": round(lm.peak_memory_mib, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--model", type=Path, help="local Hugging Face GPT-2 folder (default: the project's)"
    )
    parser.add_argument("--methods", default=METHODS, help=f"comma-separated (default: {METHODS})")
    parser.add_argument("--epochs", type=check_positive, help="epochs per method")
    parser.add_argument("--train-size", type=check_positive, help="training examples to use")
    parser.add_argument(
        "--lr",
        type=learning_rates,
        default={},
        help="learning rates by method family, e.g. full=1e-3,lora=1e-3 (default: "
        "the ones chosen on the validation split, see TuneConfig)",
    )
    parser.add_argument(
        "--lora-embedding-rank",
        type=int,
        default=TuneConfig.lora_embedding_rank,
        help="rank of LoRA's update of the token embedding table (0: none; "
        f"default {TuneConfig.lora_embedding_rank})",
    )
    parser.add_argument(
        "--smollm2-steps",
        type=int,
        help="SmolLM2 LoRA steps of 2 windows each (0 skips SmolLM2; default: 2 quick, 24 full)",
    )
    parser.add_argument(
        "--threads",
        type=check_positive,
        default=1,
        help="CPU threads for torch (default 1: fastest for small models on a shared CPU)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()  # the new head's "missing weights" report is expected
    device = resolve_device(args.device)
    settings = dict(QUICK if args.quick else FULL)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise UsageError("--methods: name at least one method")
    for method in methods:
        parse_method(method)
    model_dir = check_gpt2_folder(args.model or ensure_project_gpt2(quick=args.quick))
    pretrained = load_classifier(model_dir)
    defaults = TuneConfig()
    config = TuneConfig(
        epochs=args.epochs or settings["epochs"],
        learning_rates={**defaults.learning_rates, **args.lr},
        lora_embedding_rank=args.lora_embedding_rank,
    )
    # every method reads the same tokens; prefix-tuning's prefix takes positions too
    max_length = min(config.max_length, pretrained.config.n_positions - config.prefix_length)
    config = replace(config, max_length=max_length)
    tokenizer = load_tokenizer(model_dir)
    pretrained.config.pad_token_id = tokenizer.pad_token_id
    data = sentiment_splits()
    train_size = args.train_size or settings["train"] or len(data["train"])
    eval_size = settings["eval"] or len(data["test"])
    splits = {
        "train": encode(tokenizer, data["train"].head(train_size), config.max_length),
        "val": encode(tokenizer, data["val"].head(eval_size), config.max_length),
        "test": encode(tokenizer, data["test"].head(eval_size), config.max_length),
    }
    print(f"model: {model_dir}; {train_size} training snippets; methods: {', '.join(methods)}")

    run_config = {**asdict(config), "model": str(model_dir), "train_size": train_size,
                  "eval_size": eval_size, "seed": args.seed, "device": str(device)}  # fmt: skip
    progress_file = args.out / f".{NAME}.progress.json"
    done = load_progress(progress_file, run_config)
    for method in methods:
        if method in done:
            print(f"{method}: resumed from {progress_file}")
            continue
        set_seed(args.seed)
        model = prepare(copy.deepcopy(pretrained), method, config)
        done[method] = fine_tune(model, method, splits, config, device, args.seed)
        save_progress(progress_file, run_config, done)
        del model
    results = [done[method] for method in methods]

    metrics: dict[str, object] = {"model": str(model_dir), "train_size": train_size}
    metrics.update(method_metrics(results, config, eval_size))
    artifacts = [f"{NAME}_comparison.png"]
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / artifacts[0])
    lm_steps = settings["lm_windows"] if args.smollm2_steps is None else args.smollm2_steps
    if lm_steps > 0:
        artifacts.append(f"{NAME}_smollm2_lora.safetensors")
        metrics.update(
            smollm2_lora(lm_steps, settings["lm_block"], device, args.out / artifacts[-1])
        )
    metrics["loss_curves"] = {r.method: r.losses for r in results}
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={**run_config, "methods": methods, "smollm2_steps": lm_steps},
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=artifacts,
    )
    progress_file.unlink(missing_ok=True)
    print(f"\nresults: {args.out / (NAME + '.json')}")
    return 0


if __name__ == "__main__":
    run_main(main)
