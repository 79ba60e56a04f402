"""The official ``openai`` client against ``rag serve`` on a real uvicorn server (scripted LLM): models, a
completion, a stream, a conversation, and the errors the client raises for our 401/404/429."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import openai
import pytest
from serve_helpers import LiveServer, PacedLLM

from rag.config import AnswerConfig, PipelineConfig, RerankConfig, ServeConfig
from rag.pipeline import Pipeline
from rag.serve import create_app

REPLY = "The Kestrel K7 reaches 14 km/h [1]."
KEY = "test-key-0123456789"


@pytest.fixture(scope="module")
def server(query_index: Path):
    import os

    os.environ["RAGTRAIL_OPENAI_TEST_KEY"] = KEY
    llm = PacedLLM(reply=REPLY, rewrite="How fast is the Kestrel K7?", delay=0.01)
    config = PipelineConfig(rerank=RerankConfig(model=None), answer=AnswerConfig(gate=False))
    pipeline = Pipeline.from_config(config, index_dir=query_index, llm=llm)
    app = create_app(pipeline, ServeConfig(api_key_env="RAGTRAIL_OPENAI_TEST_KEY", max_queue=0))
    try:
        with LiveServer(app) as live:
            live.llm = llm  # type: ignore[attr-defined]
            yield live
    finally:
        del os.environ["RAGTRAIL_OPENAI_TEST_KEY"]


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=30)


def test_models_list(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["ragtrail"]


def test_completion(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="ragtrail", messages=[{"role": "user", "content": "What is the top speed of the Kestrel K7?"}]
    )
    assert out.object == "chat.completion" and out.choices[0].message.content == REPLY
    assert out.choices[0].finish_reason == "stop" and out.usage is not None and out.usage.completion_tokens > 0
    extra = out.model_extra or {}
    assert [s["source"] for s in extra["sources"]] == ["kestrel.md"] and extra["sources"][0]["number"] == 1
    assert extra["ragtrail"]["answer"] == REPLY


def test_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="ragtrail",
        messages=[{"role": "user", "content": "What is the top speed of the Kestrel K7?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY and len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    final = next(c for c in chunks if (c.model_extra or {}).get("sources") is not None)
    assert final.choices[0].finish_reason == "stop" and final.model_extra["sources"][0]["source"] == "kestrel.md"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_conversation_with_a_follow_up(client: openai.OpenAI, server) -> None:
    out = client.chat.completions.create(
        model="ragtrail",
        messages=[
            {"role": "user", "content": "What is the Kestrel K7?"},
            {"role": "assistant", "content": "A delivery robot built by Zarnok Robotics [1]."},
            {"role": "user", "content": "How fast is it?"},
        ],
    )
    followup = (out.model_extra or {})["ragtrail"]["followup"]
    assert followup["cue"] == "refers back with 'it'" and followup["rewritten"]
    assert followup["query"] == "How fast is the Kestrel K7?"
    assert server.llm.seen[-1][1]["content"] == "What is the Kestrel K7?"


def test_errors_the_client_understands(client: openai.OpenAI, server) -> None:
    question = [{"role": "user", "content": "What is the top speed of the Kestrel K7?"}]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError, match="no model 'gpt-4o'"):
        client.chat.completions.create(model="gpt-4o", messages=question)
    with pytest.raises(openai.BadRequestError, match="last message must be the user's"):
        client.chat.completions.create(model="ragtrail", messages=[{"role": "assistant", "content": "hi"}])
    # max_queue 0: while one answer streams, a second request is turned away with Retry-After
    server.llm.delay = 0.2
    try:
        stream = client.chat.completions.create(model="ragtrail", messages=question, stream=True)
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        time.sleep(0.3)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="ragtrail", messages=question)
        assert int(refused.value.response.headers["retry-after"]) >= 1
        done = threading.Event()
        threading.Thread(target=lambda: (list(stream), done.set()), daemon=True).start()
        assert done.wait(30)
    finally:
        server.llm.delay = 0.01
