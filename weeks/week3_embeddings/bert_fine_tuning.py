"""Fine-tune the MiniLM BERT encoder for movie-review sentiment, against two baselines.

Our own loop (AdamW, linear warmup + decay, gradient clipping, validation each
epoch, best epoch kept; see dl2llm.classification) fine-tunes all-MiniLM-L6-v2
on the Rotten Tomatoes snippets (dl2llm.data.sentiment_splits, seed 0). In the
same run it trains TF-IDF + logistic regression and logistic regression on
frozen sentence embeddings, and reports test accuracy, F1 and confusion
matrices for all three. The fine-tuned model is saved in Hugging Face format to
$DL2LLM_HOME/sentiment-minilm (quick mode: sentiment-minilm-quick).

    python weeks/week3_embeddings/bert_fine_tuning.py --quick
    python weeks/week3_embeddings/bert_fine_tuning.py --predict "A gorgeous, moving film."
"""

import time
from dataclasses import asdict

import numpy as np
import torch

from dl2llm import classification as clf
from dl2llm.data import sentiment_splits
from dl2llm.results import save_results
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, set_seed

NAME = "bert_fine_tuning"
QUICK_SIZES = {"train": 64, "val": 32, "test": 64}


def print_predictions(texts: list[str], quick: bool) -> None:
    for text, (label, prob) in zip(texts, clf.classify(texts, quick), strict=True):
        print(f"{label:<8} {prob:.3f}  {text}")


def plot_confusions(confusions: dict[str, list[list[int]]], path) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    from dl2llm.plots import plt, save_figure

    fig, axes = plt.subplots(1, len(confusions), figsize=(4 * len(confusions), 3.6))
    for ax, (title, matrix) in zip(axes, confusions.items(), strict=True):
        display = ConfusionMatrixDisplay(np.array(matrix), display_labels=clf.LABELS)
        display.plot(ax=ax, colorbar=False)
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=120, bbox_inches=None)


def plot_curves(history: list[dict[str, float]], path) -> None:
    from dl2llm.plots import plt, save_figure

    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="training loss")
    right.plot(epochs, [h["val_accuracy"] for h in history], marker="o")
    right.set(xlabel="epoch", ylabel="validation accuracy")
    fig.tight_layout()
    save_figure(fig, path, dpi=120, bbox_inches=None)


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--epochs", type=check_positive, default=3, help="epochs (default: 3)")
    parser.add_argument("--batch-size", type=check_positive, default=32, help="default: 32")
    parser.add_argument("--lr", type=float, default=5e-5, help="peak learning rate")
    parser.add_argument("--max-length", type=check_positive, default=64, help="tokens per text")
    parser.add_argument(
        "--predict", nargs="+", metavar="TEXT", help="classify TEXT with the saved model and exit"
    )
    args = parser.parse_args(argv)
    if args.predict is not None:
        print_predictions(args.predict, args.quick)
        return 0
    started = time.perf_counter()
    set_seed(args.seed)
    device = resolve_device(args.device)
    torch.set_num_threads(2)
    splits = sentiment_splits()
    if args.quick:
        splits = {name: splits[name].head(n) for name, n in QUICK_SIZES.items()}
    config = clf.FineTuneConfig(
        epochs=1 if args.quick else args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=32 if args.quick else args.max_length,
    )
    print(f"train {len(splits['train'])}, val {len(splits['val'])}, test {len(splits['test'])}")

    model, tokenizer = clf.load_base_classifier()
    checkpoint = args.out / "checkpoints" / f"{NAME}{'-quick' if args.quick else ''}.pt"
    tuned = clf.fine_tune(
        model, tokenizer, splits["train"], splits["val"], config, device, args.seed, checkpoint
    )
    saved_to = clf.save_classifier(model, tokenizer, clf.classifier_dir(args.quick))
    test = splits["test"]
    probs = clf.predict_proba(model, tokenizer, test.texts, config.max_length, device=device)
    results = {
        "fine-tuned MiniLM": clf.classification_metrics(test.labels, probs.argmax(1)),
        "TF-IDF + LR": clf.classification_metrics(
            test.labels, clf.tfidf_baseline(splits["train"], splits["val"], test)
        ),
        "frozen MiniLM + LR": clf.classification_metrics(
            test.labels, clf.frozen_embedding_baseline(splits["train"], splits["val"], test)
        ),
    }
    print(f"\n{'model':<20} {'accuracy':>9} {'F1':>7}   (test, n = {len(test)})")
    for title, m in results.items():
        print(f"{title:<20} {m['accuracy']:>9.4f} {m['f1']:>7.4f}")
    print(f"best epoch {tuned.best_epoch}; model saved to {saved_to}")

    args.out.mkdir(parents=True, exist_ok=True)
    artifacts = [f"{NAME}_confusion.png", f"{NAME}_curves.png"]
    plot_confusions({t: m["confusion"] for t, m in results.items()}, args.out / artifacts[0])
    plot_curves(tuned.history, args.out / artifacts[1])
    fine, tfidf, frozen = results.values()
    metrics = {
        "test_accuracy": fine["accuracy"],
        "test_f1": fine["f1"],
        "test_confusion": fine["confusion"],
        "tfidf_test_accuracy": tfidf["accuracy"],
        "tfidf_test_f1": tfidf["f1"],
        "frozen_embedding_test_accuracy": frozen["accuracy"],
        "frozen_embedding_test_f1": frozen["f1"],
        "best_epoch": tuned.best_epoch,
        "best_val_accuracy": tuned.best_val_accuracy,
        "history": tuned.history,
        "n_train": len(splits["train"]),
        "n_test": len(test),
    }
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={**asdict(config), "device": str(device)},
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=artifacts,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
