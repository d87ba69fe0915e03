"""The Unigram language-model tokenizer of SentencePiece (T5, ALBERT, XLNet, Llama 1-2).

Kudo (2018, "Subword Regularization: Improving Neural Network Translation
Models with Multiple Subword Candidates") models a word as a sequence of
independent pieces, ``P(x) = prod_i p(x_i)``. Every way of cutting a word into
vocabulary pieces is a path through a *lattice*; tokenizing picks the most
probable path with the Viterbi algorithm::

    p = {"▁he": 0.1, "llo": 0.05, "▁hell": 0.02, "o": 0.1, ...}
    "▁hello" -> ["▁he", "llo"]    (0.1 * 0.05 = 0.005 beats 0.02 * 0.1 = 0.002)

Training works top-down, unlike BPE: start from a large seed vocabulary (every
character plus frequent substrings), then repeat

1. E-step: for every word, the forward-backward algorithm over its lattice
   gives each piece's expected count;
2. M-step: new log-probabilities from the expected counts (with the
   Dirichlet-process style ``digamma`` update SentencePiece uses, which acts as
   a sparse prior), dropping pieces expected less than half a time;
3. prune: estimate how much the corpus likelihood drops if each piece is
   removed (its occurrences fall back to the second-best segmentation of the
   piece) and keep the best 75%,

until the vocabulary is 10% above the size asked for; the final vocabulary is
every required character plus the most probable pieces. Text is first
normalized (NFKC, whitespace collapsed) and each word is marked with ``▁``
(U+2581) so that decoding is lossless (Kudo & Richardson, 2018, "SentencePiece").
The defaults follow the ``sentencepiece`` trainer so the two can be compared.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from scipy.special import digamma
from tqdm.auto import tqdm

from dl2llm.io import atomic_write_text

WORD_MARK = "\u2581"
UNK_CHAR = "\u2047"
META_PIECES = ("<unk>", "<s>", "</s>")
UNK_PENALTY = 10.0
MIN_EXPECTED_COUNT = 0.5
_NEG_INF = float("-inf")


def normalize(text: str) -> str:
    """NFKC with runs of whitespace collapsed: ``"ｆｕｌｌ  width\\n" -> "full width"``."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def split_words(text: str) -> list[str]:
    """Words marked with ``▁``: ``"Hello  world." -> ["▁Hello", "▁world."]``."""
    return [WORD_MARK + word for word in normalize(text).split(" ") if word]


def _log_add(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))`` without overflow."""
    if a < b:
        a, b = b, a
    return a if b == _NEG_INF else a + math.log1p(math.exp(b - a))


def _script(char: str) -> str:
    """A character's script for the one-script-per-piece rule (digits are their own)."""
    category = unicodedata.category(char)
    if category == "Nd":
        return "Number"
    if not category.startswith("L"):
        return "Common" if category[0] in "PSZN" else category
    name = unicodedata.name(char, "UNKNOWN").split()[0]
    return "Han" if name in ("CJK", "HIRAGANA", "KATAKANA") else name


def is_valid_piece(piece: str, max_length: int = 16) -> bool:
    """SentencePiece's rule: ``▁`` only in front, one script, no unknown mark.

    ``"▁the" -> True``, ``"the▁" -> False``, ``"it's" -> False`` (Latin + Common).
    """
    if not piece or len(piece) > max_length or UNK_CHAR in piece or WORD_MARK in piece[1:]:
        return False
    return len({_script(c) for c in piece.lstrip(WORD_MARK)}) <= 1


def _lattice(
    word: str, scores: Mapping[str, float], max_length: int, unk_score: float, skip: str = ""
) -> list:
    """Nodes ``(start, end, piece, log_p)`` of every vocabulary piece in ``word``, by start.

    A character with no piece of its own gets an ``<unk>`` node (``piece=None``);
    the piece ``skip`` is left out (to find a piece's second-best segmentation).
    """
    nodes = []
    for start in range(len(word)):
        has_char = False
        for end in range(start + 1, min(len(word), start + max_length) + 1):
            piece = word[start:end]
            score = scores.get(piece)
            if score is not None and piece != skip:
                nodes.append((start, end, piece, score))
                has_char |= end == start + 1
        if not has_char:
            nodes.append((start, start + 1, None, unk_score))
    return nodes


