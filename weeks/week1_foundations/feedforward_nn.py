"""Week 1: a feedforward network for sentiment, from NumPy backprop to PyTorch (and Keras).

Trains a one-hidden-layer MLP on TF-IDF features of 10k Rotten Tomatoes
snippets and compares it with the linear baseline (logistic regression on the same
features): the MLP is tuned on validation only and its test accuracy is reported
over three seeds. Then the MLP in NumPy with hand-written backpropagation, and in
PyTorch with four optimizers written from scratch (SGD, momentum, Adam, AdamW).
Last, under- and overfitting: a tiny network, a huge one, and the huge one with
L2, dropout or early stopping, with train/validation curves in one plot.

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

    linear, seeds = metrics["linear_test_accuracy"], metrics["mlp_seed_test_accuracy"]
    chosen = metrics["mlp_chosen"]
    print(f"linear baseline (logistic regression, C={metrics['linear_c']}): test {linear:.3f}")
    print(
        f"MLP tuned on validation (width {chosen['width']}, dropout {chosen['dropout']}, "
        f"weight decay {chosen['weight_decay']}, {chosen['epochs']} epochs):"
    )
    for seed, acc, gain in zip(
        metrics["mlp_seeds"], seeds, metrics["mlp_gain_over_linear_pts_per_seed"], strict=True
    ):
        print(f"  seed {seed}: test {acc:.3f} ({gain:+.2f} points over linear)")
    print(
        f"  mean {metrics['mlp_test_accuracy_mean']:.3f} +- {metrics['mlp_test_accuracy_std']:.3f}:"
        f" {metrics['mlp_gain_over_linear_pts']:+.2f} points over linear"
    )
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
