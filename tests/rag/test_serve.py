"""``rag serve`` with FastAPI's test client, a real index (real embedding model) and a scripted LLM: response
shapes, errors, auth, limits, reports, index reloads; then the queue, cancellation and deadlines on a real
uvicorn server (the test client cannot disconnect mid-stream)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from serve_helpers import LiveServer, PacedLLM, sse_events, wait_for

from rag.config import AnswerConfig, PipelineConfig, RerankConfig, ServeConfig
from rag.errors import ConfigError
from rag.pipeline import Pipeline
from rag.serve import create_app
from rag.serve.generation import Cancelled, GenerationQueue, QueueFull

REPLY = "The Kestrel K7 reaches 14 km/h [1]."
QUESTION = "What is the top speed of the Kestrel K7?"
CONFIG = PipelineConfig(rerank=RerankConfig(model=None), answer=AnswerConfig(gate=False))


def _pipeline(index_dir: Path, llm: PacedLLM | None = None) -> Pipeline:
    return Pipeline.from_config(CONFIG, index_dir=index_dir, llm=llm or PacedLLM(reply=REPLY))


def _chat(question: str = QUESTION, **extra) -> dict:
    return {"model": "ragtrail", "messages": [{"role": "user", "content": question}], **extra}


@pytest.fixture
def client(query_index: Path):
    with TestClient(create_app(_pipeline(query_index), ServeConfig())) as c:
        yield c


def _no_traceback(response: httpx.Response) -> None:
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_health_models_and_page(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["ragtrail"]
    assert models["data"][0]["object"] == "model"
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'sha256-" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert '<textarea id="question"' in page.text


def test_chat_completion_shape_with_sources(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json=_chat())
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-") and data["model"] == "ragtrail"
    (choice,) = data["choices"]
    assert choice["message"] == {"role": "assistant", "content": REPLY} and choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["completion_tokens"] > 0 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    (source,) = data["sources"]
    assert source["number"] == 1 and source["source"] == "kestrel.md" and source["page"] is None
    assert source["chunk_id"] and {"bm25", "dense", "fusion"} <= set(source["scores"])
    assert "14 km/h" in source["text"] and source["highlights"]
    start, end = source["highlights"][0]
    assert " ".join(source["text"][start:end].split()) in source["excerpt"]
    info = data["ragtrail"]
    assert info["answer"] == REPLY and not info["refused"] and info["query"] == QUESTION
    assert info["generation"].startswith("gen-") and info["timings_ms"]["total"] > 0


def test_chat_streams_openai_chunks_ending_in_done(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json=_chat(stream=True, stream_options={"include_usage": True}))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == REPLY
    final = next(c for c in chunks if "ragtrail" in c)
    assert final["choices"][0]["finish_reason"] == "stop" and final["choices"][0]["delta"] == {}
    assert [s["source"] for s in final["sources"]] == ["kestrel.md"] and final["ragtrail"]["answer"] == REPLY
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_follow_up_history_reaches_the_pipeline(query_index: Path) -> None:
    llm = PacedLLM(reply=REPLY, rewrite="How fast is the Kestrel K7?")
    with TestClient(create_app(_pipeline(query_index, llm), ServeConfig())) as c:
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the Kestrel K7?"},
            {"role": "assistant", "content": "A delivery robot [1]."},
            {"role": "user", "content": [{"type": "text", "text": "and how fast is it?"}]},
        ]
        data = c.post("/v1/chat/completions", json={"model": "ragtrail", "messages": messages}).json()
    info = data["ragtrail"]
    assert info["followup"]["cue"] == "opens with 'and'" and info["followup"]["rewritten"]
    assert info["query"] == "How fast is the Kestrel K7?"  # searched for the rewrite, answered the question
    answer_prompt = llm.seen[-1]
    assert [m["role"] for m in answer_prompt] == ["system", "user", "assistant", "user"]
    assert answer_prompt[1]["content"] == "What is the Kestrel K7?" and "Be brief" not in json.dumps(answer_prompt)
    assert "Question: and how fast is it?" in answer_prompt[-1]["content"]


def test_an_answer_cut_at_the_token_limit_finishes_with_length(query_index: Path) -> None:
    config = CONFIG.replace(answer=AnswerConfig(gate=False, answer_tokens=4))
    pipeline = Pipeline.from_config(config, index_dir=query_index, llm=PacedLLM(reply=REPLY))
    with TestClient(create_app(pipeline, ServeConfig())) as c:
        assert c.post("/v1/chat/completions", json=_chat()).json()["choices"][0]["finish_reason"] == "length"
        events = sse_events(c.post("/v1/chat/completions", json=_chat(stream=True)).text)
        final = next(json.loads(e) for e in events[:-1] if "ragtrail" in json.loads(e))
        assert final["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ("{not json", 400, "not valid JSON"),
        ({"model": "ragtrail"}, 400, "messages: Field required"),
        ({"model": "ragtrail", "messages": []}, 400, "messages: List should have at least 1 item"),
        ({"model": "ragtrail", "messages": [{"role": "robot", "content": "hi"}]}, 400, "messages[0].role"),
        ({"model": "ragtrail", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "must be the user's"),
        ({"model": "ragtrail", "messages": [{"role": "user", "content": "   "}]}, 400, "question"),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, 404, "no model 'gpt-4o'"),
        ({**_chat(), "n": 2}, 400, "only n=1"),
        (
            {"model": "ragtrail", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            400,
            "only text content parts",
        ),
    ],
)
def test_chat_request_errors_are_clear_json(client: TestClient, body, status: int, needle: str) -> None:
    if isinstance(body, str):
        r = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    else:
        r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert needle in error["message"] and error["type"] in ("invalid_request_error",)
    _no_traceback(r)


def test_unknown_routes_and_methods_are_json(client: TestClient) -> None:
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and "no such endpoint: GET /v1/nothing" in r.json()["error"]["message"]
    r = client.get("/v1/chat/completions")
    assert r.status_code == 405 and "GET is not allowed" in r.json()["error"]["message"]


def test_search_has_the_rag_search_json_shape(client: TestClient, query_index: Path, capsys) -> None:
    from rag.cli import main

    r = client.post("/v1/search", json={"query": "revenue 2025", "k": 3, "mode": "bm25"})
    assert r.status_code == 200, r.text
    data = r.json()
    argv = ["search", "revenue 2025", "--index", str(query_index), "--top-k", "3", "--mode", "bm25", "--json"]
    assert main(argv) == 0
    cli = json.loads(capsys.readouterr().out)
    assert set(data) == set(cli) and data["mode"] == "bm25"
    assert [h["id"] for h in data["hits"]] == [h["id"] for h in cli["hits"]]
    assert set(data["hits"][0]) == set(cli["hits"][0]) and data["hits"][0]["source"] == "report.pdf"
    filtered = client.post("/v1/search", json={"query": "Kestrel", "source": ["office/*"]}).json()
    assert filtered["hits"] and {h["source"] for h in filtered["hits"]} <= {"office/cafeteria.txt", "office/plants.md"}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"query": ""}, "query: String should have at least 1 character"),
        ({"query": "x", "k": 101}, "k must be at most 100"),
        ({"query": "x", "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"query": "x", "mode": "magic"}, "mode: Input should be 'bm25', 'dense' or 'hybrid'"),
        ({"query": "x", "limit": 3}, "limit: Extra inputs are not permitted"),
        ({"query": "x", "rerank": True}, "reranking was requested but is off"),
    ],
)
def test_search_errors(client: TestClient, body: dict, needle: str) -> None:
    r = client.post("/v1/search", json=body)
    assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text


def test_index_stats_have_the_rag_index_stats_shape(client: TestClient, query_index: Path) -> None:
    from ingest.stats import index_stats

    data = client.get("/v1/index").json()
    expected = index_stats(query_index)
    assert {k: v for k, v in data.items() if k != "server"} == expected
    assert data["server"]["queue"]["max_waiting"] == 4 and data["server"]["reloads"] == 0


def test_bearer_auth(query_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGTRAIL_TEST_KEY", "s3cret-key")
    app = create_app(_pipeline(query_index), ServeConfig(api_key_env="RAGTRAIL_TEST_KEY"))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-key"}):
            for method, path in (("GET", "/v1/models"), ("POST", "/v1/search"), ("POST", "/v1/chat/completions")):
                r = c.request(method, path, headers=headers, json={"query": "x"})
                assert r.status_code == 401, (method, path, headers)
                assert r.headers["www-authenticate"] == "Bearer" and "API key" in r.json()["error"]["message"]
        ok = {"Authorization": "Bearer s3cret-key"}
        assert c.get("/v1/models", headers=ok).status_code == 200
        assert c.post("/v1/chat/completions", json=_chat(), headers=ok).status_code == 200
    monkeypatch.delenv("RAGTRAIL_TEST_KEY")
    with pytest.raises(ConfigError, match="RAGTRAIL_TEST_KEY"):
        create_app(_pipeline(query_index), ServeConfig(api_key_env="RAGTRAIL_TEST_KEY"))


def test_request_bodies_over_the_cap_are_refused(query_index: Path) -> None:
    with TestClient(create_app(_pipeline(query_index), ServeConfig(max_body_bytes=300))) as c:
        big = _chat("x" * 400)
        r = c.post("/v1/chat/completions", json=big)
        assert r.status_code == 413 and "larger than 300 bytes" in r.json()["error"]["message"]
        chunked = c.post(
            "/v1/search",
            content=iter([b'{"query": "', b"y" * 400, b'"}']),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413
        assert c.post("/v1/search", json={"query": "Kestrel"}).status_code == 200


def test_cors_is_off_unless_configured(query_index: Path) -> None:
    origin = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(_pipeline(query_index), ServeConfig())) as c:
        assert "access-control-allow-origin" not in c.get("/v1/models", headers=origin).headers
    config = ServeConfig(cors_origins=("http://localhost:3000",))
    with TestClient(create_app(_pipeline(query_index), config)) as c:
        r = c.options("/v1/chat/completions", headers=origin)
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        other = c.get("/v1/models", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_reports_are_listed_newest_first_and_served_sandboxed(query_index: Path, tmp_path: Path) -> None:
    for i, name in enumerate(["eval-old", "eval-new"]):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.html").write_text(f"<h1>{name}</h1>", encoding="utf-8")
        os.utime(tmp_path / name / "report.html", (1_700_000_000 + i, 1_700_000_000 + i))
    (tmp_path / "no-report").mkdir()
    (tmp_path / "secret.txt").write_text("x", encoding="utf-8")
    with TestClient(create_app(_pipeline(query_index), ServeConfig(reports_dir=str(tmp_path)))) as c:
        listing = c.get("/v1/reports").json()["reports"]
        assert [r["name"] for r in listing] == ["eval-new", "eval-old"] and listing[0]["url"] == "/reports/eval-new"
        r = c.get("/reports/eval-new")
        assert r.status_code == 200 and "<h1>eval-new</h1>" in r.text
        assert r.headers["content-security-policy"].startswith("sandbox")
        for bad in ("no-report", "secret.txt", "%2e%2e%2fsecret.txt", ".hidden"):
            assert c.get(f"/reports/{bad}").status_code == 404, bad


def _ingest(folder: Path, index_dir: Path) -> None:
    from ingest.pipeline import ingest

    report = ingest(folder, index_dir=index_dir, config=PipelineConfig())
    assert report.exit_code == 0, report.to_dict()


def test_a_new_generation_is_picked_up_without_a_restart(tmp_path: Path, query_corpus: Path, embedder) -> None:
    folder, index_dir = tmp_path / "docs", tmp_path / "ix"
    shutil.copytree(query_corpus, folder)
    _ingest(folder, index_dir)
    with TestClient(create_app(_pipeline(index_dir), ServeConfig())) as c:
        before = c.get("/v1/index").json()
        hits = c.post("/v1/search", json={"query": "heron migration wetlands", "mode": "bm25"}).json()["hits"]
        assert "birds.md" not in {h["source"] for h in hits}
        (folder / "birds.md").write_text("Grey herons migrate to the wetlands every October.\n", encoding="utf-8")
        _ingest(folder, index_dir)
        hits = c.post("/v1/search", json={"query": "heron migration wetlands", "mode": "bm25"}).json()["hits"]
        assert hits[0]["source"] == "birds.md"
        after = c.get("/v1/index").json()
        assert after["generation"] != before["generation"] and after["documents"] == before["documents"] + 1
        assert after["server"]["reloads"] == 1
        answer = c.post("/v1/chat/completions", json=_chat("When do grey herons migrate?")).json()
        assert answer["ragtrail"]["generation"] == after["generation"]
        # a published generation that cannot be read: the server keeps answering from the one it has
        broken = index_dir / "gen-99990101T000000-broken"
        broken.mkdir()
        (broken / "manifest.json").write_text("{not json", encoding="utf-8")
        current = (index_dir / "CURRENT").read_text(encoding="utf-8")
        (index_dir / "CURRENT").write_text(broken.name + "\n", encoding="utf-8")
        try:
            r = c.post("/v1/search", json={"query": "heron", "mode": "bm25"})
            assert r.status_code == 200 and r.json()["hits"][0]["source"] == "birds.md"
            stats = c.get("/v1/index").json()
            assert stats["generation"] == after["generation"]
            assert "not valid JSON" in stats["server"]["failed_generations"][broken.name]
        finally:
            (index_dir / "CURRENT").write_text(current, encoding="utf-8")


# ---- the queue on its own --------------------------------------------------------------------------


def test_generation_queue_runs_one_job_at_a_time_and_refuses_beyond_its_places() -> None:
    async def scenario() -> None:
        queue = GenerationQueue(1, typical_s=7.2)
        gate = threading.Event()
        order: list[str] = []

        def work(name: str):
            def run(on_token):
                order.append(f"start {name}")
                gate.wait(5)
                on_token("x")
                order.append(f"end {name}")
                return name

            return run

        first = queue.submit(work("a"))
        second = queue.submit(work("b"))
        with pytest.raises(QueueFull) as full:
            queue.submit(work("c"))
        assert full.value.retry_after == 8 and queue.rejected == 1
        await asyncio.sleep(0.05)
        assert queue.running == 1 and queue.waiting == 1 and order == ["start a"]
        gate.set()
        deadline = asyncio.get_running_loop().time() + 5
        events = [await first.next_event(deadline=deadline), await first.next_event(deadline=deadline)]
        assert [(e.kind, e.value) for e in events if e] == [("token", "x"), ("done", "a")]
        assert (await second.next_event(deadline=deadline)).kind == "token"
        assert (await second.next_event(deadline=deadline)).value == "b"
        await asyncio.sleep(0.01)
        assert order == ["start a", "end a", "start b", "end b"] and queue.completed == 2
        assert queue.waiting == 0 and queue.running == 0
        await queue.drain()

    asyncio.run(scenario())


def test_abandoned_jobs_free_their_place_and_stop_at_the_next_token() -> None:
    async def scenario() -> None:
        queue = GenerationQueue(1)
        started = threading.Event()
        tokens: list[int] = []

        def long_job(on_token):
            started.set()
            for i in range(500):
                time.sleep(0.01)
                on_token(str(i))
                tokens.append(i)
            return "finished"

        running = queue.submit(long_job)
        waiting = queue.submit(lambda on_token: "never")
        await asyncio.to_thread(started.wait, 5)
        queue.abandon(waiting)  # leaves the queue without running
        await asyncio.sleep(0.01)
        assert queue.waiting == 0 and queue.cancelled == 1
        queue.submit(lambda on_token: "fits again").cancel()
        queue.abandon(running)
        deadline = asyncio.get_running_loop().time() + 5
        kinds = []
        while (event := await running.next_event(deadline=deadline)) is not None and event.kind == "token":
            kinds.append(event.kind)
        assert event is not None and event.kind == "cancelled" and len(tokens) < 100
        await queue.drain()
        assert queue.completed == 0

    asyncio.run(scenario())


def test_cancelled_raises_inside_the_worker_not_the_event_loop() -> None:
    async def scenario() -> None:
        queue = GenerationQueue(0)
        seen: list[BaseException] = []

        def job(on_token):
            job_handle.cancel()
            try:
                on_token("x")
            except Cancelled as e:
                seen.append(e)
                raise
            return "unreachable"

        job_handle = queue.submit(job)
        event = await job_handle.next_event(deadline=asyncio.get_running_loop().time() + 5)
        assert event is not None and event.kind == "cancelled" and len(seen) == 1
        await queue.drain()

    asyncio.run(scenario())


def test_a_cancel_that_comes_after_the_last_token_does_not_count_as_one() -> None:
    """A client that leaves once it has its answer (a stream's ``finally`` abandons the job as soon as the last
    event is read, possibly before the worker's future resolves) cancels nothing: the job counts as completed
    and its duration feeds Retry-After."""

    async def scenario() -> None:
        queue = GenerationQueue(0, typical_s=99.0)

        def job(on_token):
            on_token("x")
            handle.cancel()  # the client is gone, but no token is left for the cancel to stop
            return "answer"

        handle = queue.submit(job)
        deadline = asyncio.get_running_loop().time() + 5
        kinds = []
        while (event := await handle.next_event(deadline=deadline)) is not None:
            kinds.append(event.kind)
            if event.kind != "token":
                break
        queue.abandon(handle)
        await queue.drain()
        assert kinds == ["token", "done"] and handle.outcome == "done"
        assert (queue.completed, queue.cancelled) == (1, 0) and queue.retry_after() == 1

    asyncio.run(scenario())


# ---- on a real server: concurrency, disconnects, deadlines ----------------------------------------


def test_queue_full_is_a_429_with_retry_after(query_index: Path) -> None:
    llm = PacedLLM(reply=" ".join(["word"] * 40), delay=0.05)
    app = create_app(_pipeline(query_index, llm), ServeConfig(max_queue=1))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        results: list[httpx.Response] = []
        threads = [
            threading.Thread(target=lambda: results.append(http.post("/v1/chat/completions", json=_chat())))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
            time.sleep(0.2)  # the first is generating, the second waits
        r = http.post("/v1/chat/completions", json=_chat())
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limit_error" and "max_queue=1" in r.json()["error"]["message"]
        for t in threads:
            t.join()
        assert [x.status_code for x in results] == [200, 200] and llm.max_running == 1


def test_a_client_that_disconnects_mid_stream_cancels_its_generation(query_index: Path) -> None:
    llm = PacedLLM(reply=" ".join(f"w{i}" for i in range(300)), delay=0.02)
    app = create_app(_pipeline(query_index, llm), ServeConfig())
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions", json=_chat(stream=True)) as r:
            for line in r.iter_lines():
                if '"content":"w' in line:
                    break  # leave after the first word
        wait_for(lambda: llm.closed_early, what="the stream to be closed")
        assert llm.closed_early == [True] and llm.yielded[0] < 100
        # the model is free again
        llm.reply, llm.delay = REPLY, 0.0
        assert http.post("/v1/chat/completions", json=_chat()).json()["choices"][0]["message"]["content"] == REPLY
        stats = http.get("/v1/index").json()["server"]["queue"]
        assert stats["cancelled"] == 1 and stats["running"] == 0


def test_a_non_streaming_client_that_gives_up_cancels_too(query_index: Path) -> None:
    llm = PacedLLM(reply=" ".join(f"w{i}" for i in range(300)), delay=0.02)
    app = create_app(_pipeline(query_index, llm), ServeConfig())
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v1/chat/completions", json=_chat(), timeout=1.0)
        wait_for(lambda: llm.closed_early, what="the stream to be closed")
        assert llm.closed_early == [True] and llm.yielded[0] < 150


def test_deadlines_and_backend_failures(query_index: Path) -> None:
    llm = PacedLLM(reply=" ".join(f"w{i}" for i in range(300)), delay=0.02)
    app = create_app(_pipeline(query_index, llm), ServeConfig(request_timeout_s=1.0))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/v1/chat/completions", json=_chat())
        assert r.status_code == 504 and "serve.request_timeout_s" in r.json()["error"]["message"]
        wait_for(lambda: len(llm.closed_early) == 1, what="the timed-out stream to stop")
        streamed = http.post("/v1/chat/completions", json=_chat(stream=True))
        events = sse_events(streamed.text)
        assert events[-1] == "[DONE]" and json.loads(events[-2])["error"]["code"] == "timeout"
        wait_for(lambda: len(llm.closed_early) == 2, what="the second stream to stop")
        assert llm.closed_early == [True, True]
        llm.fail = True
        r = http.post("/v1/chat/completions", json=_chat())
        assert r.status_code == 502 and "the backend is down" in r.json()["error"]["message"]
        _no_traceback(r)
        events = sse_events(http.post("/v1/chat/completions", json=_chat(stream=True)).text)
        assert json.loads(events[-2])["error"]["code"] == "generation_failed" and events[-1] == "[DONE]"


def test_rag_serve_command_line(query_index: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from rag.cli import main

    calls: list[dict] = []
    configs: list[ServeConfig] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    monkeypatch.setattr("rag.serve.create_app", lambda pipeline, config: configs.append(config) or "app")
    argv = ["serve", "--index", str(query_index), "--port", "8123", "--max-queue", "2", "--timeout", "30"]
    assert main([*argv, "--cors-origin", "http://localhost:3000"]) == 0
    (call,) = calls
    assert call["app"] == "app" and call["host"] == "127.0.0.1" and call["port"] == 8123
    assert configs == [
        ServeConfig(port=8123, max_queue=2, request_timeout_s=30.0, cors_origins=("http://localhost:3000",))
    ]
    err = capsys.readouterr().err
    assert "http://127.0.0.1:8123/v1" in err and "warning" not in err
    monkeypatch.delenv("RAGTRAIL_UNSET_KEY", raising=False)
    assert main([*argv, "--api-key-env", "RAGTRAIL_UNSET_KEY"]) == 2
    assert "RAGTRAIL_UNSET_KEY" in capsys.readouterr().err and len(calls) == 1
    assert main([*argv, "--host", "0.0.0.0"]) == 0
    assert "without --api-key-env: anyone who can reach this port" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--timeout", "0"])


@pytest.mark.llm
@pytest.mark.slow
def test_the_local_model_stream_closed_mid_answer_leaves_the_model_free_and_unchanged(local_llm) -> None:
    messages = [{"role": "user", "content": "List the first ten prime numbers, separated by commas."}]
    full = local_llm.complete(messages, max_tokens=32).text
    stream = local_llm.stream(messages, max_tokens=32)
    first = [next(stream), next(stream)]
    stream.close()  # what a cancelled request does (Pipeline._generate closes the stream)
    assert full.startswith("".join(first))
    done = threading.Event()
    threading.Thread(target=lambda: (local_llm.count_tokens("free?"), done.set()), daemon=True).start()
    assert done.wait(10), "the model's lock was not released"
    assert local_llm.complete(messages, max_tokens=32).text == full