def viterbi(
    word: str, scores: Mapping[str, float], max_length: int, unk_score: float, skip: str = ""
) -> list:
    """The most probable segmentation of ``word`` as ``[(piece or None, start), ...]``."""
    best = [_NEG_INF] * (len(word) + 1)
    back: list[tuple | None] = [None] * (len(word) + 1)
    best[0] = 0.0
    for start, end, piece, score in _lattice(word, scores, max_length, unk_score, skip):
        total = best[start] + score
        if total > best[end]:
            best[end], back[end] = total, (start, piece)
    path, position = [], len(word)
    while position > 0:
        start, piece = back[position]
        path.append((piece, start))
        position = start
    return path[::-1]


def expected_counts(
    word: str,
    weight: int,
    scores: Mapping[str, float],
    max_length: int,
    unk_score: float,
    expected: dict[str, float],
) -> float:
    """Add the posterior counts of ``word``'s pieces to ``expected``; returns ``log P(word)``."""
    nodes = _lattice(word, scores, max_length, unk_score)
    alpha = [_NEG_INF] * (len(word) + 1)
    beta = [_NEG_INF] * (len(word) + 1)
    alpha[0], beta[-1] = 0.0, 0.0
    for start, end, _, score in nodes:
        alpha[end] = _log_add(alpha[end], alpha[start] + score)
    for start, end, _, score in reversed(nodes):
        beta[start] = _log_add(beta[start], score + beta[end])
    log_z = alpha[-1]
    for start, end, piece, score in nodes:
        if piece is not None:
            posterior = math.exp(alpha[start] + score + beta[end] - log_z)
            expected[piece] = expected.get(piece, 0.0) + weight * posterior
    return log_z


