"""Counterfactual probes for a sentiment classifier, and counterfactual data augmentation.

A counterfactual probe changes only a protected attribute of a sentence (a name, a
gendered word, a nationality, a religion) and asks whether the prediction moves (Kusner
et al., 2017; Garg et al., 2019, "Counterfactual Fairness in Text Classification"). We
report the *flip rate* (share of pairs whose predicted label changes, with a 95% Wilson
interval) and the *score gap* (mean of p(positive | original) - p(positive | swapped), and
its absolute value, with bootstrap intervals) per attribute, on templated sentences and on
real test sentences that contain an attribute word.

Counterfactual data augmentation (CDA; Lu et al., 2020, "Gender Bias in Neural Natural
Language Processing"; Zmigrod et al., 2019) adds an attribute-swapped copy of every
training sentence that contains an attribute word, with the same label, so the classifier
sees both versions. Swaps go both ways (``he -> she`` and ``she -> he``, ``Adam -> Jamal``
and ``Jamal -> Adam``); the ambiguous ``her`` becomes ``him`` or ``his`` from the word
that follows it, a crude stand-in for the part-of-speech tags Zmigrod et al. use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dl2llm.data import LabelledTexts
from dl2llm.responsible.stats import bootstrap_mean, proportion

SWAPS: dict[str, dict[str, str]] = {
    "name": {  # European- vs African-American first names (Caliskan et al., 2017)
        "Adam": "Jamal", "Harry": "Leroy", "Josh": "Tyrone", "Roger": "Darnell",
        "Alan": "Lamar", "Justin": "Malik", "Ryan": "Terrence", "Andrew": "Lionel",
        "Matthew": "Jerome", "Greg": "Alonzo", "Paul": "Lamont", "Peter": "Deion",
        "Emily": "Lakisha", "Katie": "Latisha", "Amanda": "Tanisha", "Megan": "Shaniqua",
        "Heather": "Ebony", "Melanie": "Jasmine", "Courtney": "Latoya", "Kristin": "Yolanda",
        "Nancy": "Malika", "Lauren": "Yvette", "Rachel": "Nichelle", "Stephanie": "Tia",
    },
    "pronoun": {  # gendered pronouns and nouns (after Lu et al., 2020)
        "he": "she", "him": "her", "his": "her", "himself": "herself",
        "man": "woman", "men": "women", "boy": "girl", "boys": "girls",
        "father": "mother", "fathers": "mothers", "son": "daughter", "sons": "daughters",
        "brother": "sister", "brothers": "sisters", "husband": "wife", "husbands": "wives",
        "boyfriend": "girlfriend", "uncle": "aunt", "nephew": "niece", "king": "queen",
        "actor": "actress", "actors": "actresses", "dad": "mom", "grandfather": "grandmother",
        "gentleman": "lady", "gentlemen": "ladies", "male": "female", "mr": "mrs",
    },
    "nationality": {
        "American": "Mexican", "British": "Nigerian", "French": "Iraqi", "German": "Chinese",
        "Italian": "Indian", "Canadian": "Pakistani", "Americans": "Mexicans",
    },
    "religion": {
        "Christian": "Muslim", "Christians": "Muslims", "Christianity": "Islam",
        "church": "mosque", "churches": "mosques", "Catholic": "Jewish", "Catholics": "Jews",
        "Bible": "Quran",
    },
}  # fmt: skip
CASE_SENSITIVE = frozenset({"name"})  # "Frank", "Jack": names only when capitalised
# After these words (or at the end of a clause) "her" is an object ("him"), else a
# possessive ("his"): "told her about" -> "told him about", "her film" -> "his film".
OBJECT_FOLLOWERS = frozenset(
    "a an the to and or but nor in on at for with from into onto as that this than so by "
    "about like up down out off back away again over through when while because if "
    "is was are were be been".split()
)

TEMPLATES = (
    "{} said the movie was wonderful.",
    "{} thought the film was a complete waste of time.",
    "The story follows {} through a dull and predictable plot.",
    "{} gives a warm and funny performance.",
    "I watched it with {} and we both loved it.",
    "Nothing {} does on screen makes sense.",
    "The film is about {}.",
    "{} is in almost every scene.",
    "{} was not sure what to make of the ending.",
    "A film about {}, neither good nor bad.",
    "{} carries the movie, but the script lets everyone down.",
    "The best thing about this mess is {}.",
    "It is hard to care about {}.",
    "{} makes the slow first hour worth sitting through.",
    "The camera never leaves {}.",
    "{} plays the lead.",
    "We are asked to root for {}, and we do.",
    "{} deserves a better movie than this.",
    "By the end, {} had won me over.",
    "{} seems lost in a story that goes nowhere.",
    "An ordinary evening with {}.",
    "{} tells the story in flashbacks.",
    "The critics were kind to {}.",
    "{} is the reason to see it.",
)
TEMPLATE_FILLERS = {
    "name": list(SWAPS["name"]),
    "pronoun": ["the man", "his father", "the boy", "my brother", "the actor", "her husband",
                "his son", "my uncle", "the king", "the old gentleman"],
    "nationality": ["the American actor", "a British director", "the French family",
                    "a German tourist", "the Italian chef", "the American soldier",
                    "a British student", "a French painter"],
    "religion": ["a Christian family", "the Catholic school", "the church choir",
                 "a Christian pop singer", "the Bible teacher", "the Christian girl",
                 "a church volunteer", "the Catholic family"],
}  # fmt: skip


def _two_way(mapping: dict[str, str]) -> dict[str, str]:
    return {**{v: k for k, v in mapping.items()}, **mapping}


def _tables() -> dict[str, tuple[re.Pattern, dict[str, str]]]:
    tables = {}
    for attribute, mapping in SWAPS.items():
        table = _two_way(mapping)
        if attribute not in CASE_SENSITIVE:
            table = {k.lower(): v for k, v in table.items()}
        table.pop("her", None)  # resolved from context in _replacement
        words = [*table, "her", "hers"] if attribute == "pronoun" else list(table)
        alternatives = "|".join(sorted(map(re.escape, words), key=len, reverse=True))
        flags = 0 if attribute in CASE_SENSITIVE else re.IGNORECASE
        tables[attribute] = (re.compile(rf"\b({alternatives})\b", flags), table)
    return tables


_TABLES = _tables()


def _match_case(replacement: str, original: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def _replacement(match: re.Match, table: dict[str, str]) -> str:
    word = match.group(0)
    key = word if word in table else word.lower()
    if key == "hers":
        new = "his"
    elif key == "her":
        following = re.match(r"\s*([A-Za-z]+)", match.string[match.end() :])
        is_object = following is None or following.group(1).lower() in OBJECT_FOLLOWERS
        new = "him" if is_object else "his"
    else:
        new = table[key]
    return _match_case(new, word)


def swap_attribute(text: str, attribute: str) -> str | None:
    """``text`` with every word of ``attribute`` swapped (both ways); ``None`` if none occurs."""
    if attribute not in SWAPS:
        raise ValueError(f"unknown attribute '{attribute}' (known: {', '.join(SWAPS)})")
    pattern, table = _TABLES[attribute]
    if not pattern.search(text):
        return None
    return pattern.sub(lambda m: _replacement(m, table), text)


@dataclass(frozen=True)
class CounterfactualPair:
    original: str
    swapped: str
    attribute: str
    source: str  # "template" or "real"


def templated_pairs(n_templates: int = len(TEMPLATES)) -> list[CounterfactualPair]:
    """The first ``n_templates`` templates filled with every filler, and the swapped twins."""
    return fill_templates(TEMPLATES[:n_templates], TEMPLATE_FILLERS)


def fill_templates(
    templates: Sequence[str], fillers: dict[str, Sequence[str]]
) -> list[CounterfactualPair]:
    """Every template filled with every filler of each attribute, and the swapped twins."""
    pairs = []
    for attribute, attribute_fillers in fillers.items():
        for template in templates:
            for filler in attribute_fillers:
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


def pair_scores(pairs: list[CounterfactualPair], positive_prob) -> np.ndarray:
    """``p(positive)`` of each pair's original and swapped sentence, shape ``(N, 2)``."""
    original = positive_prob([p.original for p in pairs])  # (N,)
    swapped = positive_prob([p.swapped for p in pairs])  # (N,)
    return np.stack([original, swapped], axis=1)


