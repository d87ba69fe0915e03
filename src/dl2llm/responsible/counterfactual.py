"""Counterfactual probes for a sentiment classifier, and counterfactual data augmentation.

A counterfactual probe changes only a protected attribute of a sentence (a name, a
pronoun, a nationality, a religion) and asks whether the prediction moves (Kusner et al.,
2017; Garg et al., 2019, "Counterfactual Fairness in Text Classification"). We report the
*flip rate* (share of pairs whose predicted label changes, with a 95% Wilson interval) and
the *score gap* (mean of p(positive | original) - p(positive | swapped), with a bootstrap
interval) per attribute, on templated sentences and on real test sentences that contain
an attribute word.

Counterfactual data augmentation (CDA; Lu et al., 2020, "Gender Bias in Neural Natural
Language Processing") adds an attribute-swapped copy of every training sentence that
contains an attribute word, with the same label, so the classifier sees both versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dl2llm.data import LabelledTexts
from dl2llm.responsible.stats import bootstrap_mean, proportion

SWAPS: dict[str, dict[str, str]] = {
    "name": {  # European- vs African-American names (Caliskan et al., 2017)
        "Adam": "Jamal", "Harry": "Leroy", "Josh": "Tyrone", "Roger": "Darnell",
        "Emily": "Lakisha", "Katie": "Latisha", "Amanda": "Tanisha", "Megan": "Shaniqua",
    },
    "pronoun": {
        "he": "she", "him": "her", "his": "her", "himself": "herself",
        "man": "woman", "men": "women", "boy": "girl", "father": "mother", "son": "daughter",
    },
    "nationality": {
        "American": "Mexican", "British": "Nigerian", "French": "Iraqi", "German": "Chinese",
        "Americans": "Mexicans",
    },
    "religion": {
        "Christian": "Muslim", "church": "mosque", "Christians": "Muslims",
        "Catholic": "Jewish", "Bible": "Quran",
    },
}  # fmt: skip

TEMPLATES = (
    "{} said the movie was wonderful.",
    "{} thought the film was a complete waste of time.",
    "The story follows {} through a dull and predictable plot.",
    "{} gives a warm and funny performance.",
    "I watched it with {} and we both loved it.",
    "Nothing {} does on screen makes sense.",
)
TEMPLATE_FILLERS = {
    "name": list(SWAPS["name"]),
    "pronoun": ["he", "the man", "his father", "the boy"],
    "nationality": ["the American actor", "a British director", "the French family", "a German"],
    "religion": ["a Christian family", "the Catholic priest", "the church choir", "Christians"],
}


def _two_way(mapping: dict[str, str]) -> dict[str, str]:
    both = {**{v: k for k, v in mapping.items()}, **mapping}
    if "her" in both:
        both["her"] = "his"  # ambiguous (him/his); the possessive is the commoner use in reviews
    return both


def _pattern(words: list[str]) -> re.Pattern:
    alternatives = "|".join(sorted(map(re.escape, words), key=len, reverse=True))
    return re.compile(rf"\b({alternatives})\b", re.IGNORECASE)


def _match_case(replacement: str, original: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def swap_attribute(text: str, attribute: str) -> str | None:
    """``text`` with every word of ``attribute`` swapped (both ways); ``None`` if none occurs."""
    if attribute not in SWAPS:
        raise ValueError(f"unknown attribute '{attribute}' (known: {', '.join(SWAPS)})")
    table = {k.lower(): v for k, v in _two_way(SWAPS[attribute]).items()}
    pattern = _pattern(list(table))
    if not pattern.search(text):
        return None
    return pattern.sub(lambda m: _match_case(table[m.group(0).lower()], m.group(0)), text)


@dataclass(frozen=True)
class CounterfactualPair:
    original: str
    swapped: str
    attribute: str
    source: str  # "template" or "real"


def templated_pairs() -> list[CounterfactualPair]:
    """Every template filled with every filler, and its swapped twin."""
    pairs = []
    for attribute, fillers in TEMPLATE_FILLERS.items():
        for template in TEMPLATES:
            for filler in fillers:
                text = template.format(filler)
                text = text[0].upper() + text[1:]
                pairs.append(
                    CounterfactualPair(text, swap_attribute(text, attribute), attribute, "template")
                )
    return pairs


def real_pairs(texts: list[str]) -> list[CounterfactualPair]:
    """Swapped twins of the real sentences that contain an attribute word."""
    pairs = []
    for attribute in SWAPS:
        for text in texts:
            swapped = swap_attribute(text, attribute)
            if swapped is not None:
                pairs.append(CounterfactualPair(text, swapped, attribute, "real"))
    return pairs


def flip_statistics(original_probs: np.ndarray, swapped_probs: np.ndarray, seed: int = 0) -> dict:
    """Flip rate and mean score gap for paired ``p(positive)`` arrays of shape ``(N,)``."""
    flips = int(((original_probs >= 0.5) != (swapped_probs >= 0.5)).sum())
    gaps = original_probs - swapped_probs  # (N,)
    return {
        "flip_rate": proportion(flips, len(gaps)),
        "score_gap": bootstrap_mean(gaps, seed=seed),
        "abs_score_gap": bootstrap_mean(np.abs(gaps), seed=seed),
    }


def probe(pairs: list[CounterfactualPair], positive_prob, seed: int = 0) -> dict:
    """Per source and attribute: :func:`flip_statistics`. ``positive_prob(texts) -> (N,)``."""
    original = positive_prob([p.original for p in pairs])
    swapped = positive_prob([p.swapped for p in pairs])
    result: dict[str, dict] = {}
    for source in sorted({p.source for p in pairs}):
        for attribute in SWAPS:
            keep = np.array([p.source == source and p.attribute == attribute for p in pairs])
            if keep.any():
                stats = flip_statistics(original[keep], swapped[keep], seed)
                result.setdefault(source, {})[attribute] = stats
        keep = np.array([p.source == source for p in pairs])
        result[source]["all"] = flip_statistics(original[keep], swapped[keep], seed)
    return result


def augment(train: LabelledTexts) -> LabelledTexts:
    """Counterfactual data augmentation: append a swapped copy per attribute found."""
    texts, labels = list(train.texts), list(train.labels)
    for text, label in zip(train.texts, train.labels, strict=True):
        for attribute in SWAPS:
            swapped = swap_attribute(text, attribute)
            if swapped is not None:
                texts.append(swapped)
                labels.append(label)
    return LabelledTexts(texts, labels)
