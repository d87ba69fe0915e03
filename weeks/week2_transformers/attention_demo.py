"""Attention on real sentences, and why attention replaces recurrence.

Part 1 runs the pretrained MiniLM encoder (a 6-layer BERT) on real sentences,
recomputes every layer's attention weights with ``dl2llm.attention`` from the
model's own hidden states and projection weights (they must agree to ~1e-7),
prints which words "it" attends to, and saves attention heatmaps.

Part 2 compares an LSTM layer with a self-attention layer of the same width on
growing sequences: path length between the first and the last token (T - 1
recurrent steps vs 1), the forward-pass wall time, and how much gradient from
the last output reaches the first token.
"""

import time
from pathlib import Path

import torch

from dl2llm.attention import compare_with_recurrence, from_bert_attention, padding_mask
from dl2llm.models import load_encoder
from dl2llm.plots import plt, save_figure
from dl2llm.results import save_results
from dl2llm.runtime import (
    UsageError,
    check_positive,
    deliverable_parser,
    resolve_device,
    run_main,
    set_seed,
)

NAME = "attention_demo"
SENTENCES = (
    "The animal didn't cross the street because it was too tired.",
    "The trophy doesn't fit into the brown suitcase because it is too large.",
    "A business is fraught with too much trouble, and besides it was not my calling.",  # Botchan
)
QUICK_LENGTHS, FULL_LENGTHS = "16,64,256", "16,32,64,128,256,512,1024,2048"


def parse_lengths(text: str) -> list[int]:
    try:
        lengths = [int(part) for part in text.split(",")]
    except ValueError as err:
        raise UsageError(f"--lengths: expected comma-separated integers, got '{text}'") from err
    if not lengths or min(lengths) < 2:
        raise UsageError(f"--lengths: every length must be at least 2, got '{text}'")
    return lengths


def minilm_attention(sentences: tuple[str, ...]) -> dict:
    """MiniLM's attention weights and ours, recomputed from its hidden states."""
    model, tokenizer = load_encoder()
    model.set_attn_implementation("eager")  # the fused kernels do not return weights
    batch = tokenizer(list(sentences), return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**batch, output_attentions=True, output_hidden_states=True)
        mask = padding_mask(batch["attention_mask"] == 0)  # (B, 1, 1, T)
        ours = []
        for index, layer in enumerate(model.encoder.layer):
            attention = from_bert_attention(layer.attention, model.config.num_attention_heads)
            hidden = out.hidden_states[index]  # (B, T, C): the input of this layer
            attention(hidden, hidden, hidden, mask)
            ours.append(attention.last_weights)  # (B, h, T, T)
    theirs = torch.stack(out.attentions)  # (layers, B, h, T, T)
    tokens = [
        tokenizer.convert_ids_to_tokens(ids[: int(length)])
        for ids, length in zip(batch["input_ids"], batch["attention_mask"].sum(1), strict=True)
    ]
    return {"theirs": theirs, "ours": torch.stack(ours), "tokens": tokens}


def words_it_attends_to(weights: torch.Tensor, tokens: list[str], top: int = 3) -> list[str]:
    """Top tokens that "it" attends to, averaged over heads (``weights`` ``(h, T, T)``)."""
    row = weights.mean(0)[tokens.index("it"), : len(tokens)]  # (T,)
    return [tokens[i] for i in row.argsort(descending=True)[:top].tolist()]


