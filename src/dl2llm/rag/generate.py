"""Generation: an answer from the evidence, optionally phrased by a language model.

Three generators share one interface, ``stream(prepared, max_new_tokens)``
over a :class:`~dl2llm.rag.pipeline.Prepared` question:

- :class:`EvidenceGenerator` -- no language model: the API entry and the
  sentences that answer the question, cited (:mod:`dl2llm.rag.evidence`).
- :class:`LLMGenerator` with ``style="evidence"`` -- SmolLM2-135M-Instruct
  reads the question and the best sentence of each of the
  :data:`~dl2llm.rag.choice.EVIDENCE_ENTRIES` best API entries, and answers in one sentence that
  names the entry it chose (the prompt and the checks: :mod:`dl2llm.rag.choice`).
  :func:`~dl2llm.rag.choice.check_phrasing` asks whether that sentence
  names an API of the candidates, is supported by them and is not junk; if so,
  the chosen entry leads the evidence answer (the model re-ranks what the
  encoder found) and the model's sentence is shown above it unless it merely
  restates it. When the check fails, the reader gets the evidence alone: the
  model may help, never hurt. The LoRA adapter of
  ``capstone/fine_tuning_pipeline.py`` teaches the model this task.
- :class:`LLMGenerator` with ``style="passages"`` -- the previous system, kept
  as the baseline it is measured against: the model answers from the first
  80 words of three numbered passages (Lewis et al., 2020, with the citation
  format of Nakano et al., 2021, "WebGPT").

The 135M model is small: it loops under greedy decoding, so we forbid
repeating an n-gram of the answer itself (quoting the prompt stays allowed),
stop at the end of a sentence, and decode with prompt lookup (Saxena, 2023,
"Prompt Lookup Decoding"; ``prompt_lookup_num_tokens`` in ``generate``): an
answer that quotes its evidence gets several tokens per forward pass, the very
tokens greedy decoding would have chosen anyway.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

from dl2llm.hardware import available_cores
from dl2llm.rag.bm25 import tokenize
from dl2llm.rag.checks import MARKER, cite, strip_markers
from dl2llm.rag.choice import (
    build_evidence_messages,
    check_phrasing,
    evidence_candidates,
    named_candidate,
    promote,
    restates,
)
from dl2llm.rag.evidence import evidence_answer
from dl2llm.rag.retrieve import Hit

if TYPE_CHECKING:
    from dl2llm.rag.pipeline import Prepared

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


def load_model(name_or_path: str | Path | None = None, adapter: str | Path | None = None):
    """``(model, tokenizer)`` from :func:`dl2llm.models.load_llm`, with ``adapter`` (a LoRA
    file from :func:`dl2llm.finetune.lora.save_lora`) merged into the weights when given."""
    from dl2llm.finetune.lora import load_lora, merge_lora
    from dl2llm.models import load_llm

    model, tokenizer = load_llm(name_or_path)
    if adapter is not None:
        load_lora(model, adapter)
        merge_lora(model)
    return model, tokenizer


class GenerationError(RuntimeError):
    """The language model failed while answering (the stream still ends)."""


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
    """A ``StoppingCriteria`` that stops generation once any of ``events`` is set."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        stop = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool)


class Generator(Protocol):
    """What the pipeline needs of a generator."""

    name: str
    uses_evidence: bool  # does it need Prepared.evidence (else it is not computed)

    def stream(self, prepared: Prepared, max_new_tokens: int | None = None) -> Iterator[str]: ...


class EvidenceGenerator:
    """No language model: the evidence answer (:func:`~dl2llm.rag.evidence.evidence_answer`)."""

    name = "evidence"
    uses_evidence = True

    def __init__(self, max_new_tokens: int = 128):
        self.max_new_tokens = max_new_tokens

    def stream(self, prepared: Prepared, max_new_tokens: int | None = None) -> Iterator[str]:
        """The evidence answer word by word ("I don't know." when there is no evidence)."""
        yield from words(evidence_answer(prepared.evidence) or IDK)


def words(text: str) -> list[str]:
    """``text`` in stream pieces, one word with its leading space each.

    >>> words("See `f(x)` 【1】.")
    ['See', ' `f(x)`', ' 【1】.']
    """
    return re.findall(r"\s*\S+", text)


def first_sentences(pieces: Iterable[str], sentences: int) -> Iterator[str]:
    """``pieces`` of a reply until its ``sentences``-th sentence ends (the rest is not read)."""
    text = ""
    for piece in pieces:
        end = sentences_end(text + piece, sentences)
        if end is not None:
            yield piece[: end - len(text)]
            return
        text += piece
        yield piece


