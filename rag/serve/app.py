"""The ``rag serve`` application: an OpenAI-compatible chat endpoint over the RAG pipeline, retrieval and
index statistics, and the web page.

Endpoints::

    GET  /                      the web page (no auth: it holds no data)
    GET  /healthz               {"status": "ok"} (no auth)
    GET  /v1/models             the one model
    POST /v1/chat/completions   OpenAI chat completions, streamed (SSE, ending in data: [DONE]) or not
    POST /v1/search             {"query", "k", "mode", "rerank", "source"}: the ``rag search --json`` shape
    GET  /v1/index              the ``rag index stats --json`` shape, plus the queue and reloads
    GET  /v1/reports            the latest ``rag eval`` HTML reports under ``serve.reports_dir``
    GET  /reports/{name}        one of them

Safe by default: every ``/v1`` and ``/reports`` route needs ``Authorization: Bearer <key>`` when
``serve.api_key_env`` names a variable (compared in constant time); bodies over ``serve.max_body_bytes`` are
refused (413); every error is ``{"error": {"message", "type", "code"}}`` JSON with a 4xx/5xx status, never a
traceback; CORS only for ``serve.cors_origins``. Answers go through :class:`GenerationQueue`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.config import ServeConfig
from rag.errors import ConfigError, GenerationError, IndexError_, RagError
from rag.prompt import NOT_IN_DOCUMENTS
from rag.serve.generation import GenerationQueue, Job, QueueFull, Timeout
from rag.serve.live import LivePipeline
from rag.serve.schemas import (
    DONE,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    ErrorBody,
    ErrorResponse,
    ModelCard,
    ModelList,
    RagInfo,
    SearchRequest,
    SourceOut,
    Usage,
    error_event,
)

if TYPE_CHECKING:
    from rag.pipeline import Answer, Pipeline

log = logging.getLogger("rag.serve")

KEEPALIVE_S = 10.0  # an SSE comment while waiting for the model, so proxies and clients see a live stream
POLL_S = 0.5  # how often a non-streaming request checks that its client is still there
MAX_REPORTS = 20
REPORT_COOKIE = "ragtrail_key"  # the page sets it so report links (plain navigations) can carry the key


class ApiError(Exception):
    """An error answered as OpenAI-style JSON with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(message=message, type=type_, code=code, param=param))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (413): by their Content-Length (the server then never reads past
    it), or, for a chunked body, by reading it up to the limit before the application sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(
            413,
            f"the request body is larger than {self.max_bytes} bytes (serve.max_body_bytes)",
            code="body_too_large",
        )
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.max_bytes:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@dataclass(frozen=True)
class Answered:
    answer: Answer
    usage: Usage
    generation: str | None
    finish_reason: Literal["stop", "length"] = "stop"


