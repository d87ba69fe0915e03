"""Week 1: a feedforward network for sentiment, from NumPy backprop to PyTorch (and Keras).

Trains a one-hidden-layer MLP on TF-IDF features of 10k Rotten Tomatoes
snippets: first in NumPy with hand-written backpropagation, then in PyTorch with
four optimizers written from scratch (SGD, momentum, Adam, AdamW). Then it shows
under- and overfitting: a tiny network, a huge one, and the huge one with L2,
dropout or early stopping, with train/validation curves in one plot.

Outputs: results/feedforward_nn.json, feedforward_nn_optimizers.png,
feedforward_nn_generalization.png. The lesson's code: src/dl2llm/nn/.
"""

from __future__ import annotations

from dataclasses import asdict

from dl2llm.nn.feedforward_lesson import FeedforwardConfig, run_lesson
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--backend",
        choices=["torch", "keras"],
        default="torch",
        help="keras: also train the same network in TensorFlow/Keras (needs the tf extra)",
    )
    parser.add_argument("--epochs", type=check_positive, help="override the number of epochs")
    run = start_run("feedforward_nn", parser, argv)
    args = run.args
    resolve_device(args.device)  # the MLPs are small: they always train on the CPU
    config = FeedforwardConfig.quick(args.seed) if args.quick else FeedforwardConfig(seed=args.seed)
    if args.epochs:
        config.epochs = args.epochs
    metrics, artifacts = run_lesson(config, args.out, keras=args.backend == "keras")

    print(f"NumPy MLP (hand-written backprop) test accuracy: {metrics['numpy_test_accuracy']:.3f}")
    print("PyTorch MLP, our optimizers (test accuracy):")
    for name, acc in metrics["optimizer_test_accuracy"].items():
        print(f"  {name:<9} {acc:.3f}")
    print(f"{'capacity / regularisation':<26} {'train':>6} {'val':>6} {'test':>6} {'epochs':>6}")
    for name, row in metrics["capacity"].items():
        print(
            f"{name:<26} {row['train_accuracy']:>6.3f} {row['val_accuracy']:>6.3f} "
            f"{row['test_accuracy']:>6.3f} {row['epochs_run']:>6}"
        )
    if args.backend == "keras":
        keras_acc, torch_acc = metrics["keras_test_accuracy"], metrics["torch_twin_test_accuracy"]
        gap = metrics["keras_gap_points"]
        print(f"Keras {keras_acc:.3f} vs PyTorch {torch_acc:.3f}: gap {gap:.2f} points")
    run.save(metrics, config={**asdict(config), "backend": args.backend}, artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