def plot_heads(weights: torch.Tensor, tokens: list[str], layer: int, path: Path) -> None:
    """Every head of one layer for one sentence (``weights`` ``(h, T, T)``)."""
    n_heads, n = weights.size(0), len(tokens)
    cols = 4
    fig, axes = plt.subplots(
        -(-n_heads // cols), cols, figsize=(4 * cols, 3.6 * -(-n_heads // cols))
    )
    for head, ax in enumerate(axes.flat):
        ax.imshow(weights[head, :n, :n], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"layer {layer}, head {head}", fontsize=9)
        ax.set_xticks(range(n), tokens, rotation=90, fontsize=6)
        ax.set_yticks(range(n), tokens, fontsize=6)
    fig.suptitle("MiniLM attention (rows: queries, columns: keys)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110, bbox_inches=None)


def plot_sentences(attention: dict, layer: int, path: Path) -> None:
    """Head-averaged attention of one layer, one panel per sentence."""
    n_sentences = len(attention["tokens"])
    fig, axes = plt.subplots(1, n_sentences, figsize=(6 * n_sentences, 5.5))
    for index, (ax, tokens) in enumerate(zip(axes, attention["tokens"], strict=True)):
        n = len(tokens)
        ax.imshow(attention["ours"][layer, index].mean(0)[:n, :n], cmap="viridis")
        ax.set_xticks(range(n), tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(n), tokens, fontsize=7)
        ax.set_title(f"sentence {index + 1}, layer {layer}, mean of heads", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110, bbox_inches=None)


def plot_scaling(rows: list[dict], path: Path) -> None:
    """Wall time and first-token gradient against sequence length, LSTM vs attention."""
    lengths = [row["seq_len"] for row in rows]
    fig, (time_ax, grad_ax) = plt.subplots(1, 2, figsize=(11, 4))
    time_ax.loglog(lengths, [r["lstm_ms"] for r in rows], "o-", label="LSTM")
    time_ax.loglog(lengths, [r["attention_ms"] for r in rows], "s-", label="self-attention")
    time_ax.set(xlabel="sequence length T", ylabel="forward pass (ms)", title="wall time")
    grad_ax.semilogy(lengths, [r["lstm_first_token_gradient"] for r in rows], "o-", label="LSTM")
    grad_ax.semilogy(
        lengths, [r["attention_first_token_gradient"] for r in rows], "s-", label="self-attention"
    )
    grad_ax.set(xscale="log", xlabel="sequence length T", title="||dy_T/dx_1|| / ||dy_T/dx_T||")
    for ax in (time_ax, grad_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110, bbox_inches=None)


def report_sentences(layer: int, out: Path) -> tuple[dict, list[str]]:
    """Part 1: MiniLM's attention on real sentences, recomputed, printed and plotted."""
    attention = minilm_attention(SENTENCES)
    n_layers = attention["ours"].size(0)
    if not 0 <= layer < n_layers:
        raise UsageError(f"--layer must be between 0 and {n_layers - 1}, got {layer}")
    max_diff = (attention["ours"] - attention["theirs"]).abs().max().item()
    print(f"MiniLM attention recomputed with dl2llm.attention: max |difference| = {max_diff:.2e}")
    it_attends_to = {}
    for index, tokens in enumerate(attention["tokens"]):
        top = words_it_attends_to(attention["ours"][-1, index], tokens)
        it_attends_to[SENTENCES[index]] = top
        print(f"  last layer, '{SENTENCES[index]}': 'it' attends most to {top}")
    heads_png, sentences_png = f"{NAME}_heads.png", f"{NAME}_sentences.png"
    plot_heads(attention["ours"][layer, 0], attention["tokens"][0], layer, out / heads_png)
    plot_sentences(attention, layer, out / sentences_png)
    metrics = {"minilm_attention_max_abs_diff": max_diff, "it_attends_to": it_attends_to}
    return metrics, [heads_png, sentences_png]


def report_recurrence(rows: list[dict], header: str) -> None:
    """Part 2: print the LSTM vs self-attention table."""
    print(f"\n{header}")
    print(
        f"{'T':>6} {'path LSTM':>10} {'path attn':>10} {'LSTM ms':>9} {'attn ms':>9} "
        f"{'grad LSTM':>10} {'grad attn':>10}"
    )
    for r in rows:
        print(
            f"{r['seq_len']:>6} {r['lstm_path_length']:>10} {r['attention_path_length']:>10} "
            f"{r['lstm_ms']:>9.3f} {r['attention_ms']:>9.3f} "
            f"{r['lstm_first_token_gradient']:>10.2e} {r['attention_first_token_gradient']:>10.2e}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--lengths", help=f"sequence lengths (quick {QUICK_LENGTHS}, full {FULL_LENGTHS})"
    )
    parser.add_argument("--width", type=check_positive, help="model width (quick 64, full 256)")
    parser.add_argument("--heads", type=check_positive, default=4, help="attention heads (4)")
    parser.add_argument("--batch", type=check_positive, default=4, help="sequences per pass (4)")
    parser.add_argument(
        "--layer", type=int, default=2, help="MiniLM layer to plot (0-5, default 2)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    device = resolve_device(args.device)
    torch.set_num_threads(1)
    lengths = parse_lengths(args.lengths or (QUICK_LENGTHS if args.quick else FULL_LENGTHS))
    width = args.width or (64 if args.quick else 256)
    if width % args.heads:
        raise UsageError(f"--width {width} must be divisible by --heads {args.heads}")
    args.out.mkdir(parents=True, exist_ok=True)

    metrics, artifacts = report_sentences(args.layer, args.out)

    min_run_time = 0.05 if args.quick else 0.5
    comparison = compare_with_recurrence(
        lengths, width, args.heads, args.batch, device, min_run_time
    )
    rows = [row.as_dict() for row in comparison]
    report_recurrence(
        rows, f"LSTM vs self-attention, width {width}, batch {args.batch}, {device}, 1 CPU thread"
    )
    scaling_png = f"{NAME}_scaling.png"
    plot_scaling(rows, args.out / scaling_png)
    longest = rows[-1]
    metrics.update(
        max_seq_len=longest["seq_len"],
        attention_speedup_at_max_len=longest["lstm_ms"] / longest["attention_ms"],
        lstm_first_token_gradient_at_max_len=longest["lstm_first_token_gradient"],
        attention_first_token_gradient_at_max_len=longest["attention_first_token_gradient"],
        rows=rows,
    )
    config = {
        "lengths": lengths,
        "width": width,
        "heads": args.heads,
        "batch": args.batch,
        "layer": args.layer,
        "device": str(device),
        "threads": 1,
    }
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config=config,
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=[*artifacts, scaling_png],
    )
    return 0


if __name__ == "__main__":
    run_main(main)
