"""Side-by-side comparisons of several word-vector models (for the week 3 notebook).

Each function takes ``{"name": KeyedVectors}`` and returns plain rows that print
as a Markdown table with :func:`markdown_table`.
"""

from __future__ import annotations

from gensim.models import KeyedVectors

from dl2llm.embeddings.evaluation import answer_analogies, evaluate


def evaluation_rows(models: dict[str, KeyedVectors]) -> list[dict[str, object]]:
    """One row per model: analogy accuracy and WordSim-353 Spearman with coverage."""
    return [{"model": name, **evaluate(keyed)} for name, keyed in models.items()]


def neighbour_rows(
    models: dict[str, KeyedVectors], words: list[str], topn: int = 5
) -> list[dict[str, str]]:
    """Each probe word's ``topn`` nearest neighbours (by cosine) under each model."""
    rows = []
    for word in words:
        row = {"word": word}
        for name, keyed in models.items():
            known = word in keyed.key_to_index
            found = [w for w, _ in keyed.most_similar(word, topn=topn)] if known else ["(unknown)"]
            row[name] = ", ".join(found)
        rows.append(row)
    return rows


def analogy_rows(
    models: dict[str, KeyedVectors], questions: list[tuple[str, str, str, str]]
) -> list[dict[str, str]]:
    """ "a : b :: c : ?" answered by each model; questions unknown to any model are skipped."""
    known = [q for q in questions if all(w in m.key_to_index for m in models.values() for w in q)]
    answers = {name: answer_analogies(m, [q[:3] for q in known]) for name, m in models.items()}
    return [
        {"question": f"{a} : {b} :: {c} : ?", "expected": d}
        | {name: answers[name][i] for name in models}
        for i, (a, b, c, d) in enumerate(known)
    ]


def markdown_table(rows: list[dict[str, object]], digits: int = 4) -> str:
    """Rows of equal keys as a Markdown table; floats rounded to ``digits``."""
    if not rows:
        return "(no rows)"
    headers = list(rows[0])

    def cell(value: object) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(row[h]) for h in headers) + " |" for row in rows]
    return "\n".join(lines)


def score_ratio(ours: float, reference: float) -> float | None:
    """``ours / reference``, or ``None`` when the reference score is not positive."""
    return round(ours / reference, 4) if reference > 0 else None
