"""Byte-level BPE from scratch against tiktoken (GPT-2 ranks) and Hugging Face tokenizers."""

from __future__ import annotations

import random

import pytest

from dl2llm.assets import asset_file
from dl2llm.data import english_text
from dl2llm.models import GPT2_EOT, GPT2_EOT_ID, load_gpt2_tokenizer
from dl2llm.tokenizers import reference
from dl2llm.tokenizers.bpe import (
    ByteBPETokenizer,
    count_pieces,
    learn_merges,
    learn_merges_simple,
    merge_pair,
    pair_counts,
)

VARIED_CORPUS = [
    "Hello world, tokenization!",
    "It's 3:45pm; we'll re-run   the    tests\n\n\n   tomorrow.\t\tOK?",
    "def merge(ids, pair, idx):\n    out = []\n    for i in range(len(ids)):\n        pass\n",
    "    leading spaces\n\ttabs\r\nwindows line\r\n   \n",
    "Naïve café, Zürich, São Paulo, Ελληνικά, русский, 日本語のテキスト, 한국어, العربية",
    "emoji 🤖👍🏽 family 👨‍👩‍👧‍👦 flags 🇯🇵 and ZWJ sequences",
    "invalid-looking \x00\x01\x7f\x80\xff\ufffd\ufeff bytes \udcff and lone \ud800 surrogates",
    "numbers 1234567890 3.14159 1e-10 0xDEADBEEF ½ ² Ⅻ",
    "CAPS 'S 'LL ’s curly quotes “quoted” — dashes – and … ellipsis",
    "   ",
    "",
    "a" * 300 + " " + "ab" * 100,
]


@pytest.fixture(scope="module")
def gpt2() -> ByteBPETokenizer:
    return ByteBPETokenizer.from_tiktoken_file(
        asset_file("gpt2-bpe", "gpt2.tiktoken"), {GPT2_EOT: GPT2_EOT_ID}
    )


@pytest.fixture(scope="module")
def tiktoken_gpt2():
    return load_gpt2_tokenizer()


def test_docstring_examples():
    assert pair_counts([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge_pair([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert merge_pair([1, 1, 1], (1, 1), 9) == [9, 1]


@pytest.mark.parametrize("text", VARIED_CORPUS)
def test_gpt2_ranks_give_tiktoken_ids(gpt2, tiktoken_gpt2, text):
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)


def test_gpt2_ranks_give_tiktoken_ids_on_a_novel(gpt2, tiktoken_gpt2):
    text = english_text()[:60_000]
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)
    assert gpt2.decode(gpt2.encode_ordinary(text)) == text


# Characters that stress the regex and the merges: spaces of every kind, apostrophes,
# digits, letters of several scripts, combining marks, emoji parts, controls.
ALPHABET = (
    list(" \t\n\r\x0b\x0c\xa0\u2009\u3000'’sdmtlvre09_.,!?-")
    + [chr(c) for c in range(0x20, 0x7F)]
    + [
        "é",
        "ß",
        "Ω",
        "ж",
        "ק",
        "ع",
        "日",
        "本",
        "한",
        "\u0301",
        "\u200d",
        "🤖",
        "🏽",
        "\ufffd",
        "\x00",
    ]
)


def _random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(ALPHABET, k=rng.randint(0, 60))) for _ in range(n)]


def test_gpt2_ranks_match_tiktoken_on_random_text(gpt2, tiktoken_gpt2):
    for text in _random_texts(400):
        ids = gpt2.encode_ordinary(text)
        assert ids == tiktoken_gpt2.encode_ordinary(text), repr(text)
        assert gpt2.decode(ids) == text


def test_every_byte_string_round_trips(gpt2):
    rng = random.Random(0)
    samples = [bytes([b]) for b in range(256)]
    samples += [rng.randbytes(rng.randint(0, 200)) for _ in range(300)]
    for data in samples:
        assert gpt2.decode_bytes(gpt2.encode_bytes(data)) == data


def test_invalid_utf8_round_trips(gpt2):
    data = b"ok \xff\xfe\xc3( \xe2\x82 broken \xf0\x9f\x98 end"
    assert gpt2.decode_bytes(gpt2.encode_bytes(data)) == data
    assert gpt2.encode_bytes("valid text ü".encode()) == gpt2.encode_ordinary("valid text ü")


