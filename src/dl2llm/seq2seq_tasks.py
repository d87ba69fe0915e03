"""Toy sequence-to-sequence tasks for the Transformer of :mod:`dl2llm.transformer`.

Small enough to train on a laptop CPU in seconds to minutes, and hard in the
right way: *copy* and *reverse* need attention to the right source position
(reverse cannot be done left to right by a short memory), and *date-format
conversion* ("march 5, 2021" -> "2021-03-05") needs attention that jumps
around the source, the task Bahdanau-style attention is often shown on.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence

from dl2llm.runtime import UsageError
from dl2llm.transformer import SPECIAL_TOKENS, strip_special


def synthetic_pairs(
    task: str, n: int, n_symbols: int, min_len: int, max_len: int, seed: int
) -> list[tuple[list[int], list[int]]]:
    """``n`` random sequences of ids ``3 .. 3 + n_symbols`` and their copy or reversal."""
    if task not in ("copy", "reverse"):
        raise UsageError(f"unknown synthetic task '{task}' (use copy or reverse)")
    rng = random.Random(seed)
    first = len(SPECIAL_TOKENS)
    pairs = []
    for _ in range(n):
        length = rng.randint(min_len, max_len)
        source = [rng.randrange(first, first + n_symbols) for _ in range(length)]
        pairs.append((source, source if task == "copy" else source[::-1]))
    return pairs


class CharVocab:
    """Characters <-> ids, after the special tokens ``<pad> <s> </s>``."""

    def __init__(self, texts: Sequence[str]):
        self.tokens = list(SPECIAL_TOKENS) + sorted(set("".join(texts)))
        self.ids = {token: index for index, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self.ids.keys())
        if unknown:
            raise UsageError(f"characters not in the vocabulary: {unknown}")
        return [self.ids[char] for char in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.tokens[i] for i in strip_special(ids))


MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DATE_FORMATS = (
    "{month} {day}, {year}",
    "{day} {month} {year}",
    "{mon} {day} {year}",
    "{weekday}, {month} {day}, {year}",
    "{wkd} {day:02d} {mon} {year}",
    "{day:02d}.{month_number:02d}.{year}",
    "{year} {month} {day}",
)


def date_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` distinct human-written dates and their ISO form ("march 5, 2021" -> "2021-03-05").

    Dates lie in 1950-2049; the written forms mix full and abbreviated month
    and weekday names, day-first and month-first orders (see :data:`DATE_FORMATS`).
    """
    rng = random.Random(seed)
    start, days = datetime.date(1950, 1, 1).toordinal(), 365 * 100 + 24
    pairs: dict[str, str] = {}
    while len(pairs) < n:
        date = datetime.date.fromordinal(start + rng.randrange(days))
        month, weekday = MONTHS[date.month - 1], WEEKDAYS[date.weekday()]
        written = rng.choice(DATE_FORMATS).format(
            day=date.day,
            month=month,
            mon=month[:3],
            month_number=date.month,
            weekday=weekday,
            wkd=weekday[:3],
            year=date.year,
        )
        pairs[written] = date.isoformat()
    return list(pairs.items())
