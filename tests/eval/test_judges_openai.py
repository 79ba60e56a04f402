"""Judges through the OpenAI-compatible backend (rag.llm ``openai``), against a local stub server: the
request carries the JSON schema as ``response_format`` and the verdict comes back parsed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from eval.judges.faithfulness import FaithfulnessJudge
from rag.config import LLMConfig
from rag.llm import create_llm
from tests.eval.judge_fakes import chat_stub_server

REPLY = {"sentences": [{"verdict": "supported", "note": ""}, {"verdict": "unsupported", "note": "no 22:00"}]}


@pytest.fixture()
def stub_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with chat_stub_server(lambda body: {"content": json.dumps(REPLY)}) as served:
        yield served


def test_faithfulness_judge_over_an_openai_compatible_endpoint(stub_server: tuple[str, list[dict[str, Any]]]) -> None:
    base_url, requests = stub_server
    llm = create_llm(LLMConfig(backend="openai", base_url=base_url, model="judge-model", max_retries=0, timeout_s=10))
    r = FaithfulnessJudge(llm, granularity="sentences").judge(
        "The office opens at 07:00. It closes at 22:00.", ["Open 07:00 to 20:00."]
    )
    assert r.status == "ok" and r.score == 0.5 and r.details["unsupported"] == ["It closes at 22:00."]
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (50, 20)
    fmt = requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["properties"]["sentences"]["minItems"] == 2
    assert requests[0]["temperature"] == 0.0 and requests[0]["model"] == "judge-model"