def test_special_tokens(gpt2, tiktoken_gpt2):
    text = f"first document{GPT2_EOT}second"
    ids = gpt2.encode(text, allowed_special={GPT2_EOT})
    assert ids == tiktoken_gpt2.encode(text, allowed_special={GPT2_EOT})
    assert GPT2_EOT_ID in ids
    assert gpt2.encode(text, allowed_special="all") == ids
    assert gpt2.encode(text, allowed_special=GPT2_EOT) == ids
    with pytest.raises(ValueError, match="not special tokens"):
        gpt2.encode(text, allowed_special={"<|fim|>"})
    assert gpt2.decode(ids) == text
    with pytest.raises(ValueError, match="special token"):
        gpt2.encode(text)
    assert gpt2.encode_ordinary(text) == tiktoken_gpt2.encode_ordinary(text)
    assert GPT2_EOT_ID not in gpt2.encode_ordinary(text)


def test_recovered_merges_drive_hugging_face_to_the_same_ids(gpt2, tiktoken_gpt2):
    hf = reference.hf_byte_bpe(gpt2)
    for text in [*VARIED_CORPUS[:6], english_text()[:20_000]]:
        assert hf.encode(text).ids == tiktoken_gpt2.encode_ordinary(text)


def test_the_fast_trainer_learns_the_reference_trainers_merges():
    pieces = count_pieces(english_text()[:8_000])
    assert learn_merges(pieces, 120) == learn_merges_simple(pieces, 120)
    assert learn_merges_simple({b"abab": 1}, 5) == [(97, 98), (256, 256)]  # the docstring's example


def test_training_learns_the_frequent_pairs_and_matches_hugging_face():
    text = english_text()[:40_000]
    ours = ByteBPETokenizer.train(text, 400)
    assert ours.vocab_size == 400
    assert b" the" in ours.ranks and b"th" in ours.ranks
    hf = reference.hf_train_byte_bpe(text.splitlines(), 400)
    overlap = len(set(ours.ranks) & reference.hf_token_bytes(hf)) / 400
    assert overlap >= 0.98  # ties between equal counts may be broken differently
    assert reference.hf_byte_bpe(ours).encode(text).ids == ours.encode(text)
    assert ours.decode(ours.encode(text)) == text


def test_special_tokens_get_the_last_ids():
    tok = ByteBPETokenizer.train("low lower lowest " * 20, 262, special_tokens=["<|eot|>"])
    assert tok.special_tokens == {"<|eot|>": 261}
    assert tok.encode("low<|eot|>", allowed_special="all")[-1] == 261


def test_save_and_load_round_trip(gpt2, tmp_path):
    tok = ByteBPETokenizer.train(english_text()[:20_000], 320, special_tokens=["<|eot|>"])
    loaded = ByteBPETokenizer.load(tok.save(tmp_path / "bpe.json"))
    text = english_text()[20_000:25_000] + "<|eot|>"
    assert loaded.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")
    assert loaded.ranks == tok.ranks and loaded.pattern == tok.pattern
    big = ByteBPETokenizer.load(gpt2.save(tmp_path / "gpt2.json"))
    assert big.encode_ordinary(VARIED_CORPUS[4]) == gpt2.encode_ordinary(VARIED_CORPUS[4])


def test_vocab_smaller_than_the_byte_alphabet_is_refused():
    with pytest.raises(ValueError, match=r"smaller than the byte alphabet \(256\)"):
        ByteBPETokenizer.train("some text", 200)
    with pytest.raises(ValueError, match="at least 258"):
        ByteBPETokenizer.train("some text", 257, special_tokens=["<a>", "<b>"])


def test_unknown_ids_and_wrong_files_are_refused(gpt2, tmp_path):
    with pytest.raises(ValueError, match="unknown token ids"):
        gpt2.decode([10, 99_999])
    wrong = tmp_path / "x.json"
    wrong.write_text('{"type": "unigram"}')
    with pytest.raises(ValueError, match="not a byte-level BPE"):
        ByteBPETokenizer.load(wrong)
