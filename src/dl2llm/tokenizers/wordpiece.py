"""WordPiece, BERT's tokenizer: greedy longest-match-first subwords with a ``##`` prefix.

WordPiece (Schuster & Nakajima, 2012, "Japanese and Korean Voice Search"; used
by BERT, Devlin et al., 2019) splits each word into the *longest* vocabulary
entry that starts it, then the longest entry that continues it, and so on.
Pieces inside a word carry a ``##`` prefix so that ``"playing"`` and
``"ing"`` on its own are different tokens::

    "unaffable" -> ["una", "##ffa", "##ble"]

If any part of a word cannot be matched the whole word becomes ``[UNK]``, as
does any word longer than ``max_input_chars_per_word`` (100) characters.

Before that, BERT normalizes and pre-tokenizes the text (the rules of
``BertTokenizerFast``): drop control characters, NUL and U+FFFD; turn every
whitespace into a space; put spaces around CJK ideographs; strip accents
(NFD, then drop non-spacing marks); lowercase; split on whitespace; and make
every punctuation character a word of its own.

Training merges pairs like BPE but scores them by how much the merge raises
the likelihood of the training data under a unigram model of the symbols
(Schuster & Nakajima): ``count(ab) * log(p(ab) / (p(a) * p(b)))`` with
``p = count / n``. A simpler score, ``count(ab) / (count(a) * count(b))``
(``criterion="ratio"``, the one in Hugging Face's course), drops the
``count(ab)`` weight and so prefers pairs whose parts rarely occur apart,
spending the vocabulary on rare words. On
``{"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}`` (n = 113 symbols)::

    pair            count  likelihood gain           ratio
    ("##u", "##g")     20  20 * log(20*113/(36*20)) = 22.9   20/(36*20) = 1/36
    ("##g", "##s")      5   5 * log(5*113/(20*5))    =  8.7    5/(20*5)  = 1/20

so the likelihood gain learns ``"##ug"`` first and the ratio ``"##gs"``.
"""

from __future__ import annotations

import heapq
import math
import string
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from itertools import pairwise
from pathlib import Path

from tqdm.auto import tqdm

from dl2llm.io import atomic_write_text
from dl2llm.tokenizers.bpe import merge_pair

PREFIX = "##"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_INPUT_CHARS_PER_WORD = 100
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_control(char: str) -> bool:
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def bert_normalize(text: str, lowercase: bool = True) -> str:
    """BERT's normalizer: ``"Héllo\\tWORLD\\x00!" -> "hello world!"``.

    Accents are stripped whenever text is lowercased (the uncased models).
    """
    chars = []
    for char in text:
        if char in "\x00\ufffd" or _is_control(char):
            continue
        if char.isspace():
            chars.append(" ")
        elif _is_cjk(char):
            chars.append(f" {char} ")
        else:
            chars.append(char)
    text = "".join(chars)
    if lowercase:
        text = "".join(
            c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn"
        )
        text = text.lower()
    return text


def bert_pre_tokenize(text: str) -> list[str]:
    """Split on whitespace and around punctuation: ``"a,b c" -> ["a", ",", "b", "c"]``."""
    words = []
    for chunk in text.split():
        word = []
        for char in chunk:
            if _is_punctuation(char):
                if word:
                    words.append("".join(word))
                    word = []
                words.append(char)
            else:
                word.append(char)
        if word:
            words.append("".join(word))
    return words


def split_word(
    word: str,
    vocab: Mapping[str, int],
    unk_token: str = "[UNK]",
    max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD,
    max_piece_chars: int = MAX_INPUT_CHARS_PER_WORD,
) -> list[str]:
    """Greedy longest-match-first: ``"unaffable" -> ["una", "##ffa", "##ble"]``.

    ``max_piece_chars`` (the longest vocabulary entry) only bounds the search.
    """
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        for end in range(min(len(word), start + max_piece_chars), start, -1):
            piece = word[start:end] if start == 0 else PREFIX + word[start:end]
            if piece in vocab:
                pieces.append(piece)
                start = end
                break
        else:
            return [unk_token]
    return pieces


