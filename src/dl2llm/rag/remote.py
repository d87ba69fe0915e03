"""Generation on an inference server: any OpenAI-compatible ``/v1/chat/completions``.

In one process the language model shares the cores with retrieval and the API;
past one machine it runs on its own servers (vLLM, Hugging Face TGI, llama.cpp's
``llama-server``), which batch requests from many API processes. They all speak
OpenAI's chat API, so one client covers them: :class:`RemoteLLMGenerator` is
:class:`~dl2llm.rag.generate.LLMGenerator` (the same prompts, checks and
answers) with :meth:`generate` sending the messages to ``--llm-url`` and
reading the streamed reply:

- a **timeout** on connecting and between streamed pieces;
- **retries** with backoff for what a busy or restarting server answers
  (connection refused, 429, 502-504, honouring ``Retry-After``), and only
  before the first piece arrived, so an answer is never sent twice;
- the question's ``stop`` event (a client that went away) closes the stream,
  which tells the server to stop generating.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from dl2llm.rag.generate import (
    MAX_SENTENCES,
    STYLES,
    GenerationError,
    LLMGenerator,
    first_sentences,
)

RETRY_STATUSES = {429, 502, 503, 504}
ATTEMPTS = 4
BACKOFF_S = 0.5  # doubled after each failed attempt, unless the server says Retry-After


class RemoteLLMGenerator(LLMGenerator):
    """:class:`LLMGenerator` whose model runs behind ``url`` (see the module's docstring)."""

    def __init__(
        self,
        url: str,
        model: str | None = None,
        max_new_tokens: int = 128,
        style: str = "evidence",
        timeout_s: float = 60.0,
        api_key: str | None = None,
        tokenizer=None,
    ):
        if style not in STYLES:
            raise ValueError(f"unknown style '{style}' (use one of {', '.join(STYLES)})")
        self.url = url.rstrip("/")
        self.remote_model = model or "default"
        self.tokenizer, self.max_new_tokens, self.style = tokenizer, max_new_tokens, style
        self.uses_evidence = style == "evidence"
        self.name = f"{Path(self.remote_model).name}@{self.url}"
        self.rejections, self.changed_lead = {}, 0
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0), headers=headers)

    def generate(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int | None = None,
        sentences: int = MAX_SENTENCES,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        """Stream the server's reply, up to its ``sentences``-th sentence."""
        body = {
            "model": self.remote_model,
            "messages": messages,
            "max_tokens": max_new_tokens or self.max_new_tokens,
            "temperature": 0,
            "stream": True,
        }
        pieces = self._stream(body)
        for piece in first_sentences(pieces, sentences):
            if stop is not None and stop.is_set():
                return  # closing the stream tells the server to stop
            yield piece

    def _stream(self, body: dict) -> Iterator[str]:
        """The content pieces of one streamed completion, retried until the first arrives."""
        wait = BACKOFF_S
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.client.stream("POST", f"{self.url}/chat/completions", json=body) as reply:
                    if reply.status_code in RETRY_STATUSES and attempt < ATTEMPTS:
                        wait = _retry_after(reply, wait)
                    elif reply.status_code != 200:
                        reply.read()
                        raise GenerationError(
                            f"{self.url} answered {reply.status_code}: {reply.text[:300]}"
                        )
                    else:
                        yield from _pieces(reply)
                        return
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:
                if attempt == ATTEMPTS:
                    raise GenerationError(f"cannot reach {self.url}: {err}") from err
            except httpx.TimeoutException as err:
                raise GenerationError(f"{self.url} timed out: {err}") from err
            time.sleep(wait)
            wait *= 2
        raise GenerationError(f"{self.url} stayed busy after {ATTEMPTS} attempts")


def _retry_after(reply: httpx.Response, default: float) -> float:
    value = reply.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else default


def _pieces(reply: httpx.Response) -> Iterator[str]:
    """``choices[0].delta.content`` of each server-sent event until ``[DONE]``."""
    for line in reply.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            return
        event = json.loads(data)
        if "error" in event:
            raise GenerationError(f"the inference server failed: {event['error']}")
        for choice in event.get("choices", []):
            if content := (choice.get("delta") or {}).get("content"):
                yield content
