"""Fakes and a real uvicorn server on a free loopback port, for the ``rag serve`` tests."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from query_fakes import ScriptedLLM

from rag.errors import GenerationError


@dataclass
class PacedLLM(ScriptedLLM):
    """Streams its reply one word every ``delay`` seconds; records how many words each stream yielded, whether
    the stream was closed early, and the most streams running at once. ``rewrite``, when set, is what a
    non-streamed call (the follow-up rewrite) returns instead of the reply."""

    rewrite: str | None = None
    delay: float = 0.0
    fail: bool = False
    yielded: list[int] = field(default_factory=list)
    closed_early: list[bool] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def complete(self, messages, **kwargs):
        out = super().complete(messages, **kwargs)
        return out if self.rewrite is None else replace(out, text=self.rewrite)

    def stream(self, messages, *, max_tokens=512, temperature=0.0, seed=0, stop=None) -> Iterator[str]:
        self.seen.append(list(messages))
        if self.fail:
            raise GenerationError("scripted: the backend is down")
        words = re.findall(r"\S+\s*", self.reply)
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        count, finished = 0, False
        try:
            for word in words:
                if self.delay:
                    time.sleep(self.delay)
                count += 1
                yield word
            finished = True
        finally:
            with self._lock:
                self.running -= 1
            self.yielded.append(count)
            self.closed_early.append(not finished)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class LiveServer:
    """``app`` served by uvicorn in a thread of this process, on a free port, until :meth:`stop`."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def sse_events(text: str) -> list[str]:
    """The ``data:`` payloads of a server-sent event stream, in order (comments dropped)."""
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def wait_for(condition, *, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
