"""An interpolated Kneser-Ney n-gram language model: the baseline an LSTM must beat.

Kneser & Ney (1995); the interpolated, fixed-discount form of Chen & Goodman (1999).
A count-based model estimates ``P(w | context)`` from how often ``context w``
appeared. Two ideas make it work on unseen n-grams:

- *absolute discounting*: subtract ``D`` (0.75) from every seen count and give the
  freed probability mass to a lower-order model;
- *continuation counts*: the lower-order model counts in how many distinct
  contexts a word appears, not how often (``Francisco`` is frequent but only
  after ``San``, so it should get little mass as a novel continuation).

For the highest order::

    P(w | ctx) = max(c(ctx w) - D, 0) / c(ctx)
                 + D * N1+(ctx .) / c(ctx) * P_lower(w | ctx[1:])

Lower orders use continuation counts ``N1+(. ctx w)`` in place of ``c(ctx w)``,
and the recursion ends in a uniform distribution over the vocabulary, so every
word gets non-zero probability and the probabilities over the vocabulary sum to 1.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence


class KneserNeyLM:
    """Interpolated Kneser-Ney of order ``order`` over a fixed vocabulary."""

    def __init__(self, order: int = 3, discount: float = 0.75):
        if order < 1:
            raise ValueError("order must be >= 1")
        if not 0 < discount < 1:
            raise ValueError("discount must be in (0, 1)")
        self.order, self.discount = order, discount
        self.vocab: set[str] = set()
        # counts[n][(ctx, w)]: raw counts for the top order, continuation counts below
        self.counts: list[Counter] = [Counter() for _ in range(order + 1)]
        self.context_totals: list[Counter] = [Counter() for _ in range(order + 1)]
        self.context_types: list[Counter] = [Counter() for _ in range(order + 1)]

    def fit(self, tokens: Sequence[str]) -> KneserNeyLM:
        """Count n-grams of a token stream (``<unk>`` should already replace rare words)."""
        self.vocab = set(tokens)
        top = self.order
        ngrams = Counter(tuple(tokens[i : i + top]) for i in range(len(tokens) - top + 1))
        for gram, count in ngrams.items():
            self.counts[top][(gram[:-1], gram[-1])] = count
        # continuation counts: N1+(. ctx w) = number of distinct left extensions
        for n in range(top - 1, 0, -1):
            left_extensions: defaultdict[tuple, set] = defaultdict(set)
            for ctx, word in self.counts[n + 1]:
                left_extensions[(ctx[1:], word)].add(ctx[:1])
            for key, lefts in left_extensions.items():
                self.counts[n][key] = len(lefts)
        for n in range(1, top + 1):
            for (ctx, _), count in self.counts[n].items():
                self.context_totals[n][ctx] += count
                self.context_types[n][ctx] += 1
        return self

    def prob(self, word: str, context: Sequence[str]) -> float:
        """``P(word | context)``; only the last ``order - 1`` context words matter."""
        context = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        return self._prob(word, context, len(context) + 1)

    def _prob(self, word: str, context: tuple, n: int) -> float:
        if n == 0:
            return 1.0 / len(self.vocab)
        lower = self._prob(word, context[1:], n - 1)
        total = self.context_totals[n][context]
        if total == 0:
            return lower  # unseen context: all mass to the lower order
        count = self.counts[n][(context, word)]
        backoff_mass = self.discount * self.context_types[n][context] / total
        return max(count - self.discount, 0.0) / total + backoff_mass * lower

    def perplexity(self, tokens: Sequence[str]) -> float:
        """``exp(mean negative log-likelihood)`` of a token stream, each word given its history."""
        nll = 0.0
        for i, word in enumerate(tokens):
            nll -= math.log(self.prob(word, tokens[max(0, i - self.order + 1) : i]))
        return math.exp(nll / len(tokens))

    def distribution(self, context: Sequence[str]) -> dict[str, float]:
        """``P(w | context)`` for every vocabulary word ``w`` (sums to 1), in sorted word order."""
        return {word: self.prob(word, context) for word in sorted(self.vocab)}

    def sample(
        self, context: Sequence[str], n_words: int, temperature: float = 1.0, seed: int = 0
    ) -> list[str]:
        """Sample ``n_words`` after ``context`` from ``P(w | ctx) ** (1 / temperature)``.

        Each word is drawn from the model's own distribution given the last
        ``order - 1`` words (the prompt, then the words sampled so far).
        """
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        rng = random.Random(seed)
        history, words = list(context), []
        for _ in range(n_words):
            dist = self.distribution(history)
            weights = [p ** (1.0 / temperature) for p in dist.values()]
            words.append(rng.choices(list(dist), weights=weights)[0])
            history.append(words[-1])
        return words
