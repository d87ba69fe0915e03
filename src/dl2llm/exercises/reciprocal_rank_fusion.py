"""Exercise ``reciprocal_rank_fusion`` (capstone).

Mirrors :func:`dl2llm.rag.retrieve.reciprocal_rank_fusion`. There is no reference
library for RRF, so the expected values are worked out by hand from the formula of
Cormack, Clarke & Buettcher (2009) and written into the cases.
"""

from __future__ import annotations

from types import SimpleNamespace

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise reciprocal_rank_fusion (Cormack, Clarke & Buettcher, SIGIR 2009).

Hybrid retrieval fuses several ranked lists (say BM25 and dense) by

    score(d) = sum over the lists that contain d of 1 / (k + rank(d)),  rank from 1

Check with: dl2llm exercise check reciprocal_rank_fusion
"""


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = 60) -> list[tuple[int, float]]:
    """(id, score) pairs sorted by decreasing score.

    rankings: ranked lists of ids (best first); an id may be missing from some lists.
    Ties keep the order in which ids were first seen (list by list, rank by rank).
    """
    raise NotImplementedError
'''


def _library() -> SimpleNamespace:
    from dl2llm.rag.retrieve import reciprocal_rank_fusion

    return SimpleNamespace(reciprocal_rank_fusion=reciprocal_rank_fusion)


def _cases() -> list[Case]:
    settings = [
        (
            "two lists, k=60",
            ([[1, 2, 3], [3, 1, 4]], 60),
            [(1, 1 / 61 + 1 / 62), (3, 1 / 63 + 1 / 61), (2, 1 / 62), (4, 1 / 63)],
        ),
        (
            "k=1 rewards the top ranks strongly",
            ([[7, 8], [9, 8]], 1),
            [(8, 1 / 3 + 1 / 3), (7, 1 / 2), (9, 1 / 2)],
        ),
        ("one list keeps its order", ([[5, 4, 3]], 60), [(5, 1 / 61), (4, 1 / 62), (3, 1 / 63)]),
        (
            "ties keep first-seen order",
            ([[10, 20], [20, 10], [30]], 0),
            [(10, 1.5), (20, 1.5), (30, 1.0)],
        ),
        ("no lists at all", ([], 60), []),
    ]
    return [
        Case(
            name,
            lambda code, args=args: code.reciprocal_rank_fusion(*args),
            lambda expected=expected: expected,
            atol=1e-12,
            rtol=1e-12,
        )
        for name, args, expected in settings
    ]


EXERCISE = Exercise(
    name="reciprocal_rank_fusion",
    title="Reciprocal rank fusion",
    week=6,
    mirrors=("dl2llm.rag.retrieve.reciprocal_rank_fusion",),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
