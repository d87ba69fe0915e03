"""Attention on real sentences, and why attention replaces recurrence.

Part 1 runs the pretrained MiniLM encoder (a 6-layer BERT) on real sentences,
recomputes every layer's attention weights with ``dl2llm.attention`` from the
model's own hidden states and projection weights (they must agree to ~1e-7),
prints which words "it" attends to, and saves attention heatmaps.

Part 2 compares an LSTM layer with a self-attention layer of the same width on
growing sequences: path length between the first and the last token (T - 1
recurrent steps vs 1), how much gradient from the last output reaches the first
token, the forward-pass wall time on one thread, and the wall time of a training
step (forward, loss, backward) on all available cores: attention does O(T^2)
work but in parallel over positions, the LSTM O(T) work in T sequential steps.
It reports per length which is faster, where the crossover lies on this
machine, and a one-paragraph verdict.

Outputs: results/attention_demo.json, attention_demo_heads.png, attention_demo_sentences.png,
attention_demo_scaling.png. The lesson's code: src/dl2llm/attention_lesson.py.
"""

from dataclasses import replace

from dl2llm.attention_lesson import NAME, AttentionDemoConfig, parse_lengths, run_lesson
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def print_results(metrics: dict, header: str) -> None:
    """Part 1's agreement and "it" words, then part 2's LSTM vs self-attention table."""
    max_diff = metrics["minilm_attention_max_abs_diff"]
    print(f"MiniLM attention recomputed with dl2llm.attention: max |difference| = {max_diff:.2e}")
    for sentence, top in metrics["it_attends_to"].items():
        print(f"  last layer, '{sentence}': 'it' attends most to {top}")
    print(f"\n{header}")
    print(f"{'':>6} {'path length':>21} {'forward ms, 1 thread':>21} "
          f"{'train step ms':>21} {'':>10} {'first-token gradient':>21}")  # fmt: skip
    print(f"{'T':>6} {'LSTM':>10} {'attn':>10} {'LSTM':>10} {'attn':>10} {'LSTM':>10} {'attn':>10} "
          f"{'winner':>10} {'LSTM':>10} {'attn':>10}")  # fmt: skip
    for r in metrics["rows"]:
        print(
            f"{r['seq_len']:>6} {r['lstm_path_length']:>10} {r['attention_path_length']:>10} "
            f"{r['lstm_ms']:>10.3f} {r['attention_ms']:>10.3f} "
            f"{r['lstm_train_ms']:>10.3f} {r['attention_train_ms']:>10.3f} "
            f"{r['train_step_winner']:>10} "
            f"{r['lstm_first_token_gradient']:>10.2e} {r['attention_first_token_gradient']:>10.2e}"
        )
    print(f"\nverdict: {metrics['verdict']}")


def main(argv: list[str] | None = None) -> int:
    quick, full = AttentionDemoConfig.quick(), AttentionDemoConfig()
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--lengths",
        help=f"sequence lengths (quick {','.join(map(str, quick.lengths))}, "
        f"full {','.join(map(str, full.lengths))})",
    )
    parser.add_argument(
        "--width", type=check_positive, help=f"model width (quick {quick.width}, full {full.width})"
    )
    parser.add_argument("--heads", type=check_positive, default=4, help="attention heads (4)")
    parser.add_argument("--batch", type=check_positive, default=4, help="sequences per pass (4)")
    parser.add_argument(
        "--layer", type=int, default=2, help="MiniLM layer to plot (0-5, default 2)"
    )
    run = start_run(NAME, parser, argv)
    args = run.args
    device = resolve_device(args.device)
    config = AttentionDemoConfig.quick() if args.quick else AttentionDemoConfig()
    config = replace(  # checks that the width divides into the heads
        config,
        width=args.width or config.width,
        heads=args.heads,
        batch=args.batch,
        layer=args.layer,
    )
    if args.lengths:
        config = replace(config, lengths=parse_lengths(args.lengths))
    metrics, artifacts = run_lesson(config, device, args.out)

    print_results(
        metrics,
        f"LSTM vs self-attention, width {config.width}, batch {config.batch}, {device}; "
        f"training steps (forward, loss, backward) on {metrics['train_threads']} threads",
    )
    run.save(metrics, config=config.to_dict(device), artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
