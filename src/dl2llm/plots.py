"""Small plotting helpers shared by the deliverables (matplotlib, headless).

:func:`save_figure` is the one place the project writes a figure: every PNG goes
through it, atomically (temp file + rename), so a killed run never leaves half
an image behind.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib


def _jupyter_backend() -> bool:
    """True when a notebook kernel already chose an inline/widget backend (keep it)."""
    chosen = dict.__getitem__(matplotlib.rcParams, "backend")  # raw: no auto-resolution
    return any(name in str(chosen).lower() for name in ("inline", "ipympl", "nbagg"))


if not _jupyter_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dl2llm.io import atomic_write_with  # noqa: E402


def save_figure(
    fig: Figure,
    path: str | Path,
    *,
    dpi: float = 110,
    bbox_inches: str | None = "tight",
    image_format: str | None = None,
    close: bool = True,
) -> Path:
    """Save a figure atomically (temp file + rename) and, unless ``close=False``, close it.

    ``dpi`` and ``bbox_inches`` go to ``savefig`` (``bbox_inches=None``: matplotlib's
    default, the whole canvas). ``image_format`` defaults to the suffix of ``path``
    (PNG when there is none). Notebooks pass ``close=False`` so that the figure is
    still shown inline after it is saved.
    """
    image_format = image_format or Path(path).suffix.lstrip(".") or "png"
    try:
        return atomic_write_with(
            path,
            lambda tmp: fig.savefig(tmp, format=image_format, dpi=dpi, bbox_inches=bbox_inches),
        )
    finally:
        if close:
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
