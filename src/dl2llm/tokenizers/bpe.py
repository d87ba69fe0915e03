"""Byte-level byte-pair encoding (BPE), the tokenizer of GPT-2 and most modern LLMs.

BPE (Sennrich, Haddow & Birch, 2016, "Neural Machine Translation of Rare Words
with Subword Units") starts from an alphabet and repeatedly *merges* the most
frequent adjacent pair of symbols into a new symbol. GPT-2 (Radford et al., 2019,
"Language Models are Unsupervised Multitask Learners") runs it on UTF-8 *bytes*,
so the base alphabet is the 256 byte values and no text is ever out of
vocabulary. Three steps turn text into ids:

1. Pre-tokenization: a regex (:data:`GPT2_PATTERN`) cuts the text into
   word-like pieces (``"Hello world!" -> ["Hello", " world", "!"]``) so merges
   never cross a word boundary.
2. Each piece becomes its bytes, and adjacent parts are merged in the order
   they were learned (lowest *rank* first) until no learned pair is left:
   ``b"low" -> [b"l", b"o", b"w"] -> [b"lo", b"w"] -> [b"low"]``.
3. Each final part is looked up in the vocabulary: its rank is its id.

Training learns the ranks: count every adjacent pair over all pieces
(``[1, 2, 3, 1, 2] -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}``), merge the most
frequent pair everywhere (``(1, 2) -> 4`` turns ``[1, 2, 3, 1, 2]`` into
``[4, 3, 4]``), and repeat until the vocabulary has the size asked for.

Speed is part of the lesson. Encoding caches the ids of every piece it has
seen (most words repeat, so almost every piece is a dictionary hit) and merges
by rank lookups on byte strings, as ``tiktoken`` does. Training counts pairs
once and afterwards only updates the counts of the words that contain the
merged pair, taking the next best pair from a heap instead of recounting.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from itertools import chain, pairwise
from pathlib import Path
from typing import TypeVar

import regex
from tqdm.auto import tqdm

from dl2llm.io import atomic_write_text
from dl2llm.models import GPT2_PATTERN

BYTE_ALPHABET = 256
Symbol = TypeVar("Symbol", int, str)
_NO_RANK = float("inf")


def pair_counts(
    ids: Iterable[int], counts: dict[tuple[int, int], int] | None = None, weight: int = 1
) -> dict[tuple[int, int], int]:
    """Count adjacent pairs: ``[1, 2, 3, 1, 2] -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}``.

    ``counts`` (updated in place) accumulates over several sequences; ``weight``
    is how often this sequence occurs.
    """
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge_pair(ids: list[Symbol], pair: tuple[Symbol, Symbol], new_id: Symbol) -> list[Symbol]:
    """Replace every occurrence of ``pair``: ``[1, 2, 3, 1, 2], (1, 2), 4 -> [4, 3, 4]``.

    Symbols may be ids or strings (WordPiece merges ``"h", "##u"`` into ``"hu"``).
    """
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def bpe_parts(piece: bytes, ranks: Mapping[bytes, int], max_rank: float = _NO_RANK) -> list[bytes]:
    """Split ``piece`` into vocabulary parts by merging the lowest-rank adjacent pair first.

    ``b"hello"`` with GPT-2's ranks -> ``[b"hello"]``; ``max_rank`` allows only
    merges whose result ranks below it (used to recover a token's two halves).
    """
    parts = [piece[i : i + 1] for i in range(len(piece))]
    rank_of = ranks.get
    while len(parts) > 1:
        best_rank, best_at = max_rank, -1
        for at in range(len(parts) - 1):
            rank = rank_of(parts[at] + parts[at + 1], _NO_RANK)
            if rank < best_rank:
                best_rank, best_at = rank, at
        if best_at < 0:
            break
        parts[best_at : best_at + 2] = [parts[best_at] + parts[best_at + 1]]
    return parts


class _PieceCache(dict):
    """``piece -> token ids``, computing (and remembering) the ids on a miss.

    Emptied when it reaches ``max_entries`` so memory stays bounded on huge corpora.
    """

    def __init__(self, ranks: Mapping[bytes, int], errors: str, max_entries: int = 500_000):
        super().__init__()
        self.ranks, self.errors, self.max_entries = ranks, errors, max_entries

    def __missing__(self, piece: str) -> list[int]:
        if len(self) >= self.max_entries:
            self.clear()
        data = piece.encode("utf-8", self.errors)
        whole = self.ranks.get(data)  # a piece that is a token is that token, as in tiktoken
        ids = [whole] if whole is not None else [self.ranks[p] for p in bpe_parts(data, self.ranks)]
        self[piece] = ids
        return ids


class ByteBPETokenizer:
    """Byte-level BPE: ``ranks`` maps each vocabulary byte string to its id (= merge rank).

    >>> tok = ByteBPETokenizer.train("low lower lowest " * 50, vocab_size=260)
    >>> tok.decode(tok.encode("lowest"))
    'lowest'
    """

    def __init__(
        self,
        ranks: Mapping[bytes, int],
        pattern: str = GPT2_PATTERN,
        special_tokens: Mapping[str, int] | None = None,
    ):
        self.ranks = dict(ranks)
        self.pattern = pattern
        self.special_tokens = dict(special_tokens or {})
        self._split = regex.compile(pattern).findall
        self._special_split = (
            regex.compile("(" + "|".join(map(regex.escape, self.special_tokens)) + ")").split
            if self.special_tokens
            else None
        )
        size = max(chain(self.ranks.values(), self.special_tokens.values()), default=-1) + 1
        self._token_bytes: list[bytes | None] = [None] * size
        for token, rank in self.ranks.items():
            self._token_bytes[rank] = token
        for token, rank in self.special_tokens.items():
            self._token_bytes[rank] = token.encode("utf-8")
        self._cache = _PieceCache(self.ranks, errors="strict")
        self._bytes_cache = _PieceCache(self.ranks, errors="surrogateescape")

    @property
    def vocab_size(self) -> int:
        return len(self.ranks) + len(self.special_tokens)

    @classmethod
    def train(
        cls,
        texts: str | Iterable[str],
        vocab_size: int,
        pattern: str = GPT2_PATTERN,
        special_tokens: Collection[str] = (),
        progress: bool = False,
    ) -> ByteBPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``texts``.

        Special tokens get the last ids (GPT-2's ``<|endoftext|>`` is 50256).
        Training stops early when no pair occurs anywhere any more.
        """
        n_merges = vocab_size - BYTE_ALPHABET - len(special_tokens)
        if n_merges < 0:
            raise ValueError(
                f"vocab_size {vocab_size} is smaller than the byte alphabet (256) plus "
                f"{len(special_tokens)} special tokens: use at least "
                f"{BYTE_ALPHABET + len(special_tokens)}"
            )
        words = count_pieces(texts, pattern)
        tokens = [bytes([b]) for b in range(BYTE_ALPHABET)]
        for a, b in learn_merges(words, n_merges, progress=progress):
            tokens.append(tokens[a] + tokens[b])
        ranks = {token: rank for rank, token in enumerate(tokens)}
        specials = {token: len(ranks) + i for i, token in enumerate(special_tokens)}
        return cls(ranks, pattern, specials)

    @classmethod
    def from_tiktoken_file(
        cls, path: str | Path, special_tokens: Mapping[str, int] | None = None
    ) -> ByteBPETokenizer:
        """Load ranks in tiktoken's format (one ``base64(token) rank`` per line)."""
        ranks = {}
        for line in Path(path).read_text(encoding="ascii").splitlines():
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
        return cls(ranks, GPT2_PATTERN, special_tokens)

    def encode_ordinary(self, text: str) -> list[int]:
        """Ids of ``text``, treating special-token text as ordinary text."""
        try:
            return list(chain.from_iterable(map(self._cache.__getitem__, self._split(text))))
        except UnicodeEncodeError:
            # Lone surrogates cannot be UTF-8: replace them with U+FFFD, as tiktoken does.
            fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return self.encode_ordinary(fixed)

    def encode(self, text: str, allowed_special: Collection[str] | str = ()) -> list[int]:
        """Ids of ``text``; special tokens in ``allowed_special`` (or ``"all"``) become their id.

        Like ``tiktoken``, any other special token found in the text is an error,
        because silently encoding ``<|endoftext|>`` as text is a classic bug.
        """
        if self._special_split is None:
            return self.encode_ordinary(text)
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif isinstance(allowed_special, str):
            allowed = {allowed_special}
        else:
            allowed = set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise ValueError(f"not special tokens of this tokenizer: {sorted(unknown)}")
        ids: list[int] = []
        for i, chunk in enumerate(self._special_split(text)):
            if i % 2 == 0:
                ids.extend(self.encode_ordinary(chunk))
            elif chunk in allowed:
                ids.append(self.special_tokens[chunk])
            else:
                raise ValueError(
                    f"text contains the special token {chunk!r}: pass allowed_special="
                    f"{{{chunk!r}}} to encode it as a special token, or use encode_ordinary"
                )
        return ids

    def encode_bytes(self, data: bytes) -> list[int]:
        """Ids of any byte string, valid UTF-8 or not (``decode_bytes`` gives it back).

        Invalid bytes become lone surrogates (``surrogateescape``) for the regex and
        their original bytes again inside each piece.
        """
        text = data.decode("utf-8", "surrogateescape")
        return list(chain.from_iterable(map(self._bytes_cache.__getitem__, self._split(text))))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of the tokens ``ids``."""
        ids = list(ids)
        try:
            return b"".join(map(self._token_bytes.__getitem__, ids))
        except (IndexError, TypeError) as err:
            bad = [
                i for i in ids if not 0 <= i < len(self._token_bytes) or not self._token_bytes[i]
            ]
            raise ValueError(f"unknown token ids {bad[:5]}") from err

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token (for showing a tokenization)."""
        return self.decode_bytes([token_id])

    def merges(self) -> list[tuple[bytes, bytes]]:
        """The learned merges in rank order, recovered from the ranks.

        A token of rank ``r`` was made from the two parts that BPE produces from
        its bytes when only merges ranked below ``r`` are allowed.
        """
        pairs = []
        for token, rank in sorted(self.ranks.items(), key=lambda item: item[1]):
            if len(token) > 1:
                left, right = bpe_parts(token, self.ranks, max_rank=rank)
                pairs.append((left, right))
        return pairs

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer as JSON (ranks as base64, in rank order)."""
        ordered = sorted(self.ranks.items(), key=lambda item: item[1])
        if [rank for _, rank in ordered] != list(range(len(ordered))):
            raise ValueError("ranks must be 0..n-1 to be saved")
        record = {
            "type": "byte-level-bpe",
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            "tokens": [base64.b64encode(token).decode("ascii") for token, _ in ordered],
        }
        return atomic_write_text(path, json.dumps(record))

    @classmethod
    def load(cls, path: str | Path) -> ByteBPETokenizer:
        """Read a tokenizer written by :meth:`save`."""
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if record.get("type") != "byte-level-bpe":
            raise ValueError(f"{path} is not a byte-level BPE tokenizer file")
        ranks = {base64.b64decode(token): rank for rank, token in enumerate(record["tokens"])}
        return cls(ranks, record["pattern"], record["special_tokens"])


def count_pieces(texts: str | Iterable[str], pattern: str = GPT2_PATTERN) -> Counter[bytes]:
    """How often each pre-tokenized piece occurs, as UTF-8 bytes.

    ``"the cat the" -> {b"the": 1, b" cat": 1, b" the": 1}``
    """
    split = regex.compile(pattern).findall
    texts = [texts] if isinstance(texts, str) else texts
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(split(text))
    merged: Counter[bytes] = Counter()
    for piece, count in counts.items():
        merged[piece.encode("utf-8", "surrogateescape")] += count
    return merged


def learn_merges_simple(word_counts: Mapping[bytes, int], n_merges: int) -> list[tuple[int, int]]:
    """The merges of :func:`learn_merges`, found the plain way (minbpe's ``train``).

    Each round counts every adjacent pair in every word, merges the most frequent
    one everywhere, and repeats. ``{b"abab": 1}`` -> pairs ``{(97, 98): 2, (98, 97): 1}``
    -> merge ``(97, 98)`` into 256 -> ``[256, 256]`` -> merge ``(256, 256)`` into 257.
    Recounting everything per merge is what makes it slow on a real corpus.
    """
    words = {tuple(word): weight for word, weight in word_counts.items()}
    merges: list[tuple[int, int]] = []
    for new_id in range(BYTE_ALPHABET, BYTE_ALPHABET + n_merges):
        counts: dict[tuple[int, int], int] = {}
        for word, weight in words.items():
            pair_counts(word, counts, weight)
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))  # ties: the smaller pair
        merges.append(best)
        words = {tuple(merge_pair(list(word), best, new_id)): w for word, w in words.items()}
    return merges


def learn_merges(
    word_counts: Mapping[bytes, int], n_merges: int, progress: bool = False
) -> list[tuple[int, int]]:
    """The ``n_merges`` most frequent pair merges of byte ids, learned greedily and fast.

    The same merges as :func:`learn_merges_simple` (a test checks it), without
    recounting. New token ids start at 256 and follow the merge order. Ties go to the
    smaller pair of ids. After each merge only the words containing the merged
    pair are updated, and a max-heap of ``(count, pair)`` with lazily dropped
    stale entries gives the next pair without recounting everything.
    """
    words = [list(word) for word in word_counts]
    weights = list(word_counts.values())
    counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for index, (word, weight) in enumerate(zip(words, weights, strict=True)):
        pair_counts(word, counts, weight)
        for pair in pairwise(word):
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    bar = tqdm(total=n_merges, desc="BPE merges", disable=not progress, leave=False)
    while heap and len(merges) < n_merges:
        negative, pair = heapq.heappop(heap)
        count = counts.get(pair, 0)
        if count <= 0 or -negative != count:
            if 0 < count < -negative:  # the count fell since this entry was pushed
                heapq.heappush(heap, (-count, pair))
            continue
        new_id = BYTE_ALPHABET + len(merges)
        merges.append(pair)
        touched = _apply_merge(words, weights, where.pop(pair), pair, new_id, counts, where)
        del counts[pair]
        for changed in touched:
            if counts.get(changed, 0) > 0:
                heapq.heappush(heap, (-counts[changed], changed))
        bar.update()
    bar.close()
    return merges


def _apply_merge(
    words: list[list[int]],
    weights: list[int],
    indices: Iterable[int],
    pair: tuple[int, int],
    new_id: int,
    counts: dict[tuple[int, int], int],
    where: dict[tuple[int, int], set[int]],
) -> set[tuple[int, int]]:
    """Merge ``pair`` in the words at ``indices`` and update the pair counts in place.

    Returns the pairs whose count grew (they need a fresh heap entry).
    """
    grown = set()
    for index in indices:
        old, weight = words[index], weights[index]
        new = merge_pair(old, pair, new_id)
        for gone in pairwise(old):
            counts[gone] -= weight
        for made in pairwise(new):
            counts[made] = counts.get(made, 0) + weight
            where[made].add(index)
            if new_id in made:
                grown.add(made)
        words[index] = new
    return grown
