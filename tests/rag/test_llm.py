"""LLM backends: the embedded llama.cpp model for real, and the OpenAI-compatible client against a
small OpenAI-shaped server on loopback (so retries, timeouts and error mapping are exercised)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rag.config import LLMConfig
from rag.errors import ConfigError, GenerationError
from rag.llm import LLM, OpenAICompatLLM, create_llm

QUESTION = [
    {"role": "system", "content": "Answer with one word."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.mark.llm
@pytest.mark.slow
def test_local_llm_answers_and_streams_the_same_text(local_llm: LLM) -> None:
    done = local_llm.complete(QUESTION, max_tokens=8)
    assert "paris" in done.text.lower()
    assert done.prompt_tokens > 10 and done.completion_tokens >= 1
    streamed = "".join(local_llm.stream(QUESTION, max_tokens=8))
    assert streamed == done.text


@pytest.mark.llm
@pytest.mark.slow
def test_local_llm_json_schema_output_is_valid(local_llm: LLM) -> None:
    schema = {
        "type": "object",
        "properties": {"verdict": {"type": "string", "enum": ["yes", "no"]}, "reason": {"type": "string"}},
        "required": ["verdict", "reason"],
    }
    out = local_llm.complete(
        [{"role": "user", "content": "Is water wet? Answer as JSON."}], max_tokens=60, json_schema=schema
    )
    parsed = json.loads(out.text)
    assert parsed["verdict"] in {"yes", "no"} and isinstance(parsed["reason"], str)


@pytest.mark.llm
@pytest.mark.slow
def test_local_llm_logprobs_are_a_distribution_over_the_generated_tokens(local_llm: LLM) -> None:
    out = local_llm.complete(
        [{"role": "user", "content": "Reply with a single digit from 1 to 5: how many sides has a triangle?"}],
        max_tokens=2,
        top_logprobs=5,
    )
    assert out.logprobs is not None and len(out.logprobs) >= 1
    first = out.logprobs[0]
    assert all(lp <= 0.0 for lp in first.values())
    assert sum(math.exp(lp) for lp in first.values()) <= 1.0 + 1e-4
    assert "3" in first
    assert out.tokens is not None and len(out.tokens) == len(out.logprobs)
    assert "".join(out.tokens) == out.text
    assert all(tok in step for tok, step in zip(out.tokens, out.logprobs, strict=True))


@pytest.mark.llm
@pytest.mark.slow
def test_local_llm_counts_tokens_and_rejects_overlong_prompts(local_llm: LLM) -> None:
    assert local_llm.count_tokens("") == 0
    assert 1 <= local_llm.count_tokens("hello world") <= 4
    too_long = "word " * (local_llm.context_window + 100)
    with pytest.raises(GenerationError, match="context"):
        local_llm.complete([{"role": "user", "content": too_long}], max_tokens=4)


def test_create_llm_shares_one_instance_per_config() -> None:
    assert create_llm(LLMConfig(n_ctx=1024)) is create_llm(LLMConfig(n_ctx=1024))


def test_openai_backend_requires_a_model_name() -> None:
    with pytest.raises(ConfigError, match=r"llm\.model"):
        OpenAICompatLLM(LLMConfig(backend="openai", base_url="http://127.0.0.1:9/v1"))


class _FakeOpenAI(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions like an OpenAI-compatible server, with scripted failures."""

    script: list[str] = []
    requests: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        action = type(self).script.pop(0) if type(self).script else "ok"
        if action == "500":
            self._send(500, {"error": {"message": "boom"}})
        elif action == "no_schema" and body.get("response_format", {}).get("type") == "json_schema":
            self._send(400, {"error": {"message": "response_format json_schema is not supported"}})
        elif action == "sleep":
            threading.Event().wait(2.0)
            self._send(200, _reply("late"))
        elif body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ("Par", "is"):
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
        else:
            self._send(200, _reply("Paris", logprobs=bool(body.get("logprobs"))))

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _reply(text: str, *, logprobs: bool = False) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs:
        choice["logprobs"] = {"content": [{"token": text, "logprob": -0.1, "bytes": None,
                                           "top_logprobs": [{"token": "Lyon", "logprob": -3.0, "bytes": None}]}]}
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice],
            "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}}


@pytest.fixture()
def fake_server() -> Iterator[str]:
    _FakeOpenAI.script = []
    _FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _client(url: str, **overrides: Any) -> OpenAICompatLLM:
    return OpenAICompatLLM(LLMConfig(backend="openai", base_url=url, model="m", **overrides))


def test_openai_backend_completes_streams_and_reads_logprobs(fake_server: str) -> None:
    llm = _client(fake_server)
    out = llm.complete(QUESTION, max_tokens=5, top_logprobs=2)
    assert out.text == "Paris" and out.prompt_tokens == 12 and out.completion_tokens == 1
    assert out.logprobs == [{"Paris": -0.1, "Lyon": -3.0}] and out.tokens == ["Paris"]
    assert _FakeOpenAI.requests[-1]["temperature"] == 0.0 and _FakeOpenAI.requests[-1]["seed"] == 0
    assert "".join(llm.stream(QUESTION)) == "Paris"


def test_openai_backend_retries_server_errors(fake_server: str) -> None:
    _FakeOpenAI.script = ["500", "500"]
    assert _client(fake_server, max_retries=2).complete(QUESTION).text == "Paris"
    assert len(_FakeOpenAI.requests) == 3


def test_openai_backend_gives_up_with_a_clear_error(fake_server: str) -> None:
    _FakeOpenAI.script = ["500", "500"]
    with pytest.raises(GenerationError, match="HTTP 500"):
        _client(fake_server, max_retries=1).complete(QUESTION)


def test_openai_backend_times_out(fake_server: str) -> None:
    _FakeOpenAI.script = ["sleep"]
    with pytest.raises(GenerationError, match="timed out"):
        _client(fake_server, timeout_s=0.3, max_retries=0).complete(QUESTION)


def test_openai_backend_falls_back_to_json_mode(fake_server: str) -> None:
    _FakeOpenAI.script = ["no_schema"]
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    _client(fake_server, max_retries=0).complete(QUESTION, json_schema=schema)
    first, second = _FakeOpenAI.requests
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"] == {"type": "json_object"}
    assert "JSON schema" in second["messages"][-1]["content"]


def test_openai_backend_reports_an_unreachable_server() -> None:
    with pytest.raises(GenerationError, match="cannot connect"):
        _client("http://127.0.0.1:9/v1", max_retries=0, timeout_s=2).complete(QUESTION)