class WordPieceTokenizer:
    """WordPiece with BERT's normalization; ``vocab`` maps each token to its id."""

    def __init__(self, vocab: Mapping[str, int], lowercase: bool = True, unk_token: str = "[UNK]"):
        if unk_token not in vocab:
            raise ValueError(f"the vocabulary has no unknown token {unk_token!r}")
        self.vocab = dict(vocab)
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.lowercase = lowercase
        self.unk_token = unk_token
        self.unk_id = self.vocab[unk_token]
        self._max_piece_chars = max(len(t.removeprefix(PREFIX)) for t in self.vocab)
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @classmethod
    def from_vocab_file(cls, path: str | Path, lowercase: bool = True) -> WordPieceTokenizer:
        """Load a BERT ``vocab.txt`` (one token per line; the line number is the id)."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls({token: i for i, token in enumerate(lines)}, lowercase)

    def save(self, path: str | Path) -> Path:
        """Write ``vocab.txt`` (loadable by ``BertTokenizerFast(vocab_file=...)``)."""
        ordered = sorted(self.vocab, key=self.vocab.__getitem__)
        return atomic_write_text(path, "\n".join(ordered) + "\n")

    def pre_tokenize(self, text: str) -> list[str]:
        """Normalized words and punctuation of ``text``."""
        return bert_pre_tokenize(bert_normalize(text, self.lowercase))

    def tokenize(self, text: str) -> list[str]:
        """Token strings of ``text`` (no ``[CLS]``/``[SEP]``)."""
        return [self.id_to_token[i] for i in self.encode(text, add_special_tokens=False)]

    def _word_ids(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            pieces = split_word(
                word, self.vocab, self.unk_token, max_piece_chars=self._max_piece_chars
            )
            ids = self._cache[word] = [self.vocab[p] for p in pieces]
        return ids

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Ids of ``text``, wrapped in ``[CLS] ... [SEP]`` like BERT's tokenizer by default."""
        ids = [i for word in self.pre_tokenize(text) for i in self._word_ids(word)]
        if add_special_tokens:
            ids = [self.vocab["[CLS]"], *ids, self.vocab["[SEP]"]]
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Join tokens, gluing ``##`` pieces to the token before them."""
        text = " ".join(self.id_to_token[i] for i in ids)
        return text.replace(" " + PREFIX, "")

    @classmethod
    def train(
        cls,
        texts: str | Iterable[str],
        vocab_size: int,
        lowercase: bool = True,
        special_tokens: tuple[str, ...] = SPECIAL_TOKENS,
        criterion: str = "likelihood",
        progress: bool = False,
    ) -> WordPieceTokenizer:
        """Learn ``vocab_size`` tokens by best-scoring merges (``criterion``: see the module)."""
        texts = [texts] if isinstance(texts, str) else texts
        word_counts: Counter[str] = Counter()
        for text in texts:
            word_counts.update(bert_pre_tokenize(bert_normalize(text, lowercase)))
        for word in [w for w in word_counts if len(w) > MAX_INPUT_CHARS_PER_WORD]:
            del word_counts[word]
        words = [[w[0], *(PREFIX + c for c in w[1:])] for w in word_counts]
        alphabet = sorted({symbol for word in words for symbol in word})
        n_merges = vocab_size - len(special_tokens) - len(alphabet)
        if n_merges < 0:
            raise ValueError(
                f"vocab_size {vocab_size} is smaller than the {len(special_tokens)} special "
                f"tokens plus the {len(alphabet)}-symbol alphabet of this text: use at least "
                f"{len(special_tokens) + len(alphabet)}"
            )
        weights = list(word_counts.values())
        merged = learn_wordpiece_merges(words, weights, n_merges, criterion, progress)
        tokens = [*special_tokens, *alphabet, *merged]
        return cls({token: i for i, token in enumerate(tokens)}, lowercase)


