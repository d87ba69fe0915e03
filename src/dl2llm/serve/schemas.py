"""Request and response bodies of the HTTP API (pydantic models -> ``/openapi.json``).

Requests forbid unknown fields, so a typo (``"questoin"``) is a 422 that names
the field instead of a silently ignored setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dl2llm.rag.retrieve import MODES
from dl2llm.serve.chat import message_text

MAX_K = 20
MAX_QUESTION_CHARS = 2000
MAX_DOCUMENT_CHARS = 200_000

Mode = Literal["dense", "bm25", "hybrid"]
assert set(Mode.__args__) == set(MODES)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value.strip()


class AskRequest(BaseModel):
    """``POST /v1/ask``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the question")
    k: int = Field(5, ge=1, le=MAX_K, description="how many passages to retrieve")
    mode: Mode = Field("hybrid", description="retrieval: dense, bm25 or hybrid (RRF)")
    stream: bool = Field(False, description="answer as server-sent events (the web page does)")

    _question = field_validator("question")(_not_blank)


class Source(BaseModel):
    """A retrieved passage; the answer cites it as ``【n】`` by its position (from 1)."""

    title: str
    path: str = Field(description="relative to the corpus root, e.g. library/functools.rst")
    anchor: str
    url: str | None = Field(None, description="its page in the online documentation, if any")
    score: float
    text: str


class AskResponse(BaseModel):
    answer: str
    sources: list[Source]
    confidence: float = Field(description="best dense cosine; below the threshold: refused")
    refused: bool
    retrieval: str = Field(
        "hybrid", description="what ran: hybrid, dense, or bm25 while a first start builds"
    )
    timings: dict[str, float]


class ChatMessage(BaseModel):
    """One turn; ``content`` is a string or OpenAI's list of parts (text parts are read)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: str | list[dict] | None = None

    @field_validator("content")
    @classmethod
    def _bounded(cls, content: str | list[dict] | None) -> str | list[dict] | None:
        if len(message_text(content)) > MAX_QUESTION_CHARS * 4:
            raise ValueError(f"a message is longer than {MAX_QUESTION_CHARS * 4} characters")
        return content

    @property
    def text(self) -> str:
        return message_text(self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """The OpenAI ``POST /v1/chat/completions`` body.

    Fields of other vendors are accepted and ignored (OpenAI clients send
    them); the ones below are honoured where they mean something for answers
    built from the documentation: ``max_tokens`` / ``max_completion_tokens``
    cut the answer (``finish_reason: "length"``), ``stop`` ends it at a stop
    sequence, ``stream_options.include_usage`` adds the usage chunk. Answers
    are deterministic (the evidence answer, or greedy decoding), so
    ``temperature``, ``top_p`` and ``seed`` are checked and accepted but
    change nothing.
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field("dl2llm-rag", max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    stop: str | list[str] | None = Field(None, validate_default=True)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    n: int | None = Field(None, ge=1, le=1)
    user: str | None = Field(None, max_length=200)

    @field_validator("stop")
    @classmethod
    def _stop_sequences(cls, stop: str | list[str] | None) -> list[str]:
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        return [s for s in stops if s]

    @field_validator("messages")
    @classmethod
    def _has_question(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        users = [m for m in messages if m.role == "user"]
        if not users or not users[-1].text.strip():
            raise ValueError("the last user message must hold a non-empty question")
        if len(users[-1].text) > MAX_QUESTION_CHARS:
            raise ValueError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        return messages

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class DocumentRequest(BaseModel):
    """``POST /v1/documents``: add or replace one document."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=300,
        pattern=r"^[\w.-]+(/[\w.-]+)*$",
        description="the document's path in the corpus, e.g. notes/deploy.md",
    )
    text: str = Field(min_length=1, max_length=MAX_DOCUMENT_CHARS)

    _text = field_validator("text")(_not_blank)


class DocumentResponse(BaseModel):
    id: str
    chunks: int
    documents: int


class ErrorResponse(BaseModel):
    error: str