class LLMGenerator:
    """SmolLM2-135M-Instruct (or any chat model) answering from the evidence or passages."""

    def __init__(
        self,
        model,
        tokenizer,
        max_new_tokens: int = 128,
        prompt_lookup_tokens: int | None = PROMPT_LOOKUP_TOKENS,
        style: str = "evidence",
    ):
        if style not in STYLES:
            raise ValueError(f"unknown style '{style}' (use one of {', '.join(STYLES)})")
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens = max_new_tokens
        self.prompt_lookup_tokens = prompt_lookup_tokens  # None: plain greedy decoding
        self.style = style
        self.uses_evidence = style == "evidence"
        self.name = Path(getattr(model.config, "_name_or_path", "llm")).name or "llm"
        self.rejections: dict[str, int] = {}  # why phrasings were not shown, for /metrics
        self.changed_lead = 0  # answers led by another entry than the encoder's best
        # One generation per core at a time, each on one thread (use_one_thread): two
        # questions are answered at once on two cores, instead of one on both.
        self._slots = threading.BoundedSemaphore(available_cores())

    @classmethod
    def load(
        cls,
        name_or_path: str | Path | None = None,
        max_new_tokens: int = 128,
        adapter: str | Path | None = None,
        style: str = "evidence",
    ):
        """Load through :func:`load_model` (offline SmolLM2 by default, ``adapter`` merged in)."""
        model, tokenizer = load_model(name_or_path, adapter)
        return cls(model, tokenizer, max_new_tokens, style=style)

    def stream(self, prepared: Prepared, max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer in pieces: see the module's docstring for the two styles."""
        if self.style == "passages":
            yield from self._passages_answer(prepared, max_new_tokens)
            return
        if not prepared.evidence:
            yield IDK
            return
        candidates = evidence_candidates(prepared.evidence)
        messages = build_evidence_messages(prepared.question, candidates)
        generated = self.generate(messages, max_new_tokens, sentences=1, stop=prepared.cancel)
        text = "".join(generated).strip()
        reason = check_phrasing(text, candidates)
        if reason is not None:
            self.rejections[reason] = self.rejections.get(reason, 0) + 1
            yield from words(evidence_answer(prepared.evidence))
            return
        chosen = named_candidate(text, candidates) or candidates[0]
        self.changed_lead += chosen is not candidates[0]
        if not restates(text, chosen):
            yield from words(f"{strip_markers(text)} {cite(chosen.number)}")
            yield "\n\n"
        yield from words(evidence_answer(promote(prepared.evidence, chosen)))

    def _passages_answer(self, prepared: Prepared, max_new_tokens: int | None) -> Iterator[str]:
        """The previous system: numbered 80-word passages in, cited answer out."""
        hits = prepared.hits[:CONTEXT_PASSAGES]
        pieces = []
        messages = build_messages(prepared.question, hits)
        generated = self.generate(messages, max_new_tokens, stop=prepared.cancel)
        for piece in drop_unknown_citations(generated, len(hits)):
            pieces.append(piece)
            yield piece
        if suffix := missing_citations("".join(pieces), hits):
            yield suffix

    def generate(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int | None = None,
        sentences: int = MAX_SENTENCES,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield the reply to ``messages`` piece by piece, up to its ``sentences``-th sentence.

        Generation stops there (or at the token limit); closing the iterator stops
        it too, and so does setting ``stop`` (from another thread: a client that
        went away, a timeout) at the next token.
        """
        from transformers import LogitsProcessorList, StoppingCriteriaList, TextIteratorStreamer

        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
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
            stopping_criteria=StoppingCriteriaList([_Cancelled(cancel, stop or cancel)]),
            pad_token_id=self.tokenizer.eos_token_id,
        )
        failures: list[BaseException] = []
        worker = threading.Thread(
            target=self._generate, args=(failures,), kwargs=settings, daemon=True
        )
        worker.start()
        try:
            yield from first_sentences(streamer, sentences)
            if failures:
                raise GenerationError(f"generation failed: {failures[0]!r}") from failures[0]
        finally:
            cancel.set()
            worker.join()

    def _generate(self, failures: list[BaseException], **settings) -> None:
        """Run ``model.generate``; an error is kept for the reader and ends the stream."""
        try:
            with self._slots, torch.inference_mode():
                self.model.generate(**settings)
        except Exception as err:
            failures.append(err)
            settings["streamer"].end()


STYLES = ("evidence", "passages")
MIN_SHARED_TERMS = 3


def drop_unknown_citations(pieces: Iterable[str], passages: int) -> Iterator[str]:
    """Stream ``pieces`` with the model's ``[n]`` citations as ``【n】``, unseen ones dropped.

    The prompt shows ``passages`` passages; a small model still writes ``[4]``
    or ``[5]``. Text from a ``[`` is held back until the bracket closes (or
    cannot be a citation), then passed on. A ``[`` right after a name, a
    bracket or a quote is code (``argv[0]``, ``lst[5]``) and passes untouched.
    """
    held, before = "", ""  # text not passed on yet; the last character passed on
    for piece in pieces:
        held += piece
        while held:
            start = held.find("[")
            if start < 0:
                out, held = held, ""
            elif re.search(r"[\w\])}'\"]$", before + held[:start]):
                end = held.find("]", start)  # code: argv[0] passes untouched
                if end < 0:
                    break
                out, held = held[: end + 1], held[end + 1 :]
            elif start > 0:
                out, held = held[:start], held[start:]
            elif match := re.match(r"\[(\d+)\]", held):
                number = int(match.group(1))
                out, held = (cite(number) if 1 <= number <= passages else ""), held[match.end() :]
            elif re.fullmatch(r"\[\d*", held):
                break  # maybe a citation: wait for more text
            else:
                out, held = held[0], held[1:]
            if out:
                before = out[-1]
                yield out
    if held:
        yield held


def missing_citations(answer: str, hits: Sequence[Hit], most: int = 2) -> str:
    """Citations for an answer that has none: the passages it shares most terms with.

    Post-hoc attribution (Gao et al., 2023, "Enabling Large Language Models to
    Generate Text with Citations"): a small model often forgets to cite, so we
    cite for it -- up to ``most`` passages sharing at least ``MIN_SHARED_TERMS``
    content words with the answer, best first, as ``" 【2】【1】"``. Returns ``""``
    when the answer already cites, refuses, or matches no passage.
    """
    if MARKER.search(answer) or answer.strip() == IDK:
        return ""
    terms = set(tokenize(answer))
    shared = [
        (len(terms & set(tokenize(hit.text))), -n, n)
        for n, hit in enumerate(hits[:CONTEXT_PASSAGES], start=1)
    ]
    cited = [n for overlap, _, n in sorted(shared, reverse=True) if overlap >= MIN_SHARED_TERMS]
    return " " + "".join(cite(n) for n in cited[:most]) if cited else ""
