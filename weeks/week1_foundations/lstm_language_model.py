"""Week 1: an LSTM language model, measured against a Kneser-Ney n-gram baseline.

Trains a word-level LSTM (tied embeddings, dropout, truncated BPTT, gradient
clipping) and an interpolated Kneser-Ney trigram model on exactly the same
tokens, with a Penn-Treebank-style vocabulary (10k words, the rest <unk>).
`--data python-docs` (default): ~515k training tokens of the Python 3.11
documentation (the capstone's corpus), half the size of Penn Treebank.
`--data botchan`: the novel *Botchan*, ~56k training tokens.
Reports validation and test perplexity for both and their ratio, prints samples
from both models, and plots the training curves. Training checkpoints every
epoch: `--resume` continues an interrupted run from `<out>/lstm_language_model.ckpt`.

Outputs: results/lstm_language_model.json, lstm_language_model_curves.png.
The lesson's code: src/dl2llm/nn/lstm_lesson.py, lstm_lm.py and ngram.py.
"""

from __future__ import annotations

from dataclasses import asdict

from dl2llm.nn.lstm_lesson import CORPORA, LSTMLessonConfig, run_lesson, with_epochs
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--data",
        default=CORPORA[0],
        help=f"training corpus: {' or '.join(CORPORA)} (default {CORPORA[0]})",
    )
    parser.add_argument("--epochs", type=check_positive, help="override the number of epochs")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --out if present"
    )
    run = start_run("lstm_language_model", parser, argv)
    args = run.args
    device = resolve_device(args.device)
    make = LSTMLessonConfig.quick if args.quick else LSTMLessonConfig.for_data
    config = with_epochs(make(args.data), args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    metrics, artifacts = run_lesson(config, args.out, args.seed, device, args.resume)

    print(f"data: {metrics['data']}; vocabulary: {metrics['vocab_size']} words, "
          f"{metrics['train_tokens']} training tokens")  # fmt: skip
    print(f"{'model':<22} {'val ppl':>8} {'test ppl':>9}")
    print(f"{'Kneser-Ney trigram':<22} {metrics['kn_val_perplexity']:>8.1f} "
          f"{metrics['kn_test_perplexity']:>9.1f}")  # fmt: skip
    print(f"{'LSTM':<22} {metrics['val_perplexity']:>8.1f} {metrics['test_perplexity']:>9.1f}")
    print(f"LSTM / Kneser-Ney test perplexity: {metrics['lstm_to_kn_perplexity_ratio']:.3f}")
    samples = metrics["samples"]
    for model in ("lstm", "kneser_ney"):
        for name, text in samples[model].items():
            print(f"{model} sample ({name}): {samples['prompt']} {text.strip()}")
    run.save(metrics, config=asdict(config), artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
