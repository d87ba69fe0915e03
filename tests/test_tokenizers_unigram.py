"""Unigram LM from scratch against sentencepiece (Viterbi, forward-backward, EM training)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from dl2llm.assets import asset_file
from dl2llm.data import english_text
from dl2llm.tokenizers import reference
from dl2llm.tokenizers.unigram import (
    UnigramTokenizer,
    expected_counts,
    is_valid_piece,
    split_words,
    viterbi,
)

TOY = {"▁": -3.0, "a": -2.0, "b": -2.5, "ab": -2.2, "▁a": -2.4, "▁ab": -4.0, "ba": -3.5}


def _segmentations(word: str, vocab: dict[str, float]):
    """Every way to cut ``word`` into vocabulary pieces (brute force)."""
    if not word:
        yield []
        return
    for end in range(1, len(word) + 1):
        if word[:end] in vocab:
            for rest in _segmentations(word[end:], vocab):
                yield [word[:end], *rest]


@pytest.fixture(scope="module")
def botchan_model():
    import sentencepiece as spm

    return spm.SentencePieceProcessor(
        model_file=str(asset_file("english-text", "botchan_en_unigram_1000.model"))
    )


def test_docstring_rules():
    assert split_words("Hello  world.\n") == ["▁Hello", "▁world."]
    assert is_valid_piece("▁the") and is_valid_piece("...")
    assert not is_valid_piece("the▁") and not is_valid_piece("it's")
    assert not is_valid_piece("a1") and not is_valid_piece("x" * 17)


@pytest.mark.parametrize("word", ["▁abab", "▁ababa", "▁baab", "▁a"])
def test_viterbi_finds_the_most_probable_segmentation(word):
    paths = list(_segmentations(word, TOY))
    best = max(paths, key=lambda path: sum(TOY[p] for p in path))
    assert [piece for piece, _ in viterbi(word, TOY, 16, -20.0)] == best


@pytest.mark.parametrize("word", ["▁abab", "▁ababa", "▁baab"])
def test_forward_backward_matches_brute_force_posteriors(word):
    paths = list(_segmentations(word, TOY))
    weights = [math.exp(sum(TOY[p] for p in path)) for path in paths]
    total = sum(weights)
    brute: Counter[str] = Counter()
    for path, weight in zip(paths, weights, strict=True):
        for piece in path:
            brute[piece] += 3 * weight / total
    expected: dict[str, float] = {}
    log_z = expected_counts(word, 3, TOY, 16, -20.0, expected)
    assert log_z == pytest.approx(math.log(total), rel=1e-12)
    assert expected.keys() == {p for p, c in brute.items() if c > 0}
    for piece, count in brute.items():
        assert expected[piece] == pytest.approx(count, rel=1e-9)


def test_viterbi_with_sentencepiece_scores_gives_sentencepiece_ids(botchan_model):
    sp = botchan_model
    scores = {
        sp.id_to_piece(i): sp.get_score(i)
        for i in range(sp.get_piece_size())
        if not (sp.is_unknown(i) or sp.is_control(i))
    }
    ours = UnigramTokenizer(scores)
    words = Counter(split_words(english_text()))
    different = []
    for word in words:
        mine = [sp.piece_to_id(piece) for piece in ours.segment(word)]
        if mine != sp.encode(word[1:]):
            different.append(word)
    # sentencepiece sums scores in float32; we use float64. Exact ties can then
    # break differently, so allow 0.1% of the distinct words, each with the same score.
    assert len(different) <= 0.001 * len(words)
    for word in different:
        theirs = sp.encode(word[1:], out_type=str)
        assert sum(scores[p] for p in ours.segment(word)) == pytest.approx(
            sum(scores[p] for p in theirs), abs=1e-4
        )


def test_unknown_characters_become_one_unk(botchan_model):
    sp = botchan_model
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(3, sp.get_piece_size())}
    ours = UnigramTokenizer(scores)
    assert ours.segment("▁99") == ["▁", "<unk>"]
    assert [sp.piece_to_id(p) for p in ours.tokenize("99 1919")] == sp.encode("99 1919")


def test_training_is_close_to_sentencepiece():
    lines = [line for line in english_text().splitlines() if line.strip()][:1200]
    ours = UnigramTokenizer.train(lines, 500)
    sp = reference.train_sentencepiece(lines, 500)
    assert ours.vocab_size == sp.get_piece_size() == 500
    held_out = "\n".join([line for line in english_text().splitlines() if line.strip()][-400:])
    close = reference.compare_with_sentencepiece(ours, sp, held_out)
    assert close["vocab_overlap"] >= 0.80
    assert close["segmentation_agreement"] >= 0.75
    assert abs(close["token_ratio"] - 1) <= 0.05  # compression within 5% of sentencepiece


def test_save_load_and_decode(tmp_path):
    text = english_text()[:30_000]
    tok = UnigramTokenizer.train(text, 200)
    loaded = UnigramTokenizer.load(tok.save(tmp_path / "unigram.json"))
    sample = "He said so, and then he laughed."
    assert loaded.encode(sample) == tok.encode(sample)
    assert tok.decode(tok.encode(sample)) == sample


def test_vocab_smaller_than_the_alphabet_is_refused():
    with pytest.raises(ValueError, match="vocab_size 20 is too small"):
        UnigramTokenizer.train("the quick brown fox jumps over the lazy dog", 20)
