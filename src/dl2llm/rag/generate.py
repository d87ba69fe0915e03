"""Grounded generation: numbered passages in, an answer with citations out.

The generator sees only what retrieval found. The prompt numbers the passages
``[1] ... [n]`` and asks the model to answer from them, cite them as ``[1]``,
and say "I don't know" when they do not hold the answer (the recipe of Lewis et
al., 2020, with the citation format of Nakano et al., 2021, "WebGPT"). The
offline model, SmolLM2-135M-Instruct, is small: it is fluent but often wrong, it
loops under greedy decoding, and every prompt token costs time on a CPU. So we
keep the prompt to a few trimmed passages, decode greedily, forbid repeating an
n-gram of the answer itself (quoting the passages stays allowed), cite for it
when it forgets to (:func:`missing_citations`), and stream tokens as they come
so a reader sees progress at once.

Two things make an answer fast on a laptop CPU without changing a single
token of it. The answer stops after its second sentence (the prompt asks for
one or two; the small model otherwise rambles on to the token limit,
:func:`sentences_end`). And decoding uses prompt lookup (Saxena, 2023,
"Prompt Lookup Decoding"; ``prompt_lookup_num_tokens`` in ``generate``): a
grounded answer quotes its passages, so the tokens that followed the last few
generated tokens in the prompt are proposed as a draft and checked in one
forward pass; greedy decoding keeps exactly the tokens it would have chosen
anyway, often several per pass. (int8 weights were faster still, but made the
135M model stop quoting and start inventing, so we keep fp32.)

:class:`ExtractiveGenerator` answers without a language model: the passage
sentence that shares most words with the question, cited. It is the baseline
an LLM answer has to beat, and lets the service run where no LLM fits.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from dl2llm.rag.index import tokenize
from dl2llm.rag.retrieve import Hit

IDK = "I don't know."
INSTRUCTION = (
    "Answer the question in one or two sentences using only the passages above, and cite "
    f'the passage you used like [1]. If they do not answer it, say "{IDK}"'
)
CONTEXT_PASSAGES = 3
PASSAGE_WORDS = 80
NO_REPEAT_NGRAM = 4
MAX_SENTENCES = 2
PROMPT_LOOKUP_TOKENS = 10
# A sentence ends at . ! or ? (then any citations) before whitespace; "e.g." and "i.e." do not.
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.!?](?:\s*\[\d+\])*(?=\s)")


def use_one_thread() -> None:
    """One intra-op thread per worker: small matmuls and FAISS queries run fastest so."""
    import faiss

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)


def trim(text: str, words: int = PASSAGE_WORDS) -> str:
    """The first ``words`` words of ``text`` (with an ellipsis when cut)."""
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


def sentences_end(text: str, sentences: int = MAX_SENTENCES) -> int | None:
    """Where ``text``'s ``sentences``-th complete sentence ends, or None if it has fewer.

    >>> text = "It caches results. [1] It is fast. More"
    >>> text[: sentences_end(text, 2)]
    'It caches results. [1] It is fast.'
    >>> sentences_end("Use sorted(), e.g. with a key.", 1) is None
    True
    """
    ends = [match.end() for match in _SENTENCE_END.finditer(text)]
    return ends[sentences - 1] if len(ends) >= sentences else None


def build_messages(question: str, hits: Sequence[Hit]) -> list[dict[str, str]]:
    """The grounded prompt: the question, the numbered passages, then the instruction.

    One user turn, question first and instruction last, worked best for
    SmolLM2-135M: with a system prompt it ignored the passages and invented
    answers; this way it quotes them and cites their numbers.
    """
    passages = "\n\n".join(f"[{n}] {trim(hit.text)}" for n, hit in enumerate(hits, start=1))
    content = f"Question: {question}\n\nPassages:\n{passages}\n\n{INSTRUCTION}"
    return [{"role": "user", "content": content}]


class AnswerNGramBlocker:
    """A ``LogitsProcessor``: forbid a token that would repeat an n-gram of the answer.

    Unlike ``no_repeat_ngram_size`` this ignores the prompt, so the answer may
    quote the passages word for word but cannot loop on itself.
    """

    def __init__(self, prompt_length: int, n: int = NO_REPEAT_NGRAM):
        self.prompt_length, self.n = prompt_length, n

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        n = self.n
        for row, ids in enumerate(input_ids[:, self.prompt_length :].tolist()):  # (B, T_new)
            if len(ids) < n:
                continue
            prefix = ids[len(ids) - n + 1 :]
            banned = [
                ids[i + n - 1] for i in range(len(ids) - n + 1) if ids[i : i + n - 1] == prefix
            ]
            scores[row, banned] = float("-inf")
        return scores


class _Cancelled:
    """A ``StoppingCriteria`` that stops generation once ``event`` is set."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)


