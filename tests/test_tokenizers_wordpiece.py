"""WordPiece from scratch against BertTokenizerFast (MiniLM's uncased vocab.txt)."""

from __future__ import annotations

import math
from collections import Counter
from itertools import pairwise

import pytest

from dl2llm.assets import asset_file
from dl2llm.data import english_text, sentiment_records
from dl2llm.tokenizers import reference
from dl2llm.tokenizers.wordpiece import (
    WordPieceTokenizer,
    bert_normalize,
    bert_pre_tokenize,
    learn_wordpiece_merges,
    split_word,
)

HARD_CASES = [
    "Héllo\tWORLD\x00! Naïve café, résumé.",  # lowercasing, accents, controls
    "unaffable supercalifragilisticexpialidocious",  # long words split into ##pieces
    "日本語のテキスト 野口里佳 Noguchi Rika",  # CJK ideographs become single words
    "e-mail: a@b.com $100 ~tilde~ ^_^ «quotes» — dash, (parens) [brackets] {braces}",
    "🤖👍🏽 emoji \u200b zero\u00a0width İstanbul ß ﬁ",  # [UNK], NBSP, special lowercase
    "ǅ Ⅻ ½ \x0b\x0c\x1c\x85 \ufffd end\r\nnext",  # controls dropped, odd whitespace
    "x" * 100 + " " + "x" * 101 + " ok",  # the 100-character rule
    "don't can't it's  I'M   SHOUTING!!!",
    "",
]


@pytest.fixture(scope="module")
def vocab_file():
    return asset_file("minilm", "vocab.txt")


@pytest.fixture(scope="module")
def ours(vocab_file) -> WordPieceTokenizer:
    return WordPieceTokenizer.from_vocab_file(vocab_file)


@pytest.fixture(scope="module")
def bert(vocab_file):
    return reference.bert_tokenizer_fast(vocab_file)


@pytest.mark.parametrize("text", HARD_CASES)
def test_same_ids_as_bert_tokenizer_fast(ours, bert, text):
    assert ours.encode(text) == bert(text)["input_ids"]


def test_same_ids_on_thousands_of_real_sentences(ours, bert):
    texts = [text for text, _ in sentiment_records()[:3000]]
    texts += english_text()[:60_000].splitlines()
    mismatches = [t for t in texts if ours.encode(t) != bert(t)["input_ids"]]
    assert mismatches == []


def test_normalization_and_pre_tokenization_rules():
    assert bert_normalize("Héllo\tWORLD\x00!") == "hello world!"
    assert bert_normalize("Héllo", lowercase=False) == "Héllo"
    assert bert_normalize("野口") == " 野  口 "
    assert bert_pre_tokenize("a,b c$d") == ["a", ",", "b", "c", "$", "d"]


def test_greedy_longest_match_and_unknown_rules(ours):
    assert split_word("unaffable", ours.vocab) == ["una", "##ffa", "##ble"]
    assert split_word("x" * 101, ours.vocab) == ["[UNK]"]
    assert split_word("ok🤖", ours.vocab) == ["[UNK]"]  # one unmatched part: the whole word
    assert ours.tokenize("Tokenization!") == ["token", "##ization", "!"]
    assert ours.decode(ours.encode("Tokenization!", add_special_tokens=False)) == "tokenization !"


@pytest.mark.parametrize(("criterion", "first"), [("likelihood", "##ug"), ("ratio", "##gs")])
def test_the_criterion_decides_the_first_merge(criterion, first):
    corpus = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}
    words = [[w[0], *("##" + c for c in w[1:])] for w in corpus]
    assert learn_wordpiece_merges(words, list(corpus.values()), 1, criterion) == [first]


def _naive_wordpiece(words: list[list[str]], weights: list[int], n: int, criterion) -> list[str]:
    """Recount every pair and symbol and rescore everything after every merge."""
    words = [list(w) for w in words]
    tokens = []
    for _ in range(n):
        symbols, pairs = Counter(), Counter()
        for word, weight in zip(words, weights, strict=True):
            for s in word:
                symbols[s] += weight
            for p in pairwise(word):
                pairs[p] += weight
        if not pairs:
            break
        total = sum(symbols.values())

        def score(p, symbols=symbols, pairs=pairs, total=total):
            a, b = symbols[p[0]], symbols[p[1]]
            if criterion == "ratio":
                return pairs[p] / (a * b)
            return pairs[p] * math.log(pairs[p] * total / (a * b))

        best = min(pairs, key=lambda p: (-score(p), p))
        token = best[0] + best[1].removeprefix("##")
        tokens.append(token)
        for i, word in enumerate(words):
            merged, j = [], 0
            while j < len(word):
                if tuple(word[j : j + 2]) == best:
                    merged.append(token)
                    j += 2
                else:
                    merged.append(word[j])
                    j += 1
            words[i] = merged
    return tokens


@pytest.mark.parametrize("criterion", ["likelihood", "ratio"])
def test_incremental_training_equals_rescoring_every_step(criterion):
    counts = Counter(bert_pre_tokenize(bert_normalize(english_text()[:15_000])))
    words = [[w[0], *("##" + c for c in w[1:])] for w in counts]
    expected = _naive_wordpiece(words, list(counts.values()), 150, criterion)
    assert learn_wordpiece_merges(words, list(counts.values()), 150, criterion) == expected


def test_trained_vocab_gives_the_same_ids_in_bert_tokenizer_fast(tmp_path):
    text = english_text()
    tok = WordPieceTokenizer.train(text[:80_000], 600)
    assert tok.vocab_size == 600
    assert list(tok.vocab)[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    bert = reference.bert_tokenizer_fast(tok.save(tmp_path / "vocab.txt"))
    held_out = text[-20_000:].splitlines()
    assert [tok.encode(t) for t in held_out] == [bert(t)["input_ids"] for t in held_out]


def test_vocab_smaller_than_the_alphabet_is_refused():
    with pytest.raises(ValueError, match="smaller than the 5 special tokens plus"):
        WordPieceTokenizer.train("the quick brown fox jumps over the lazy dog", 20)
    with pytest.raises(ValueError, match="no unknown token"):
        WordPieceTokenizer({"a": 0})
    with pytest.raises(ValueError, match="criterion must be one of"):
        WordPieceTokenizer.train("some text here", 100, criterion="frequency")