def groups(pairs: list[CounterfactualPair]) -> dict[tuple[str, str], np.ndarray]:
    """Boolean masks ``(N,)`` per ``(source, attribute)``, and ``(source, "all")``."""
    masks = {}
    for source in sorted({p.source for p in pairs}):
        for attribute in SWAPS:
            keep = np.array([p.source == source and p.attribute == attribute for p in pairs])
            if keep.any():
                masks[source, attribute] = keep
        masks[source, "all"] = np.array([p.source == source for p in pairs])
    return masks


def summarise(pairs: list[CounterfactualPair], scores: np.ndarray, seed: int = 0) -> dict:
    """Per source and attribute: :func:`flip_statistics` of :func:`pair_scores` output."""
    result: dict[str, dict] = {}
    for (source, attribute), keep in groups(pairs).items():
        stats = flip_statistics(scores[keep, 0], scores[keep, 1], seed)
        result.setdefault(source, {})[attribute] = stats
    return result


def probe(pairs: list[CounterfactualPair], positive_prob, seed: int = 0) -> dict:
    """:func:`summarise` the scores of ``positive_prob(texts) -> (N,)`` on ``pairs``."""
    return summarise(pairs, pair_scores(pairs, positive_prob), seed)


def attribute_copies(train: LabelledTexts) -> tuple[LabelledTexts, LabelledTexts]:
    """``(originals, swapped)``: one swapped copy per attribute found in a sentence.

    ``originals`` repeats the sentence once per copy, so the two are aligned row by row.
    """
    originals, swapped, labels = [], [], []
    for text, label in zip(train.texts, train.labels, strict=True):
        for attribute in SWAPS:
            copy = swap_attribute(text, attribute)
            if copy is not None:
                originals.append(text)
                swapped.append(copy)
                labels.append(label)
    return LabelledTexts(originals, labels), LabelledTexts(swapped, list(labels))


def augment(train: LabelledTexts) -> LabelledTexts:
    """Counterfactual data augmentation: append a swapped copy per attribute found."""
    _, swapped = attribute_copies(train)
    return LabelledTexts(train.texts + swapped.texts, train.labels + swapped.labels)