class LLMGenerator:
    """SmolLM2-135M-Instruct (or any chat model) answering from passages, streamed."""

    def __init__(
        self,
        model,
        tokenizer,
        max_new_tokens: int = 128,
        prompt_lookup_tokens: int | None = PROMPT_LOOKUP_TOKENS,
    ):
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens = max_new_tokens
        self.prompt_lookup_tokens = prompt_lookup_tokens  # None: plain greedy decoding
        self.name = Path(getattr(model.config, "_name_or_path", "llm")).name or "llm"
        self._lock = threading.Lock()  # one generation at a time per worker

    @classmethod
    def load(
        cls,
        name_or_path: str | Path | None = None,
        max_new_tokens: int = 128,
        adapter: str | Path | None = None,
    ):
        """Load through :func:`dl2llm.models.load_llm` (offline SmolLM2 by default).

        ``adapter``: a LoRA file from :func:`dl2llm.finetune.lora.save_lora`, merged in.
        """
        from dl2llm.finetune.lora import load_lora, merge_lora
        from dl2llm.models import load_llm

        model, tokenizer = load_llm(name_or_path)
        if adapter is not None:
            load_lora(model, adapter)
            merge_lora(model)
        return cls(model, tokenizer, max_new_tokens)

    def stream(
        self, question: str, hits: Sequence[Hit], max_new_tokens: int | None = None
    ) -> Iterator[str]:
        """Yield the answer's text piece by piece, up to the end of its second sentence.

        Generation stops there (or at the token limit); closing the iterator stops it too.
        """
        from transformers import LogitsProcessorList, StoppingCriteriaList, TextIteratorStreamer

        inputs = self.tokenizer.apply_chat_template(
            build_messages(question, hits[:CONTEXT_PASSAGES]),
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        prompt_length = inputs["input_ids"].shape[1]
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()
        settings = dict(
            **inputs,
            streamer=streamer,
            max_new_tokens=max_new_tokens or self.max_new_tokens,
            do_sample=False,
            prompt_lookup_num_tokens=self.prompt_lookup_tokens,
            logits_processor=LogitsProcessorList([AnswerNGramBlocker(prompt_length)]),
            stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]),
            pad_token_id=self.tokenizer.eos_token_id,
        )
        worker = threading.Thread(target=self._generate, kwargs=settings, daemon=True)
        worker.start()
        try:
            text = ""
            for piece in streamer:
                end = sentences_end(text + piece)
                if end is not None:
                    yield piece[: end - len(text)]
                    return
                text += piece
                yield piece
        finally:
            cancel.set()
            worker.join()

    def _generate(self, **settings) -> None:
        with self._lock, torch.inference_mode():
            self.model.generate(**settings)


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_CITATION = re.compile(r"\[\d+\]")
MIN_SHARED_TERMS = 3


def drop_unknown_citations(pieces: Iterable[str], passages: int) -> Iterator[str]:
    """Stream ``pieces`` without citations of passages the model never saw.

    The prompt shows ``passages`` passages; a small model still writes ``[4]``
    or ``[5]``. Text from a ``[`` is held back until the bracket closes (or
    cannot be a citation), then passed on unless it cites a number out of range.
    """
    held = ""
    for piece in pieces:
        held += piece
        while held:
            start = held.find("[")
            if start < 0:
                yield held
                held = ""
            elif start > 0:
                yield held[:start]
                held = held[start:]
            elif match := re.match(r"\[(\d+)\]", held):
                if 1 <= int(match.group(1)) <= passages:
                    yield match.group(0)
                held = held[match.end() :]
            elif re.fullmatch(r"\[\d*", held):
                break  # maybe a citation: wait for more text
            else:
                yield held[0]
                held = held[1:]
    if held:
        yield held


def missing_citations(answer: str, hits: Sequence[Hit], most: int = 2) -> str:
    """Citations for an answer that has none: the passages it shares most terms with.

    Post-hoc attribution (Gao et al., 2023, "Enabling Large Language Models to
    Generate Text with Citations"): a small model often forgets to cite, so we
    cite for it -- up to ``most`` passages sharing at least ``MIN_SHARED_TERMS``
    content words with the answer, best first, as ``" [2][1]"``. Returns ``""``
    when the answer already cites, refuses, or matches no passage.
    """
    if _CITATION.search(answer) or answer.strip() == IDK:
        return ""
    terms = set(tokenize(answer))
    shared = [
        (len(terms & set(tokenize(hit.text))), -n, n)
        for n, hit in enumerate(hits[:CONTEXT_PASSAGES], start=1)
    ]
    cited = [n for overlap, _, n in sorted(shared, reverse=True) if overlap >= MIN_SHARED_TERMS]
    return " " + "".join(f"[{n}]" for n in cited[:most]) if cited else ""


class ExtractiveGenerator:
    """No LLM: answer with the passage sentence that best overlaps the question, cited."""

    name = "extractive"

    def __init__(self, max_new_tokens: int = 128):
        self.max_new_tokens = max_new_tokens

    def stream(
        self, question: str, hits: Sequence[Hit], max_new_tokens: int | None = None
    ) -> Iterator[str]:
        """Yield the chosen sentence word by word, then its citation."""
        if not hits:
            yield IDK
            return
        wanted = set(tokenize(question))
        candidates = [
            (len(wanted & set(tokenize(sentence))), -n, sentence, n)
            for n, hit in enumerate(hits[:CONTEXT_PASSAGES], start=1)
            for sentence in _SENTENCE.split(hit.text)
        ]
        _, _, sentence, source = max(candidates)
        words = sentence.split()[: max_new_tokens or self.max_new_tokens]
        for position, word in enumerate(words):
            yield word if position == 0 else f" {word}"
        yield f" [{source}]"
