"""The service through the official ``openai`` SDK, on a real server on 127.0.0.1, and faults.

The evidence generator answers (no LLM), so every request is cheap; the token
counts use the encoder's tokenizer, as the service does when no LLM is served.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest
from test_serve_fixtures import TorchThreads, copy_index

from dl2llm.rag.generate import GenerationError, LLMGenerator
from dl2llm.serve.server import BackgroundServer, wait_until_ready
from dl2llm.serve.settings import Settings

QUESTION = "What does functools.lru_cache do?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = copy_index(tmp_path_factory.mktemp("openai"))
    with TorchThreads(), BackgroundServer(Settings(str(data_dir), build_missing=False)) as running:
        wait_until_ready(running.url, timeout_s=300)
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def tokens(server, text: str) -> int:
    tokenizer = server.server.config.app.state.service.pipeline.retriever.encoder.model.tokenizer
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_models_lists_the_service(client):
    assert [m.id for m in client.models.list().data] == ["dl2llm-rag"]
    assert client.models.retrieve("dl2llm-rag").owned_by == "dl2llm"
    with pytest.raises(openai.NotFoundError, match="no model 'gpt-4o'"):
        client.models.retrieve("gpt-4o")


def test_usage_counts_real_tokens(client, server):
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": QUESTION},
    ]
    reply = client.chat.completions.create(model="dl2llm-rag", messages=messages, seed=7,
                                           temperature=0.2, top_p=0.9)  # fmt: skip
    text = reply.choices[0].message.content
    assert text.startswith("`functools.lru_cache(") and reply.choices[0].finish_reason == "stop"
    prompt = tokens(server, f"Answer briefly.\n{QUESTION}")
    assert reply.usage.prompt_tokens == prompt > 0
    assert reply.usage.completion_tokens == tokens(server, text) > 10
    assert reply.usage.total_tokens == prompt + reply.usage.completion_tokens


def test_stream_with_include_usage_ends_with_a_usage_chunk(client, server):
    stream = client.chat.completions.create(
        model="dl2llm-rag",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 10
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert chunks[-1].usage.completion_tokens == tokens(server, text.strip())
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_max_tokens_and_stop_are_honoured(client, server):
    messages = [{"role": "user", "content": QUESTION}]
    short = client.chat.completions.create(model="m", messages=messages, max_tokens=5)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens <= 5
    assert (
        short.choices[0].message.content and tokens(server, short.choices[0].message.content) <= 5
    )
    newer = client.chat.completions.create(model="m", messages=messages, max_completion_tokens=5)
    assert newer.choices[0].message.content == short.choices[0].message.content
    stopped = client.chat.completions.create(model="m", messages=messages, stop=["【"])
    assert stopped.choices[0].finish_reason == "stop"
    assert "【" not in stopped.choices[0].message.content
    assert stopped.choices[0].message.content.startswith("`functools.lru_cache(")


def test_a_follow_up_is_read_with_the_conversation(client):
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "It wraps a function with a memoizing callable."},
        {"role": "user", "content": "How do I make it unbounded?"},
    ]
    reply = client.chat.completions.create(model="m", messages=messages)
    sources = reply.model_extra["sources"]
    assert sources[0]["anchor"].startswith("functools.") and "maxsize" in json.dumps(sources)
    alone = client.chat.completions.create(model="m", messages=messages[2:])
    assert alone.model_extra["sources"][0]["anchor"] != sources[0]["anchor"] or (
        alone.choices[0].message.content != reply.choices[0].message.content
    )


def test_unknown_vendor_fields_and_content_parts_are_accepted(client):
    parts = [{"type": "text", "text": QUESTION}]
    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": parts}], extra_body={"top_k": 3}
    )
    assert reply.choices[0].message.content.startswith("`functools.lru_cache(")


def test_errors_have_openais_shape(client):
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.chat.completions.create(model="m", messages=[{"role": "system", "content": "x"}])
    error = raised.value.body
    assert error["type"] == "invalid_request_error" and "last user message" in error["message"]
    with pytest.raises(openai.UnprocessableEntityError, match="at most 4 stop sequences"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}],
                                       stop=list("abcde"))  # fmt: skip


class FailingGenerator:
    """Fault injection: one piece of an answer, then the model fails."""

    name, uses_evidence = "failing", False

    def stream(self, prepared, max_new_tokens=None):
        yield "The answer"
        raise GenerationError("injected failure")


def test_a_generation_error_ends_the_stream_and_frees_the_slot(server):
    pipeline = server.server.config.app.state.service.pipeline
    working, pipeline.generator = pipeline.generator, FailingGenerator()
    try:
        body = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
        for _ in range(12):  # more than max_concurrent: a leaked slot would turn into 429s
            response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)
            assert response.status_code == 200
            assert "injected failure" in response.text and response.text.endswith(
                "data: [DONE]\n\n"
            )
            asked = httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION, "stream": True})
            assert "event: error" in asked.text and "injected failure" in asked.text
        plain = httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION}, timeout=30)
        assert plain.status_code == 500 and "injected failure" in plain.json()["error"]
    finally:
        pipeline.generator = working
    assert httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION}).status_code == 200


def test_a_failing_model_raises_instead_of_hanging():
    from dl2llm.finetune.grounded_qa import tiny_llama

    model, tokenizer = tiny_llama()

    def broken(**settings):
        raise RuntimeError("out of memory")

    model.generate = broken
    generator = LLMGenerator(model, tokenizer, max_new_tokens=4)
    outcome = []

    def read():
        try:
            list(generator.generate([{"role": "user", "content": "hi"}]))
        except GenerationError as err:
            outcome.append(str(err))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive() and "out of memory" in outcome[0]


class SlowGenerator:
    """A generator that takes 10 s unless stopped: it checks the question's cancel event
    before each piece, as the language model does at each token (see the next test)."""

    name, uses_evidence = "slow", False

    def __init__(self):
        self.pieces_sent = 0

    def stream(self, prepared, max_new_tokens=None):
        for i in range(200):
            if prepared.cancel.is_set():
                return
            time.sleep(0.05)
            self.pieces_sent += 1
            yield f"w{i} "


def stopped(server, reason: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(f'dl2llm_answers_stopped_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.fixture
def slow(server):
    app = server.server.config.app
    pipeline, timeout_s = app.state.service.pipeline, app.state.answer_timeout_s
    working, pipeline.generator = pipeline.generator, SlowGenerator()
    yield pipeline.generator
    pipeline.generator, app.state.answer_timeout_s = working, timeout_s


def test_a_client_that_disconnects_stops_its_generation(server, slow):
    body = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
    before = stopped(server, "disconnect")
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as response:
        next(response.iter_lines())  # the answer has started; then the client goes away
    wait_for(lambda: stopped(server, "disconnect") == before + 1)
    sent = slow.pieces_sent
    time.sleep(0.5)
    assert slow.pieces_sent == sent < 100  # stopped, well before its 200 pieces
    with pytest.raises(httpx.ReadTimeout):  # a client that gives up on a plain answer
        httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION}, timeout=1.0)
    wait_for(lambda: stopped(server, "disconnect") == before + 2)


def test_an_answer_past_the_time_limit_is_stopped(server, slow):
    server.server.config.app.state.answer_timeout_s = 1.0
    before = stopped(server, "timeout")
    plain = httpx.post(f"{server.url}/v1/chat/completions", timeout=30,
                       json={"messages": [{"role": "user", "content": QUESTION}]})  # fmt: skip
    assert plain.status_code == 504 and "limit of 1 s" in plain.json()["error"]["message"]
    asked = httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION, "stream": True})
    assert "event: error" in asked.text and "limit of 1 s" in asked.text
    assert stopped(server, "timeout") == before + 2
    assert slow.pieces_sent < 2 * 40  # two answers of ~1 s of 0.05 s pieces, not 2 x 200


def test_the_model_stops_at_the_next_token_once_asked():
    from dl2llm.finetune.grounded_qa import tiny_llama

    model, tokenizer = tiny_llama()
    generator = LLMGenerator(model, tokenizer, max_new_tokens=40)
    messages = [{"role": "user", "content": "hi"}]
    free = "".join(generator.generate(messages, sentences=10**6))
    stop = threading.Event()
    stop.set()
    stopped_text = "".join(generator.generate(messages, sentences=10**6, stop=stop))
    assert len(tokenizer(free)["input_ids"]) > 20
    assert len(tokenizer(stopped_text)["input_ids"]) <= 1
