"""Generation: prompts, n-gram blocking, citations next to code, the checked LLM phrasing,
SmolLM2 end to end."""

from __future__ import annotations

import pytest
import torch
from test_serve_fixtures import TorchThreads, encoder, sample_index_dir

from dl2llm.rag import load_pipeline
from dl2llm.rag.choice import check_phrasing
from dl2llm.rag.evidence import Evidence
from dl2llm.rag.generate import (
    CONTEXT_PASSAGES,
    IDK,
    INSTRUCTION,
    AnswerNGramBlocker,
    LLMGenerator,
    build_messages,
    drop_unknown_citations,
    missing_citations,
    sentences_end,
    use_one_thread,
)
from dl2llm.rag.index import Index
from dl2llm.rag.pipeline import Prepared
from dl2llm.rag.retrieve import Hit

QUESTION = "What does functools.lru_cache do?"


def hit(n: int, text: str) -> Hit:
    return Hit(n, f"doc{n}.rst", f"doc{n}.rst", f"a{n}", f"Title {n}", text, 1.0 / n)


def test_prompt_numbers_the_passages():
    messages = build_messages("Why?", [hit(1, "First passage."), hit(2, "Second passage.")])
    assert messages == [
        {
            "role": "user",
            "content": "Question: Why?\n\nPassages:\n[1] First passage.\n\n[2] Second passage."
            f"\n\n{INSTRUCTION}",
        }
    ]
    assert IDK in INSTRUCTION and "[1]" in INSTRUCTION


def test_ngram_blocker_bans_only_repeats_of_the_answer():
    prompt = [7, 8, 9, 7, 8]  # "7 8 9" in the prompt may be quoted
    answer = [1, 2, 3, 1, 2]  # the answer already said "1 2 3"; "1 2" again -> not 3
    scores = torch.zeros(1, 10)
    out = AnswerNGramBlocker(len(prompt), n=3)(torch.tensor([prompt + answer]), scores)
    assert torch.isinf(out[0]).nonzero().flatten().tolist() == [3]
    quoting = AnswerNGramBlocker(len(prompt), n=3)(
        torch.tensor([prompt + [7, 8]]), torch.zeros(1, 10)
    )
    assert not torch.isinf(quoting).any()


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["See [1] and [4]."], "See 【1】 and ."),
        (["See [", "3", "] then [", "12", "]!"], "See 【3】 then !"),
        (["a [x] b [2"], "a [x] b [2"),
        (["[0][1][", "2]"], "【1】【2】"),
        (["Use sys.argv[0] [1] or lst[5]."], "Use sys.argv[0] 【1】 or lst[5]."),
        (["Index with x", "[", "2", "] and d['k'][3]"], "Index with x[2] and d['k'][3]"),
    ],
)
def test_citations_of_unseen_passages_are_dropped_and_code_survives(pieces, expected):
    assert "".join(drop_unknown_citations(pieces, passages=3)) == expected


def test_missing_citations_are_attributed_to_overlapping_passages():
    hits = [
        hit(1, "The lru_cache decorator caches the results of calls."),
        hit(2, "Windows executables are made with py2exe."),
        hit(3, "lru_cache takes maxsize and typed parameters for caching calls."),
    ]
    assert missing_citations("lru_cache caches calls with a maxsize.", hits) == " 【1】【3】"
    assert missing_citations("lru_cache caches calls 【2】.", hits) == ""
    assert missing_citations(IDK, hits) == ""
    assert missing_citations("Something unrelated entirely.", hits) == ""


@pytest.fixture(scope="module")
def pipeline():
    with TorchThreads():
        use_one_thread()  # as every service worker does
        index = Index.load(sample_index_dir())
        yield load_pipeline(index, encoder(), generator="previous", max_new_tokens=16)


def test_smollm2_streams_the_same_answer_greedy_generate_gives(pipeline):
    """End to end with the real SmolLM2: streamed pieces == one plain greedy ``generate``.

    The service decodes with prompt lookup and stops after two sentences; the
    reference is plain greedy decoding, cut after two sentences: the same text.
    """
    prepared = pipeline.prepare(QUESTION, k=5, mode="hybrid")
    assert not prepared.refused
    pieces = list(pipeline.stream(prepared, max_new_tokens=48))
    assert len(pieces) > 1
    generator = pipeline.generator
    inputs = generator.tokenizer.apply_chat_template(
        build_messages(QUESTION, prepared.hits[:CONTEXT_PASSAGES]),
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    prompt_length = inputs["input_ids"].shape[1]
    with torch.inference_mode():
        output = generator.model.generate(
            **inputs,
            max_new_tokens=48,
            do_sample=False,
            logits_processor=[AnswerNGramBlocker(prompt_length)],
            pad_token_id=generator.tokenizer.eos_token_id,
        )
    expected = generator.tokenizer.decode(output[0, prompt_length:], skip_special_tokens=True)
    expected = expected[: sentences_end(expected)]
    expected = "".join(drop_unknown_citations([expected], CONTEXT_PASSAGES))
    assert "".join(pieces) == expected + missing_citations(expected, prepared.hits)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two. Three.", "One. Two."),
        ("It caches [1]. It is fast. [2] More", "It caches [1]. It is fast. [2]"),
        ("It caches. [1] It is fast. [2][3]\nMore", "It caches. [1] It is fast. [2][3]"),
        ("Use e.g. sorted(). Or i.e. this! And more", "Use e.g. sorted(). Or i.e. this!"),
        ("Version 3.11 is out. Is it", None),  # the second sentence is not closed yet
        ("No end at all", None),
    ],
)
def test_answers_stop_after_two_sentences(text, expected):
    end = sentences_end(text + " ")
    assert (None if end is None else (text + " ")[:end]) == expected


