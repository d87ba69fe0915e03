"""The Word Embedding Association Test (WEAT; Caliskan, Bryson & Narayanan, 2017, Science).

For target word sets X, Y (e.g. male and female terms) and attribute sets A, B (career
and family words), each word's association is

    s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b)

The effect size is Cohen's d of the two target sets' associations,

    d = (mean_x s(x, A, B) - mean_y s(y, A, B)) / std_{w in X u Y} s(w, A, B)

and the one-sided p-value is the share of equal-size re-partitions (X_i, Y_i) of X u Y
whose test statistic sum_x s(x) - sum_y s(y) is at least the observed one: exact when
the partitions are few, otherwise estimated from seeded random permutations as
(k + 1) / (P + 1), which never reports an impossible p of 0. For
contextual embeddings we embed each word in a bleached template ("This is a <word>.")
as SEAT does (May et al., 2019).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

WordVectors = Callable[[list[str]], np.ndarray]  # words -> (N, D), rows for known words only


@dataclass(frozen=True)
class WeatTest:
    name: str
    targets_x: tuple[str, ...]
    targets_y: tuple[str, ...]
    attributes_a: tuple[str, ...]
    attributes_b: tuple[str, ...]


TESTS = (
    WeatTest(  # WEAT 6
        "career/family vs male/female names",
        ("john", "paul", "mike", "kevin", "steve", "greg", "jeff", "bill"),
        ("amy", "joan", "lisa", "sarah", "diana", "kate", "ann", "donna"),
        ("executive", "management", "professional", "corporation", "salary", "office",
         "business", "career"),
        ("home", "parents", "children", "family", "cousins", "marriage", "wedding", "relatives"),
    ),
    WeatTest(  # WEAT 7
        "math/arts vs male/female terms",
        ("male", "man", "boy", "brother", "he", "him", "his", "son"),
        ("female", "woman", "girl", "sister", "she", "her", "hers", "daughter"),
        ("math", "algebra", "geometry", "calculus", "equations", "computation", "numbers",
         "addition"),
        ("poetry", "art", "dance", "literature", "novel", "symphony", "drama", "sculpture"),
    ),
    WeatTest(  # WEAT 1
        "flowers/insects vs pleasant/unpleasant",
        ("rose", "tulip", "lily", "daisy", "violet", "orchid", "iris", "lilac"),
        ("ant", "spider", "flea", "moth", "wasp", "mosquito", "bee", "beetle"),
        ("love", "peace", "happy", "gentle", "honest", "lucky", "friend", "heaven"),
        ("hatred", "murder", "poison", "death", "disaster", "ugly", "evil", "sickness"),
    ),
)  # fmt: skip


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def associations(
    targets: np.ndarray, attributes_a: np.ndarray, attributes_b: np.ndarray
) -> np.ndarray:
    """``s(w, A, B)`` for each target row: ``(N, D), (|A|, D), (|B|, D) -> (N,)``."""
    targets, a, b = _unit(targets), _unit(attributes_a), _unit(attributes_b)
    return (targets @ a.T).mean(axis=1) - (targets @ b.T).mean(axis=1)


def effect_size(s_x: np.ndarray, s_y: np.ndarray) -> float:
    """Cohen's d with the sample standard deviation over ``X u Y``."""
    return float((s_x.mean() - s_y.mean()) / np.concatenate([s_x, s_y]).std(ddof=1))


def permutation_p_value(
    s_x: np.ndarray, s_y: np.ndarray, n_permutations: int = 10_000, seed: int = 0
) -> tuple[float, bool]:
    """One-sided p-value of ``sum s_x - sum s_y``; returns ``(p, exact)``."""
    pooled = np.concatenate([s_x, s_y])
    observed = s_x.sum() - s_y.sum()
    total, size = pooled.sum(), len(s_x)
    exact = math.comb(len(pooled), size) <= n_permutations
    if exact:
        splits = np.array(list(itertools.combinations(range(len(pooled)), size)))
    else:
        rng = np.random.default_rng(seed)
        splits = np.argsort(rng.random((n_permutations, len(pooled))), axis=1)[:, :size]
    x_sums = pooled[splits].sum(axis=1)  # (P,)
    statistics = x_sums - (total - x_sums)  # (P,)
    at_least = int((statistics >= observed - 1e-12).sum())
    if exact:
        return at_least / len(statistics), True
    return (at_least + 1) / (len(statistics) + 1), False  # the observed split counts too


def run_weat(
    test: WeatTest, vectors: WordVectors, n_permutations: int = 10_000, seed: int = 0
) -> dict:
    """Effect size and p-value of ``test``; target sets are trimmed to equal size."""
    found = [vectors(list(words)) for words in
             (test.targets_x, test.targets_y, test.attributes_a, test.attributes_b)]  # fmt: skip
    n_targets = min(len(found[0]), len(found[1]))
    if n_targets < 2 or min(len(found[2]), len(found[3])) < 1:
        return {"test": test.name, "effect_size": None, "p_value": None, "n_targets": n_targets}
    s_x = associations(found[0][:n_targets], found[2], found[3])
    s_y = associations(found[1][:n_targets], found[2], found[3])
    p_value, exact = permutation_p_value(s_x, s_y, n_permutations, seed)
    return {
        "test": test.name,
        "effect_size": effect_size(s_x, s_y),
        "p_value": p_value,
        "exact_p": exact,
        "n_targets": n_targets,
        "n_attributes": (len(found[2]), len(found[3])),
    }


def keyed_vectors_lookup(keyed) -> WordVectors:
    """A :data:`WordVectors` over gensim-style ``KeyedVectors`` (unknown words dropped)."""

    def lookup(words: list[str]) -> np.ndarray:
        known = [w for w in words if w in keyed.key_to_index]
        return np.array([keyed[w] for w in known]).reshape(len(known), keyed.vector_size)

    return lookup


def contextual_lookup(encode: Callable[[list[str]], np.ndarray]) -> WordVectors:
    """A :data:`WordVectors` that embeds each word in the SEAT template ``"This is <word>."``."""
    return lambda words: encode([f"This is {word}." for word in words])


def weat_suite(vectors: WordVectors, tests: Sequence[WeatTest] = TESTS, **kwargs) -> list[dict]:
    """:func:`run_weat` for each test."""
    return [run_weat(test, vectors, **kwargs) for test in tests]
