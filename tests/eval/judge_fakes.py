"""Deterministic stand-ins for the LLM and the embedder, shared by the judge tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
