"""Small plotting helpers shared by the deliverables (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dl2llm.io import atomic_write_with  # noqa: E402


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Save a figure as PNG atomically (temp file + rename) and close it."""
    try:
        return atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)


def plot_curves(
    curves: dict[str, list[float]], title: str, ylabel: str, path: str | Path, xlabel: str = "epoch"
) -> Path:
    """One line per named curve, saved to ``path``."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, values in curves.items():
        style = "--" if label.endswith("(train)") else "-"
        ax.plot(range(1, len(values) + 1), values, style, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