class UnigramTokenizer:
    """A Unigram LM: ``scores`` maps each piece to its log-probability."""

    def __init__(self, scores: Mapping[str, float], max_piece_length: int = 16):
        self.scores = dict(scores)
        self.max_piece_length = max_piece_length
        ordered = sorted(self.scores, key=lambda p: (-self.scores[p], p))
        self.id_to_piece = [*META_PIECES, *ordered]
        self.piece_to_id = {piece: i for i, piece in enumerate(self.id_to_piece)}
        self.unk_score = min(self.scores.values()) - UNK_PENALTY
        self._cache: dict[str, list[str]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.id_to_piece)

    def segment(self, word: str) -> list[str]:
        """Viterbi pieces of one ``▁``-marked word; runs of unknown characters become ``<unk>``."""
        pieces = self._cache.get(word)
        if pieces is None:
            pieces = []
            for piece, _ in viterbi(word, self.scores, self.max_piece_length, self.unk_score):
                if piece is None and pieces and pieces[-1] == META_PIECES[0]:
                    continue
                pieces.append(META_PIECES[0] if piece is None else piece)
            self._cache[word] = pieces
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Pieces of ``text``: ``"Hello world" -> ["▁He", "llo", "▁world"]``."""
        return [piece for word in split_words(text) for piece in self.segment(word)]

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` (``<unk>`` is 0, as in SentencePiece)."""
        return [self.piece_to_id[piece] for piece in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``: pieces joined, ``▁`` back to spaces."""
        pieces = [self.id_to_piece[i] for i in ids]
        return (
            "".join(" \u2047 " if p == META_PIECES[0] else p for p in pieces)
            .replace(WORD_MARK, " ")
            .strip()
        )

    def save(self, path: str | Path) -> Path:
        """Write pieces and log-probabilities as JSON."""
        record = {"type": "unigram", "max_piece_length": self.max_piece_length}
        record["pieces"] = [[p, self.scores[p]] for p in self.id_to_piece[len(META_PIECES) :]]
        return atomic_write_text(path, json.dumps(record, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> UnigramTokenizer:
        """Read a tokenizer written by :meth:`save`."""
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if record.get("type") != "unigram":
            raise ValueError(f"{path} is not a Unigram tokenizer file")
        return cls(dict(record["pieces"]), record["max_piece_length"])

    @classmethod
    def train(
        cls,
        texts: str | Iterable[str],
        vocab_size: int,
        character_coverage: float = 0.9995,
        max_piece_length: int = 16,
        seed_size: int = 1_000_000,
        shrinking_factor: float = 0.75,
        sub_iterations: int = 2,
        progress: bool = False,
    ) -> UnigramTokenizer:
        """EM training as in ``sentencepiece`` (``model_type="unigram"``) with its defaults."""
        texts = [texts] if isinstance(texts, str) else texts
        word_counts: Counter[str] = Counter()
        for text in texts:
            word_counts.update(split_words(text))
        required = required_chars(word_counts, character_coverage)
        if len(required) + len(META_PIECES) >= vocab_size:
            raise ValueError(
                f"vocab_size {vocab_size} is too small: the text needs {len(required)} "
                f"characters plus {len(META_PIECES)} meta pieces, so use at least "
                f"{len(required) + len(META_PIECES) + 1}"
            )
        words = _mark_rare_chars(word_counts, required)
        trainer = _EMTrainer(words, max_piece_length, sub_iterations, progress)
        scores = seed_pieces(words, required, max_piece_length, seed_size)
        scores = trainer.run(scores, int(vocab_size * 1.1), shrinking_factor)
        final = _finalize(scores, required, vocab_size - len(META_PIECES))
        return cls(final, max_piece_length)


def required_chars(word_counts: Mapping[str, int], coverage: float) -> dict[str, int]:
    """The most frequent characters that together cover ``coverage`` of all characters."""
    counts: Counter[str] = Counter()
    for word, count in word_counts.items():
        for char in word:
            counts[char] += count
    total, covered, required = sum(counts.values()), 0, {}
    for char, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if covered / total >= coverage:
            break
        covered += count
        required[char] = count
    return required


def _mark_rare_chars(word_counts: Mapping[str, int], required: Mapping[str, int]) -> Counter:
    """Replace characters outside ``required`` by the unknown mark U+2047."""
    marked: Counter[str] = Counter()
    for word, count in word_counts.items():
        marked["".join(c if c in required else UNK_CHAR for c in word)] += count
    return marked


def seed_pieces(
    word_counts: Mapping[str, int],
    required: Mapping[str, int],
    max_piece_length: int = 16,
    seed_size: int = 1_000_000,
) -> dict[str, float]:
    """The initial vocabulary and its log-probabilities.

    Like SentencePiece's suffix-array seeding: every required character (scored
    by its frequency) and the substrings of the distinct words that occur
    followed by at least two different characters (scored by
    ``occurrences * length``), best ``seed_size`` first.
    """
    occurrences: Counter[str] = Counter()
    follower: dict[str, str | None] = {}
    for word in word_counts:
        padded = word + "\0"
        for start in range(len(word)):
            for end in range(start + 2, min(len(word), start + max_piece_length) + 1):
                piece = word[start:end]
                occurrences[piece] += 1
                seen = follower.setdefault(piece, padded[end])
                if seen is not None and seen != padded[end]:
                    follower[piece] = None
    substrings = [
        (piece, count * len(piece))
        for piece, count in occurrences.items()
        if follower[piece] is None and is_valid_piece(piece, max_piece_length)
    ]
    substrings.sort(key=lambda item: (-item[1], item[0]))
    seeds = dict(sorted(required.items(), key=lambda item: (-item[1], item[0])))
    for piece, score in substrings[: max(0, seed_size - len(seeds))]:
        seeds[piece] = score
    log_total = math.log(sum(seeds.values()))
    return {piece: math.log(score) - log_total for piece, score in seeds.items()}


class _EMTrainer:
    """E-steps, M-steps and pruning over a fixed bag of words."""

    def __init__(self, words: Mapping[str, int], max_length: int, sub_iterations: int, progress):
        self.words = dict(words)
        self.total = sum(self.words.values())
        self.max_length = max_length
        self.sub_iterations = sub_iterations
        self.progress = progress

    def run(self, scores: dict[str, float], stop_size: int, shrinking_factor: float):
        bar = tqdm(desc="Unigram EM", disable=not self.progress, leave=False)
        while True:
            for _ in range(self.sub_iterations):
                scores = self.m_step(self.e_step(scores))
            bar.set_postfix(vocab=len(scores))
            bar.update()
            if len(scores) <= stop_size:
                break
            scores = self.prune(scores, max(stop_size, int(shrinking_factor * len(scores))))
        bar.close()
        return scores

    def e_step(self, scores: Mapping[str, float]) -> dict[str, float]:
        """Expected count of every piece under the current model."""
        expected: dict[str, float] = {}
        unk_score = min(scores.values()) - UNK_PENALTY
        for word, count in self.words.items():
            expected_counts(word, count, scores, self.max_length, unk_score, expected)
        return expected

    @staticmethod
    def m_step(expected: Mapping[str, float]) -> dict[str, float]:
        """``log p = digamma(count) - digamma(total)`` over pieces expected >= 0.5 times."""
        kept = {p: c for p, c in expected.items() if c >= MIN_EXPECTED_COUNT}
        log_total = digamma(sum(kept.values()))
        return {piece: float(digamma(count) - log_total) for piece, count in kept.items()}

    def prune(self, scores: dict[str, float], keep: int) -> dict[str, float]:
        """Keep the ``keep`` pieces whose removal would cost the most likelihood.

        Removing piece ``s`` re-routes its Viterbi count to the pieces of its
        second-best segmentation; pieces with no alternative are always kept.
        """
        unk_score = min(scores.values()) - UNK_PENALTY
        alternatives: dict[str, list[str]] = {}
        removable = set()
        for piece in scores:
            if len(viterbi(piece, scores, self.max_length, unk_score)) > 1:
                removable.add(piece)  # the piece is never its own best segmentation
                continue
            alternative = viterbi(piece, scores, self.max_length, unk_score, skip=piece)
            if all(p is not None for p, _ in alternative):
                alternatives[piece] = [p for p, _ in alternative]
        freq: dict[str, float] = defaultdict(float)
        for word, count in self.words.items():
            for piece, _ in viterbi(word, scores, self.max_length, unk_score):
                if piece is not None:
                    freq[piece] += count
        total = sum(freq.values())
        kept, candidates = [], []
        for piece in scores:
            if freq[piece] == 0 or piece in removable:
                continue
            if piece not in alternatives:
                kept.append(piece)
                continue
            alt = alternatives[piece]
            log_total_alt = math.log(total + freq[piece] * (len(alt) - 1))
            log_p_alt = sum(math.log(freq[a] + freq[piece]) - log_total_alt for a in alt)
            loss = freq[piece] / self.total * (math.log(freq[piece] / total) - log_p_alt)
            candidates.append((loss, piece))
        candidates.sort(key=lambda item: (-item[0], item[1]))
        kept += [piece for _, piece in candidates[: max(0, keep - len(kept))]]
        return {piece: scores[piece] for piece in kept}


def _finalize(scores: Mapping[str, float], required: Mapping[str, int], size: int) -> dict:
    """Every required character, then the most probable pieces, ``size`` in all."""
    final, penalty = {}, 0.0
    floor = min(scores.values())
    for char in sorted(required, key=lambda c: (-required[c], c)):
        if char in scores:
            final[char] = scores[char]
        else:
            final[char] = floor + penalty
            penalty += 1e-4
    for piece, score in sorted(scores.items(), key=lambda item: (-item[1], item[0])):
        if len(final) >= size:
            break
        final.setdefault(piece, score)
    return final
