"""What every judge shares: typed input/output, the ``Judge`` protocol, and one constrained-JSON call
with retries whose failures become data (``status="error"`` + reason), never a crash or a silent NaN.

Parsing is separate from prompting: each judge module has a pure ``parse_*`` function that turns the
decoded JSON into its verdict (unit-tested on canned outputs) and raises :class:`JudgeError` when the
output does not fit; :func:`call_json` retries such failures and reports the last reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from rag.errors import JudgeError, RagError

Status = Literal["ok", "error"]
Domain = Literal["general", "coding", "math"]
Message = dict[str, str]
T = TypeVar("T")


class CompletionLike(Protocol):
    """Read-only view of :class:`rag.llm.Completion`."""

    @property
    def text(self) -> str: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def logprobs(self) -> list[dict[str, float]] | None: ...
    @property
    def tokens(self) -> list[str] | None: ...


class ChatLLM(Protocol):
    """The part of :class:`rag.llm.LLM` a judge uses (any object with this method fits)."""

    name: str

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = 0,
        json_schema: dict[str, Any] | None = None,
        top_logprobs: int = 0,
        stop: Sequence[str] | None = None,
    ) -> CompletionLike: ...


@dataclass(frozen=True)
class EvalSample:
    """One item to judge: the question, the system's answer, the contexts it was given, and optionally
    a reference answer and the domain that picks the pointwise rubric."""

    question: str
    answer: str
    contexts: tuple[str, ...] = ()
    reference: str | None = None
    id: str = ""
    domain: Domain = "general"


@dataclass
class Usage:
    """Cost of one judgement: LLM calls, tokens in and out, wall seconds."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.seconds += other.seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class JudgeResult:
    """A judge's verdict on one item. ``score`` is ``None`` exactly when ``status == "error"``;
    ``reason`` is the judge's explanation (or why it failed); ``details`` holds judge-specific fields
    (claims, generated questions, steps...)."""

    judge: str
    item_id: str
    status: Status
    score: float | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "item_id": self.item_id,
            "status": self.status,
            "score": self.score,
            "reason": self.reason,
            "details": self.details,
            "usage": self.usage.to_dict(),
        }


@runtime_checkable
class Judge(Protocol):
    """A pointwise judge: one sample in, one typed result out. Errors are returned, not raised."""

    name: str

    def run(self, sample: EvalSample) -> JudgeResult: ...


@dataclass(frozen=True)
class CallOptions:
    """How a judge calls the LLM: output budget, retry count (extra attempts after the first)."""

    max_tokens: int = 512
    retries: int = 2
    seed: int = 0


@dataclass(frozen=True)
class JsonReply:
    data: dict[str, Any]
    completion: CompletionLike


def parse_json_object(text: str) -> dict[str, Any]:
    """Decode a JSON object from model output, tolerating a Markdown fence or text around it."""
    raw = text.strip()
    if raw.startswith("```"):
        raw = raw.strip("`")
        raw = raw[raw.find("\n") + 1 :] if "\n" in raw else raw
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        start, end = raw.find("{"), raw.rfind("}")
        if start < 0 or end <= start:
            raise JudgeError(f"no JSON object in the judge output: {_snippet(text)}") from None
        try:
            data = json.loads(raw[start : end + 1])
        except json.JSONDecodeError as e:
            raise JudgeError(f"invalid JSON in the judge output ({e.msg}): {_snippet(text)}") from e
    if not isinstance(data, dict):
        raise JudgeError(f"the judge output is JSON but not an object: {_snippet(text)}")
    return data


def call_json(
    llm: ChatLLM,
    messages: Sequence[Message],
    *,
    schema: dict[str, Any],
    parse: Callable[[dict[str, Any]], T],
    options: CallOptions,
    usage: Usage,
    top_logprobs: int = 0,
) -> tuple[T, CompletionLike]:
    """Call the LLM with JSON-schema constrained output and parse it; retry (with another seed and a
    little temperature) when the backend fails or the output does not parse. Adds every attempt's cost
    to ``usage``. Raises :class:`JudgeError` with the last reason when all attempts fail."""
    last = "no attempt made"
    for attempt in range(options.retries + 1):
        start = time.perf_counter()
        try:
            completion = llm.complete(
                messages,
                max_tokens=options.max_tokens,
                temperature=0.0 if attempt == 0 else 0.3,
                seed=options.seed + attempt,
                json_schema=schema,
                top_logprobs=top_logprobs,
            )
        except RagError as e:
            usage.add(Usage(calls=1, seconds=time.perf_counter() - start))
            last = f"LLM call failed: {e}"
            continue
        usage.add(Usage(1, completion.prompt_tokens, completion.completion_tokens, time.perf_counter() - start))
        try:
            if completion.finish_reason == "length":
                raise JudgeError(f"output cut at max_tokens={options.max_tokens}: {_snippet(completion.text)}")
            return parse(parse_json_object(completion.text)), completion
        except JudgeError as e:
            last = str(e)
        except (KeyError, TypeError, ValueError) as e:
            last = f"unexpected verdict shape ({type(e).__name__}: {e}): {_snippet(completion.text)}"
    raise JudgeError(f"{options.retries + 1} attempt(s) failed; last: {last}")


def error_result(judge: str, sample_id: str, reason: str, usage: Usage) -> JudgeResult:
    return JudgeResult(judge=judge, item_id=sample_id, status="error", score=None, reason=reason, usage=usage)


def format_contexts(contexts: Sequence[str]) -> str:
    if not contexts:
        return "(no context)"
    return "\n\n".join(f"[{i}] {c.strip()}" for i, c in enumerate(contexts, 1))


def require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``data[key]`` checked against ``kind``; a :class:`JudgeError` naming the key otherwise."""
    if key not in data:
        raise JudgeError(f"the verdict has no {key!r} field (fields: {', '.join(sorted(data)) or 'none'})")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        raise JudgeError(f"the verdict's {key!r} is {type(value).__name__}, expected {kind}")
    return value


def _snippet(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."
