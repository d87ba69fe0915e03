"""Fine-tune the MiniLM BERT encoder for movie-review sentiment, against two baselines.

Our own loop (AdamW, linear warmup + decay, gradient clipping, validation each
epoch, best epoch kept; see dl2llm.classification) fine-tunes all-MiniLM-L6-v2
on the Rotten Tomatoes snippets (dl2llm.data.sentiment_splits, seed 0). In the
same run it trains TF-IDF + logistic regression and logistic regression on
frozen sentence embeddings, and reports test accuracy, F1 and confusion
matrices for all three. The fine-tuned model is saved in Hugging Face format to
$DL2LLM_HOME/sentiment-minilm (quick mode: sentiment-minilm-quick).

Outputs: results/bert_fine_tuning.json, bert_fine_tuning_confusion.png,
bert_fine_tuning_curves.png. The lesson's code: src/dl2llm/classification_lesson.py.

    python weeks/week3_embeddings/bert_fine_tuning.py --quick
    python weeks/week3_embeddings/bert_fine_tuning.py --predict "A gorgeous, moving film."
"""

from dataclasses import asdict

from dl2llm.classification import classifier_dir, classify
from dl2llm.classification_lesson import MODELS, NAME, lesson_config, lesson_splits, run_lesson
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--epochs", type=check_positive, default=3, help="epochs (default: 3)")
    parser.add_argument("--batch-size", type=check_positive, default=32, help="default: 32")
    parser.add_argument("--lr", type=float, default=5e-5, help="peak learning rate")
    parser.add_argument("--max-length", type=check_positive, default=64, help="tokens per text")
    parser.add_argument(
        "--predict", nargs="+", metavar="TEXT", help="classify TEXT with the saved model and exit"
    )
    run = start_run(NAME, parser, argv)
    args = run.args
    if args.predict is not None:
        for text, (label, prob) in zip(
            args.predict, classify(args.predict, args.quick), strict=True
        ):
            print(f"{label:<8} {prob:.3f}  {text}")
        return 0
    device = resolve_device(args.device)
    splits = lesson_splits(args.quick)
    config = lesson_config(args.quick, args.epochs, args.batch_size, args.lr, args.max_length)
    print(f"train {len(splits['train'])}, val {len(splits['val'])}, test {len(splits['test'])}")
    metrics, artifacts = run_lesson(splits, config, device, args.seed, args.out, args.quick)

    print(f"\n{'model':<20} {'accuracy':>9} {'F1':>7}   (test, n = {metrics['n_test']})")
    for title, key in MODELS.items():
        print(f"{title:<20} {metrics[f'{key}_accuracy']:>9.4f} {metrics[f'{key}_f1']:>7.4f}")
    print(f"best epoch {metrics['best_epoch']}; model saved to {classifier_dir(args.quick)}")
    run.save(metrics, config={**asdict(config), "device": str(device)}, artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
