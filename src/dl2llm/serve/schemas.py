"""Request and response bodies of the HTTP API (pydantic models -> ``/openapi.json``).

Requests forbid unknown fields, so a typo (``"questoin"``) is a 422 that names
the field instead of a silently ignored setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dl2llm.rag.retrieve import MODES

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
    timings: dict[str, float]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str = Field(max_length=MAX_QUESTION_CHARS * 4)


class ChatRequest(BaseModel):
    """The OpenAI ``POST /v1/chat/completions`` body (the fields this service uses)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("dl2llm-rag", max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=512)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=1)
    user: str | None = Field(None, max_length=200)

    @field_validator("messages")
    @classmethod
    def _has_question(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        users = [m for m in messages if m.role == "user"]
        if not users or not users[-1].content.strip():
            raise ValueError("the last user message must hold a non-empty question")
        if len(users[-1].content) > MAX_QUESTION_CHARS:
            raise ValueError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        return messages


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
