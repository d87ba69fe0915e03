"""Looking at word vectors in 2-D: PCA and t-SNE.

- PCA (linear) keeps the two directions of largest variance: distances and
  directions (such as a "gender" offset) survive, but most variance is lost.
- t-SNE (van der Maaten and Hinton, "Visualizing Data using t-SNE", JMLR 2008)
  keeps *neighbourhoods*: near words stay near, while distances between
  clusters and the axes mean nothing.

Both come from scikit-learn; this module only picks the words and draws them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from dl2llm.runtime import UsageError

WORD_GROUPS: dict[str, list[str]] = {
    "family": ["father", "mother", "brother", "sister", "son", "daughter", "wife", "husband"],
    "numbers": ["two", "three", "four", "five", "six", "seven", "eight", "ten"],
    "time": ["day", "night", "morning", "evening", "week", "month", "year", "today"],
    "government": ["government", "minister", "president", "police", "court", "party", "leader"],
    "countries": ["france", "germany", "japan", "china", "india", "italy", "spain", "russia"],
}


def known_groups(groups: dict[str, list[str]], models: list[KeyedVectors]) -> dict[str, list[str]]:
    """The words of each group that every model knows (groups left empty are dropped)."""
    kept = {
        name: [w for w in words if all(w in m.key_to_index for m in models)]
        for name, words in groups.items()
    }
    return {name: words for name, words in kept.items() if words}


def project(vectors: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """``(N, D)`` -> ``(N, 2)`` with ``"pca"`` or ``"tsne"`` (on unit vectors: cosine geometry)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(unit)
    if method == "tsne":
        perplexity = min(10.0, (len(unit) - 1) / 3)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(unit)
    raise UsageError(f"unknown projection '{method}' (use pca or tsne)")


def plot_projections(
    models: dict[str, KeyedVectors],
    groups: dict[str, list[str]],
    method: str,
    path: str | Path,
    seed: int = 0,
) -> Path:
    """One panel per model, words coloured by group; written atomically as PNG."""
    from dl2llm.plots import save_figure

    words = [w for group in groups.values() for w in group]
    labels = [name for name, group in groups.items() for _ in group]
    figure = Figure(figsize=(5 * len(models), 4.5))
    axes = figure.subplots(1, len(models), squeeze=False)
    for axis, (title, keyed) in zip(axes[0], models.items(), strict=True):
        points = project(np.stack([keyed[w] for w in words]), method, seed)  # (N, 2)
        for name in groups:
            mine = np.array([label == name for label in labels])
            axis.scatter(points[mine, 0], points[mine, 1], label=name, s=18)
        for word, (x, y) in zip(words, points, strict=True):
            axis.annotate(word, (x, y), fontsize=7, alpha=0.8)
        axis.set_title(f"{title} ({method.upper()})")
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0][0].legend(fontsize=7, loc="best")
    figure.tight_layout()
    return save_figure(figure, path, dpi=110, bbox_inches=None, image_format="png")
