"""Deterministic stand-ins for the LLM and the embedder, shared by the judge tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FakeCompletion:
    text: str
    prompt_tokens: int = 10
    completion_tokens: int = 5
    finish_reason: str | None = "stop"
    logprobs: list[dict[str, float]] | None = None
    tokens: list[str] | None = None


@dataclass
class FakeLLM:
    """Replies from a list (one per call, the last repeated) or from ``respond(messages)``."""

    replies: Sequence[str | dict[str, Any] | FakeCompletion] = ()
    respond: Callable[[Sequence[dict[str, str]]], str | dict[str, Any]] | None = None
    name: str = "fake"
    context_window: int = 4096
    calls: list[dict[str, Any]] = field(default_factory=list)

    def complete(self, messages: Sequence[dict[str, str]], **kwargs: Any) -> FakeCompletion:
        self.calls.append({"messages": list(messages), **kwargs})
        if self.respond is not None:
            reply: Any = self.respond(messages)
        else:
            reply = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        if isinstance(reply, FakeCompletion):
            return reply
        return FakeCompletion(reply if isinstance(reply, str) else json.dumps(reply))

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class FakeEmbedder:
    """Bag-of-words vectors over a fixed hashing space: equal texts embed identically."""

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray:
        out = np.zeros((len(sentences), 64))
        for i, s in enumerate(sentences):
            for w in s.lower().replace("?", " ").split():
                out[i, sum(map(ord, w)) % 64] += 1.0
        return out


@contextmanager
def chat_stub_server(
    reply: Callable[[dict[str, Any]], dict[str, Any]],
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback OpenAI-compatible ``/v1/chat/completions``: ``reply(request body)`` gives the choice's
    ``message`` content and optionally ``logprobs``/``finish_reason``/``usage``. Yields (base_url, requests)."""
    requests: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            r = reply(body)
            choice: dict[str, Any] = {
                "index": 0,
                "finish_reason": r.get("finish_reason", "stop"),
                "message": {"role": "assistant", "content": r["content"]},
            }
            if "logprobs" in r:
                choice["logprobs"] = r["logprobs"]
            out = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [choice],
                "usage": r.get("usage", {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}),
            }
            data = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    finally:
        server.shutdown()
        server.server_close()
