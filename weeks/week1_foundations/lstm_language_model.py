"""Week 1: an LSTM language model, measured against a Kneser-Ney n-gram baseline.

Trains a word-level LSTM (tied embeddings, dropout, truncated BPTT, gradient
clipping) on the bundled English novel *Botchan*, and an interpolated
Kneser-Ney trigram model on exactly the same tokens. Reports validation and test
perplexity for both, samples text with temperature and top-k, and plots the
training curves. Training checkpoints every epoch: `--resume` continues an
interrupted run from `<out>/lstm_language_model.ckpt`.

Outputs: results/lstm_language_model.json, lstm_language_model_curves.png.
The lesson's code: src/dl2llm/nn/lstm_lm.py and ngram.py.
"""

from __future__ import annotations

from dataclasses import asdict

from dl2llm.nn.lstm_lesson import LSTMLessonConfig, run_lesson
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--epochs", type=check_positive, help="override the number of epochs")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --out if present"
    )
    run = start_run("lstm_language_model", parser, argv)
    args = run.args
    device = resolve_device(args.device)
    config = LSTMLessonConfig.quick() if args.quick else LSTMLessonConfig()
    if args.epochs:
        config.train.epochs = args.epochs
    args.out.mkdir(parents=True, exist_ok=True)
    metrics, artifacts = run_lesson(config, args.out, args.seed, device, args.resume)

    print(f"vocabulary: {metrics['vocab_size']} words, {metrics['train_tokens']} training tokens")
    print(f"{'model':<22} {'val ppl':>8} {'test ppl':>9}")
    print(f"{'Kneser-Ney trigram':<22} {metrics['kn_val_perplexity']:>8.1f} "
          f"{metrics['kn_test_perplexity']:>9.1f}")  # fmt: skip
    print(f"{'LSTM':<22} {metrics['val_perplexity']:>8.1f} {metrics['test_perplexity']:>9.1f}")
    for name, text in metrics["samples"].items():
        print(f"sample ({name}): {text.strip()}")
    run.save(metrics, config=asdict(config), artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
