"""Datasets: fixed, seeded, disjoint splits."""

from __future__ import annotations

from dl2llm import data


def test_sentiment_splits_are_fixed_disjoint_and_balanced():
    splits = data.sentiment_splits()
    sizes = {name: len(split) for name, split in splits.items()}
    assert sizes == {"train": 8057, "val": 1007, "test": 1008}
    assert data.sentiment_splits()["test"].texts == splits["test"].texts  # same seed, same split
    train, test = set(splits["train"].texts), set(splits["test"].texts)
    assert len(train & test) <= 5  # only exact duplicate snippets in the source
    for split in splits.values():
        assert 0.45 < sum(split.labels) / len(split) < 0.55
    assert data.sentiment_splits(seed=1)["test"].texts != splits["test"].texts


def test_sentiment_labels_follow_the_score_sign():
    records = data.sentiment_records()
    assert len(records) == 10605
    kept = [(t, s) for t, s in records if abs(s) >= data.SENTIMENT_THRESHOLD]
    assert len(kept) == 10072


def test_lm_splits_are_contiguous_and_disjoint():
    text = data.english_text()
    assert "Project Gutenberg" not in text[:2000]
    assert "BOTCHAN" in text[:500]
    splits = data.lm_splits()
    words = {name: len(split.split()) for name, split in splits.items()}
    assert words["train"] > 15 * words["val"] and words["test"] > 0.8 * words["val"]
    assert splits["val"].splitlines()[0] not in splits["train"]


def test_unlabelled_sentiment_texts_stay_outside_every_split():
    texts = data.unlabelled_sentiment_texts()
    assert len(texts) == 3708 + 5190 + 4200 + 533  # three other sources + neutral movie snippets
    splits = data.sentiment_splits()
    assert not set(texts) & {t for split in splits.values() for t in split.texts}
