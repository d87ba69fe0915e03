"""What the OpenAI chat API asks of a question-answering service, beyond the question.

Clients written for OpenAI (the ``openai`` SDK, LangChain, ...) send more than
a question: the whole conversation, a system prompt, ``stop`` sequences, a
``seed``, ``stream_options``, and fields of other vendors. This module turns
that into what the RAG pipeline needs and back into OpenAI's shapes:

- :func:`conversation_question` -- the question to retrieve for. A follow-up
  ("and how do I make it unbounded?") names nothing to search for, so it is
  read together with the user's previous question, the simplest form of
  conversational query rewriting (concatenating the history is the baseline
  of Vakulenko et al., 2021, "Question Rewriting for Conversational Question
  Answering").
- :func:`cut_at_stop` -- the answer up to the first ``stop`` sequence, with
  ``finish_reason`` ``"stop"``; ``"length"`` when ``max_tokens`` cut it.
- :func:`usage` -- real token counts, with the served model's tokenizer;
  :class:`ChatAnswer` applies all of this to one answer as it streams.
- :func:`openai_error` -- errors as ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dl2llm.rag.bm25 import tokenize

if TYPE_CHECKING:
    from dl2llm.rag.pipeline import Prepared, RAGPipeline
    from dl2llm.serve.schemas import ChatRequest

FOLLOW_UP_WORDS = 4  # a question with fewer content words than this leans on the last one
_REFERS_BACK = re.compile(
    r"^\s*(?:and|also|but|so|then|what about|how about)\b|\b(?:it|its|that|this|those|these|"
    r"them|one|ones|same|there|the former|the latter)\b",
    re.IGNORECASE,
)
OPENAI_PATHS = ("/v1/chat/", "/v1/models")  # errors there have OpenAI's shape
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}


def message_text(content: str | Sequence[dict] | None) -> str:
    """The text of a message's ``content``: a string, or OpenAI's list of parts.

    >>> message_text([{"type": "text", "text": "How do I"}, {"type": "text", "text": "sort?"}])
    'How do I sort?'
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if part.get("type") == "text")


def is_follow_up(question: str) -> bool:
    """Does ``question`` lean on an earlier one (few content words, or it refers back)?

    >>> is_follow_up("and how do I make it unbounded?"), is_follow_up("How do I sort a dict?")
    (True, False)
    """
    return len(tokenize(question)) < FOLLOW_UP_WORDS or bool(_REFERS_BACK.search(question))


def conversation_question(turns: Sequence[tuple[str, str]]) -> str:
    """The question to answer from ``(role, text)`` turns: the last user turn, read with the
    user's previous turn when it is a follow-up.

    >>> conversation_question([("user", "What does functools.lru_cache do?"),
    ...     ("assistant", "It memoizes."), ("user", "How do I make it unbounded?")])
    'What does functools.lru_cache do? How do I make it unbounded?'
    """
    asked = [text.strip() for role, text in turns if role == "user" and text.strip()]
    if len(asked) > 1 and is_follow_up(asked[-1]):
        return f"{asked[-2]} {asked[-1]}"
    return asked[-1]


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``(text up to the first stop sequence, whether one was found)``.

    >>> cut_at_stop("One. Two. Three.", ["Two", "Three"])
    ('One. ', True)
    """
    ends = [text.find(s) for s in stop if s and s in text]
    return (text[: min(ends)], True) if ends else (text, False)


def token_count(tokenizer, text: str) -> int:
    """How many tokens ``tokenizer`` (a Hugging Face tokenizer) makes of ``text``."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


def usage(tokenizer, prompt: str, completion: str) -> dict[str, int]:
    """OpenAI's ``usage`` object, counted with ``tokenizer``."""
    prompt_tokens, completion_tokens = (
        token_count(tokenizer, prompt),
        token_count(tokenizer, completion),
    )
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def openai_error(status: int, message: str, param: str | None = None) -> dict:
    """An error body in OpenAI's shape (the SDK reads ``error.message``)."""
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def error_body(path: str, status: int, message: str) -> dict:
    """The error body for a request to ``path``: OpenAI's shape on its paths, else flat."""
    return openai_error(status, message) if path.startswith(OPENAI_PATHS) else {"error": message}


@dataclass
class ChatAnswer:
    """One chat completion as it is produced: text so far, why it ended, token counts."""

    rag: RAGPipeline
    request: ChatRequest
    prepared: Prepared
    text: str = ""
    finish_reason: str = "stop"

    @property
    def tokenizer(self):
        """The served model's tokenizer, or the encoder's when no language model is served."""
        generator = self.rag.generator
        return getattr(generator, "tokenizer", None) or self.rag.retriever.encoder.model.tokenizer

    def pieces(self) -> Iterator[str]:
        """The answer's pieces, cut at a stop sequence or at the token limit."""
        limit, stops = self.request.token_limit, self.request.stop
        for piece in self.rag.stream(self.prepared, limit):
            candidate, stopped = cut_at_stop(self.text + piece, stops)
            if limit is not None and token_count(self.tokenizer, candidate) > limit:
                candidate, stopped = self._fit(candidate, limit), False
                self.finish_reason = "length"
            if len(candidate) > len(self.text):
                yield candidate[len(self.text) :]
            self.text = candidate
            if stopped or self.finish_reason == "length":
                return

    def _fit(self, text: str, limit: int) -> str:
        """The longest start of ``text`` that is ``limit`` tokens (by the tokens' offsets)."""
        spans = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return text[: spans["offset_mapping"][limit - 1][1]]

    def usage(self) -> dict[str, int]:
        """OpenAI's ``usage``: the messages as the prompt, the answer as the completion."""
        prompt = "\n".join(m.text for m in self.request.messages)
        return usage(self.tokenizer, prompt, self.text.strip())