def likelihood_gain(count_ab: int, count_a: int, count_b: int, n: int) -> float:
    """Unigram log-likelihood gained by merging: ``count(ab) * log(p(ab) / (p(a) * p(b)))``."""
    return count_ab * math.log(count_ab * n / (count_a * count_b))


def count_ratio(count_ab: int, count_a: int, count_b: int, n: int) -> float:
    """``count(ab) / (count(a) * count(b))`` (``n`` is unused)."""
    return count_ab / (count_a * count_b)


SCORES = {"likelihood": likelihood_gain, "ratio": count_ratio}


def _join(left: str, right: str) -> str:
    """``("h", "##u") -> "hu"``, ``("##u", "##g") -> "##ug"``."""
    return left + right.removeprefix(PREFIX)


def learn_wordpiece_merges(
    words: list[list[str]],
    weights: list[int],
    n_merges: int,
    criterion: str = "likelihood",
    progress: bool = False,
) -> list[str]:
    """The new tokens of ``n_merges`` best-scoring merges over ``words`` (in place).

    ``criterion`` is ``"likelihood"`` (the gain in unigram log-likelihood) or
    ``"ratio"`` (``count(ab) / (count(a) * count(b))``), see the module docstring.

    Pair and symbol counts are updated incrementally. A merge of ``(a, b)``
    lowers the counts of ``a`` and ``b``, which *raises* the score of every
    other pair containing them, so those pairs get fresh heap entries. Every
    other score can only go down (the total ``n`` shrinks); such stale entries
    are fixed when they are popped.
    """
    if criterion not in SCORES:
        raise ValueError(f"criterion must be one of {sorted(SCORES)}, got {criterion!r}")
    symbol_counts: Counter[str] = Counter()
    pair_counts: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    pairs_of: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for index, (word, weight) in enumerate(zip(words, weights, strict=True)):
        for symbol in word:
            symbol_counts[symbol] += weight
        for pair in pairwise(word):
            pair_counts[pair] += weight
            where[pair].add(index)
            pairs_of[pair[0]].add(pair)
            pairs_of[pair[1]].add(pair)

    n_symbols = sum(symbol_counts.values())
    pair_score = SCORES[criterion]

    def score(pair: tuple[str, str]) -> float:
        a, b = symbol_counts[pair[0]], symbol_counts[pair[1]]
        return pair_score(pair_counts[pair], a, b, n_symbols)

    heap = [(-score(pair), pair) for pair in pair_counts]
    heapq.heapify(heap)
    new_tokens: list[str] = []
    bar = tqdm(total=n_merges, desc="WordPiece merges", disable=not progress, leave=False)
    while heap and len(new_tokens) < n_merges:
        negative, pair = heapq.heappop(heap)
        if pair_counts[pair] <= 0:
            continue
        current = score(pair)
        if current != -negative:
            if current < -negative:
                heapq.heappush(heap, (-current, pair))
            continue
        token = _join(*pair)
        new_tokens.append(token)
        for index in where.pop(pair):
            old, weight = words[index], weights[index]
            new = merge_pair(old, pair, token)  # ['h', '##u', '##g'] -> ['hu', '##g']
            for symbol in old:
                symbol_counts[symbol] -= weight
            for gone in pairwise(old):
                pair_counts[gone] -= weight
            for symbol in new:
                symbol_counts[symbol] += weight
            for made in pairwise(new):
                pair_counts[made] += weight
                where[made].add(index)
                pairs_of[made[0]].add(made)
                pairs_of[made[1]].add(made)
            n_symbols -= (len(old) - len(new)) * weight
            words[index] = new
        del pair_counts[pair]
        for changed in pairs_of[pair[0]] | pairs_of[pair[1]] | pairs_of[token]:
            if pair_counts[changed] > 0:
                heapq.heappush(heap, (-score(changed), changed))
        bar.update()
    bar.close()
    return new_tokens
