"""Request and response shapes of ``rag serve``: the OpenAI chat-completions subset it speaks, and its own
search request. Requests are validated here (a bad one is a 400 naming the field); the extra response
fields ``sources`` and ``ragtrail`` ride beside the standard ones, where OpenAI clients keep but ignore them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.config import RetrievalMode

MAX_MESSAGES = 200
MAX_QUERY_CHARS = 4000


class ContentPart(BaseModel):
    """A part of a message's content list; only ``{"type": "text", "text": ...}`` is understood."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    @field_validator("content")
    @classmethod
    def _text_parts_only(cls, value: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        if isinstance(value, list):
            for part in value:
                if part.type != "text" or part.text is None:
                    raise ValueError(f"only text content parts are supported, got a {part.type!r} part")
        return value

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text or "" for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI ``POST /v1/chat/completions``. Sampling options (temperature, max_tokens, ...) are accepted
    and ignored: the configuration decides them, so answers stay reproducible."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"only n=1 is supported, got {value}")
        return value


class SearchRequest(BaseModel):
    """``POST /v1/search``: retrieval only, answered in the ``rag search --json`` shape."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int | None = Field(default=None, ge=1)
    mode: RetrievalMode | None = None
    rerank: bool | None = None
    source: list[str] | None = Field(default=None, max_length=20)


class SourceOut(BaseModel):
    """A cited passage: ``number`` is its [n] in the answer; ``excerpt`` what the LLM read of it; ``text``
    the whole indexed passage; ``highlights`` the ``[start, end)`` character spans of the excerpt in it."""

    number: int
    source: str
    page: int | None
    chunk_id: str
    title: str | None = None
    heading: str | None = None
    rank: int
    scores: dict[str, float]
    excerpt: str
    text: str
    highlights: list[tuple[int, int]]


class RagInfo(BaseModel):
    """What an OpenAI response cannot say: the final answer text (citations checked; the streamed text is the
    raw one), whether it was declined or withdrawn and why, what was searched for, the index generation."""

    answer: str
    refused: bool
    withdrawn: bool
    decision: dict[str, Any] | None
    notes: list[str]
    query: str
    followup: dict[str, Any] | None
    generation: str | None
    timings_ms: dict[str, float]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    sources: list[SourceOut]
    ragtrail: RagInfo


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    sources: list[SourceOut] | None = None
    ragtrail: RagInfo | None = None

    def sse(self) -> str:
        """One server-sent event; ``usage``, ``sources`` and ``ragtrail`` only where they are set."""
        unset = {name for name in ("usage", "sources", "ragtrail") if getattr(self, name) is None}
        data = self.model_dump(exclude=unset)
        for choice in data["choices"]:
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
        return f"data: {_json(data)}\n\n"


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragtrail"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def error_event(message: str, *, type_: str, code: str) -> str:
    """An error inside a stream that has already started (the OpenAI client raises it as an APIError)."""
    body = ErrorResponse(error=ErrorBody(message=message, type=type_, code=code))
    return f"data: {_json(body.model_dump())}\n\n"


DONE = "data: [DONE]\n\n"