def _page() -> tuple[str, str]:
    """The page and its Content-Security-Policy: inline script and style allowed by their hashes only."""
    html = resources.files("rag.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)

    csp = (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html, csp


def _validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        where = "".join(f"[{x}]" if x.isdigit() else f".{x}" for x in loc).lstrip(".")
        if e.get("type") == "json_invalid":
            return f"the request body is not valid JSON: {e.get('ctx', {}).get('error', e.get('msg'))}"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "invalid request: " + "; ".join(parts)


def split_conversation(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The question (the last message, which must be the user's) and the turns before it."""
    last = messages[-1]
    if last.role != "user":
        raise ApiError(400, f"the last message must be the user's question, got role {last.role!r}", param="messages")
    question = last.text().strip()
    if not question:
        raise ApiError(400, "the question (the last user message) is empty", param="messages")
    history = [{"role": m.role, "content": m.text()} for m in messages[:-1] if m.role in ("user", "assistant")]
    return question, history


def excerpt_spans(text: str, excerpt: str) -> list[tuple[int, int]]:
    """Where the excerpt's sentences (whitespace-normalised, gaps shown as " ... ") sit in ``text``, in order;
    a sentence not found (e.g. neutralised) is skipped."""
    spans: list[tuple[int, int]] = []
    at = 0
    for part in excerpt.split(" ... "):
        words = part.split()
        if not words:
            continue
        found = re.compile(r"\s+".join(re.escape(w) for w in words)).search(text, at)
        if found is not None:
            spans.append((found.start(), found.end()))
            at = found.end()
    return spans


def sources_of(answer: Answer) -> list[SourceOut]:
    by_number = {p.number: p for p in answer.passages}
    out = []
    for s in answer.sources:
        p = by_number[s.number]
        chunk = p.hit.chunk
        out.append(
            SourceOut(
                number=s.number,
                source=chunk.source,
                page=chunk.page,
                chunk_id=chunk.id,
                title=chunk.title,
                heading=chunk.heading,
                rank=p.hit.rank,
                scores={k: float(v) for k, v in p.hit.scores.items()},
                excerpt=p.text,
                text=chunk.text,
                highlights=excerpt_spans(chunk.text, p.text),
            )
        )
    return out


def rag_info(answered: Answered) -> RagInfo:
    a = answered.answer
    return RagInfo(
        answer=a.answer,
        refused=a.refused,
        withdrawn=a.withdrawn,
        decision=a.decision.to_dict() if a.decision is not None else None,
        notes=list(a.notes),
        query=a.search.query,
        followup=a.followup.to_dict() if a.followup is not None else None,
        generation=answered.generation,
        timings_ms=dict(a.timings),
    )


def withdrawal_note(answer: Answer) -> str:
    reason = answer.decision.reason if answer.decision is not None else "unsupported"
    return f"\n\n[withdrawn] The answer above was taken back: {reason}. {NOT_IN_DOCUMENTS}"


def _answer(
    pipeline: Pipeline, question: str, history: list[dict[str, str]], on_token: Callable[[str], None]
) -> Answered:
    """On the worker thread: the answer and its token counts."""
    answer = pipeline.ask(question, history=history or None, on_token=on_token)
    completion = pipeline.llm.count_tokens(answer.raw_answer) if answer.raw_answer else 0
    prompt = answer.prompt.prompt_tokens if answer.generated else 0
    generation = getattr(pipeline.index, "generation", None)
    config = pipeline.config
    limit = config.answer.answer_tokens if config.answer.context == "sentences" else config.prompt.answer_tokens
    return Answered(
        answer,
        Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion),
        Path(generation).name if generation is not None else None,
        "length" if completion >= limit else "stop",
    )


def _raise_for(error: BaseException) -> NoReturn:
    if isinstance(error, ValueError):
        raise ApiError(400, str(error))
    if isinstance(error, GenerationError):
        raise ApiError(502, str(error), type_="server_error", code="generation_failed")
    if isinstance(error, IndexError_):
        raise ApiError(503, str(error), type_="server_error", code="index_unavailable")
    if isinstance(error, RagError):
        raise ApiError(500, str(error), type_="server_error", code=type(error).__name__)
    raise error


def _stream_error(error: BaseException) -> str:
    try:
        _raise_for(error)
    except ApiError as e:
        return error_event(e.message, type_=e.type, code=e.code or "error")
    except Exception:
        log.exception("rag serve: answering failed")
    return error_event("internal error; the server log has the details", type_="server_error", code="internal_error")


def api_key(config: ServeConfig) -> str | None:
    """The bearer token ``serve.api_key_env`` names (``None``: no auth); a missing one is a ConfigError."""
    if config.api_key_env is None:
        return None
    key = os.environ.get(config.api_key_env, "")
    if not key.strip():
        raise ConfigError(
            f"serve.api_key_env names {config.api_key_env!r}, but that environment variable is not set or empty: "
            f"export {config.api_key_env}=<a long random key>"
        )
    return key.strip()


def _reports(root: Path) -> list[dict[str, Any]]:
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        report = child / "report.html"
        if child.is_dir() and not child.name.startswith(".") and report.is_file():
            found.append((report.stat().st_mtime, child.name))
    found.sort(key=lambda x: (-x[0], x[1]))
    return [
        {
            "name": name,
            "url": f"/reports/{name}",
            "modified": datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds"),
        }
        for mtime, name in found[:MAX_REPORTS]
    ]


def create_app(
    pipeline: Pipeline | Callable[[], Pipeline],
    config: ServeConfig | None = None,
    *,
    warm_up: bool = True,
) -> FastAPI:
    """The application over ``pipeline`` (or a factory called at start-up). ``warm_up`` loads the models
    before the first request (the embedding model, the reranker, the LLM's tokenizer)."""
    config = config or ServeConfig()
    key = api_key(config)
    page, page_csp = _page()
    state: dict[str, Any] = {}
    search_pool = ThreadPoolExecutor(max_workers=config.search_workers, thread_name_prefix="rag-search")
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if hasattr(pipeline, "ask"):
            loaded = cast("Pipeline", pipeline)
        else:
            loaded = await asyncio.to_thread(cast("Callable[[], Pipeline]", pipeline))
        if warm_up:
            await asyncio.to_thread(_warm_up, loaded)
        state["live"] = LivePipeline(loaded)
        state["queue"] = GenerationQueue(config.max_queue)
        log.info("rag serve: ready (%s)", state["live"].generation or "in-memory index")
        yield
        await state["queue"].drain()
        search_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="ragtrail", version="1", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def live() -> LivePipeline:
        return state["live"]  # type: ignore[no-any-return]

    def queue() -> GenerationQueue:
        return state["queue"]  # type: ignore[no-any-return]

    async def authorized(request: Request) -> None:
        if key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            token = request.cookies.get(REPORT_COOKIE, "") if request.url.path.startswith("/reports/") else ""
        if not token or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise ApiError(
                401,
                "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    auth = [Depends(authorized)]

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, e: ApiError) -> JSONResponse:
        return error_response(e.status, e.message, type_=e.type, code=e.code, param=e.param, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, e: RequestValidationError) -> JSONResponse:
        return error_response(400, _validation_message(e.errors()), code="invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        message = {404: f"no such endpoint: {request.method} {request.url.path}"}.get(e.status_code, str(e.detail))
        if e.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(e.status_code, message, code=f"http_{e.status_code}", headers=dict(e.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, e: Exception) -> JSONResponse:
        log.error("rag serve: unexpected error", exc_info=e)
        return error_response(500, "internal error; the server log has the details", type_="server_error")

    @app.get("/", include_in_schema=False)
    async def index_page() -> HTMLResponse:
        headers = {
            "Content-Security-Policy": page_csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }
        return HTMLResponse(page, headers=headers)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", dependencies=auth)
    async def models() -> dict[str, Any]:
        return ModelList(data=[ModelCard(id=config.model_name, created=created)]).model_dump()

    @app.get("/v1/index", dependencies=auth)
    async def index_stats() -> dict[str, Any]:
        from ingest.stats import stats_of

        holder = live()
        pipe = await holder.current()
        if not hasattr(pipe.index, "manifest"):
            raise ApiError(503, "this server's index is not an on-disk index", type_="server_error")
        stats = await asyncio.to_thread(stats_of, pipe.index)  # type: ignore[arg-type]
        stats["server"] = {
            "model": config.model_name,
            "queue": queue().stats(),
            "reloads": holder.reloads,
            "failed_generations": dict(holder.failed),
            "rerank": pipe.rerank_status.to_dict(),
            "llm": pipe.config.llm.backend,
        }
        return stats

    @app.get("/v1/reports", dependencies=auth)
    async def reports() -> dict[str, Any]:
        return {"reports_dir": config.reports_dir, "reports": _reports(Path(config.reports_dir))}

    @app.get("/reports/{name}", dependencies=auth, include_in_schema=False)
    async def report(name: str) -> FileResponse:
        if name not in {r["name"] for r in _reports(Path(config.reports_dir))}:
            raise ApiError(404, f"no report named {name!r} under {config.reports_dir}", code="report_not_found")
        headers = {
            "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
        }
        return FileResponse(Path(config.reports_dir) / name / "report.html", media_type="text/html", headers=headers)

    @app.post("/v1/search", dependencies=auth)
    async def search(body: SearchRequest) -> dict[str, Any]:
        from rag.retrieval import Filters

        if body.k is not None and body.k > config.max_search_k:
            message = f"k must be at most {config.max_search_k} (serve.max_search_k), got {body.k}"
            raise ApiError(400, message, param="k")
        pipe = await live().current()
        if body.rerank and pipe.reranker is None:
            raise ApiError(400, f"reranking was requested but is off: {pipe.rerank_status.reason}", param="rerank")
        run = partial(
            pipe.search, body.query, k=body.k, mode=body.mode, rerank=body.rerank, filters=Filters.of(body.source)
        )
        future = asyncio.get_running_loop().run_in_executor(search_pool, run)
        try:
            result = await asyncio.wait_for(future, timeout=config.request_timeout_s)
        except TimeoutError:
            raise ApiError(504, _timeout_message(config), type_="server_error", code="timeout") from None
        except (RagError, ValueError) as e:
            _raise_for(e)
        return result.to_dict()  # type: ignore[no-any-return]

    @app.post("/v1/chat/completions", dependencies=auth, response_model=None)
    async def chat(request: Request, body: ChatRequest) -> Response | dict[str, Any]:
        if body.model != config.model_name:
            raise ApiError(
                404,
                f"no model {body.model!r}: this server answers as {config.model_name!r} (GET /v1/models)",
                code="model_not_found",
                param="model",
            )
        question, history = split_conversation(body.messages)
        pipe = await live().current()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.request_timeout_s
        try:
            job = queue().submit(partial(_answer, pipe, question, history))
        except QueueFull as e:
            raise ApiError(
                429,
                f"{e}: one answer is generated at a time and serve.max_queue={config.max_queue} may wait",
                type_="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": str(e.retry_after)},
            ) from None
        ident = f"chatcmpl-{secrets.token_hex(12)}"
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            events = _stream(job, ident=ident, deadline=deadline, include_usage=include_usage)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        answered = await _collect(request, job, deadline)
        if answered is None:  # the client is gone; nobody reads this
            return Response(status_code=499)
        return ChatCompletion(
            id=ident,
            created=int(time.time()),
            model=config.model_name,
            choices=[
                Choice(message=AssistantMessage(content=answered.answer.answer), finish_reason=answered.finish_reason)
            ],
            usage=answered.usage,
            sources=sources_of(answered.answer),
            ragtrail=rag_info(answered),
        ).model_dump()

    async def _collect(request: Request, job: Job[Answered], deadline: float) -> Answered | None:
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            while True:
                event = await job.next_event(deadline=deadline, poll_s=POLL_S)
                if loop.time() - checked >= POLL_S:
                    checked = loop.time()
                    if await request.is_disconnected():
                        queue().abandon(job)
                        return None
                if event is None or event.kind == "token":
                    continue
                if event.kind == "done":
                    return event.value  # type: ignore[no-any-return]
                if event.kind == "error":
                    _raise_for(event.value)
                if event.kind == "cancelled":
                    return None
        except Timeout:
            queue().abandon(job)
            raise ApiError(504, _timeout_message(config), type_="server_error", code="timeout") from None

    async def _stream(job: Job[Answered], *, ident: str, deadline: float, include_usage: bool) -> AsyncIterator[str]:
        created_at = int(time.time())

        def chunk(**kwargs: Any) -> str:
            choices = kwargs.pop("choices", None)
            if choices is None:
                delta = Delta(role=kwargs.pop("role", None), content=kwargs.pop("content", None))
                choices = [ChunkChoice(delta=delta, finish_reason=kwargs.pop("finish_reason", None))]
            return ChatCompletionChunk(
                id=ident, created=created_at, model=config.model_name, choices=choices, **kwargs
            ).sse()

        try:
            yield chunk(role="assistant", content="")
            while True:
                try:
                    event = await job.next_event(deadline=deadline, poll_s=KEEPALIVE_S)
                except Timeout:
                    yield error_event(_timeout_message(config), type_="server_error", code="timeout")
                    break
                if event is None:
                    yield ": waiting for the model\n\n"
                    continue
                if event.kind == "token":
                    yield chunk(content=event.value)
                elif event.kind == "done":
                    answered: Answered = event.value
                    if answered.answer.withdrawn:
                        yield chunk(content=withdrawal_note(answered.answer))
                    yield chunk(
                        finish_reason=answered.finish_reason,
                        sources=sources_of(answered.answer),
                        ragtrail=rag_info(answered),
                    )
                    if include_usage:
                        yield chunk(choices=[], usage=answered.usage)
                    break
                elif event.kind == "error":
                    yield _stream_error(event.value)
                    break
                else:
                    break
            yield DONE
        finally:  # also when the client disconnects: the stream is cancelled here
            queue().abandon(job)

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],
        )
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    return app


def _timeout_message(config: ServeConfig) -> str:
    return f"the request took longer than {config.request_timeout_s:g} s (serve.request_timeout_s)"


def _warm_up(pipeline: Pipeline) -> None:
    """Load what the first request would otherwise wait for: the LLM (its tokenizer), the query encoder and
    the reranker (one search)."""
    pipeline.llm.count_tokens("warm up")
    pipeline.search("warm up", k=1)