def test_off_topic_question_is_refused_without_generating(pipeline):
    answer = pipeline.ask("What is the recipe for a margarita?", k=3)
    assert answer.refused and answer.text == IDK
    assert answer.confidence < pipeline.min_confidence
    assert answer.timings["generate_ms"] < 50


LRU = Hit(
    7,
    "library/functools.rst",
    "library/functools.rst",
    "functools.lru_cache",
    "functools > lru_cache(user_function) / lru_cache(maxsize=128, typed=False)",
    "If maxsize is set to None, the LRU feature is disabled and the cache can grow without bound.",
    1.0,
)
LRU_EVIDENCE = [Evidence(1, LRU, LRU.text, 0.8)]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Set maxsize to None in lru_cache so the cache can grow without bound.", None),
        ("The answer to the question in one sentence using only the evidence above is:", "echo"),
        ("[1]\n[2]\n[3]\n[xi]\n[li]", "marker_soup"),
        ("Use the cachetools.TTLCache class to limit the cache.", "unsupported"),
        ("If the cache is set to None, the feature is disabled.", "names no API of the evidence"),
        ("I don't know.", "refused"),
    ],
)
def test_check_phrasing_accepts_only_supported_text_naming_the_api(text, reason):
    assert check_phrasing(text, LRU_EVIDENCE) == reason


class ScriptedLLM(LLMGenerator):
    """The real generator class with ``generate`` replaced by a fixed reply."""

    def __init__(self, reply: str):
        self.reply, self.style, self.uses_evidence, self.rejections = reply, "evidence", True, {}
        self.changed_lead = 0

    def generate(self, messages, max_new_tokens=None, sentences=2, stop=None):
        yield self.reply


def prepared_with(evidence) -> Prepared:
    return Prepared("How do I make lru_cache unbounded?", [LRU], 0.7, False, 1.0, evidence)


def test_a_checked_phrasing_leads_and_the_evidence_follows():
    reply = "Set maxsize to None in lru_cache so the cache can grow without bound."
    answer = "".join(ScriptedLLM(reply).stream(prepared_with(LRU_EVIDENCE)))
    assert answer.startswith(reply + " 【1】\n\n`functools.lru_cache(user_function)`")
    assert answer.endswith("grow without bound. 【1】")


def test_a_failed_check_falls_back_to_the_evidence_alone():
    llm = ScriptedLLM("Use the cachetools.TTLCache class for this.")
    answer = "".join(llm.stream(prepared_with(LRU_EVIDENCE)))
    assert answer.startswith("`functools.lru_cache(user_function)` or ")
    assert "cachetools" not in answer and llm.rejections == {"unsupported": 1}
    assert "".join(llm.stream(prepared_with([]))) == IDK


CACHE = Hit(
    8,
    "library/functools.rst",
    "library/functools.rst",
    "functools.cache",
    "functools > cache(user_function)",
    "Simple lightweight unbounded function cache.",
    1.0,
)
TWO_ENTRIES = [Evidence(1, CACHE, CACHE.text, 0.9), Evidence(2, LRU, LRU.text, 0.8)]


def test_the_entry_the_model_names_leads_the_answer():
    reply = "Set maxsize to None in lru_cache so the cache can grow without bound."
    llm = ScriptedLLM(reply)
    answer = "".join(llm.stream(prepared_with(TWO_ENTRIES)))
    assert answer.startswith(reply + " 【2】\n\n`functools.lru_cache(user_function)`")
    assert "See also: `functools.cache(user_function)` 【1】" in answer
    assert llm.changed_lead == 1


def test_a_reply_that_restates_its_entry_is_not_shown_twice():
    reply = "`functools.lru_cache(user_function)`: " + LRU.text
    llm = ScriptedLLM(reply)
    answer = "".join(llm.stream(prepared_with(TWO_ENTRIES)))
    assert answer.startswith("`functools.lru_cache(user_function)` or ")
    assert answer.count("grow without bound") == 1 and llm.changed_lead == 1
    kept = ScriptedLLM("`functools.cache(user_function)`: " + CACHE.text)
    answer = "".join(kept.stream(prepared_with(TWO_ENTRIES)))
    assert answer.startswith("`functools.cache(user_function)`: Simple") and kept.changed_lead == 0
