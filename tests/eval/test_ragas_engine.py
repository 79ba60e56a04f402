"""ragas run offline on a tiny input: a deterministic fake LLM behind the project's LLM protocol, wrapped
through ragas' own interfaces (BaseRagasLLM, LangchainEmbeddingsWrapper), with the real MiniLM embedder.
The fake answers by the output schema ragas embeds in each prompt, which also proves the adapter
extracts that schema and passes it on as ``json_schema`` (constrained decoding on the real model)."""

from __future__ import annotations

from typing import Any

import pytest

from eval.judges.base import EvalSample
from eval.ragas_engine import compare, run_ragas, schema_from_prompt
from tests.eval.judge_fakes import FakeCompletion, FakeLLM


class SchemaFake(FakeLLM):
    def complete(self, messages: Any, **kwargs: Any) -> FakeCompletion:
        self.calls.append({"messages": list(messages), **kwargs})
        title = (kwargs.get("json_schema") or {}).get("title")
        text = messages[-1]["content"]
        if title == "StatementGeneratorOutput":
            reply: dict[str, Any] = {"statements": ["Leeds is the headquarters.", "It opens at 07:00."]}
        elif title == "NLIStatementOutput":
            reply = {
                "statements": [
                    {"statement": "Leeds is the headquarters.", "reason": "stated", "verdict": 1},
                    {
                        "statement": "It opens at 07:00.",
                        "reason": "not stated" if "09:00" in text else "stated",
                        "verdict": 0 if "09:00" in text else 1,
                    },
                ]
            }
        elif title == "ResponseRelevanceOutput":
            reply = {"question": "Where is the headquarters and when does it open?", "noncommittal": 0}
        elif title == "Verification":
            reply = {"reason": "useful", "verdict": 1}
        else:
            raise AssertionError(f"unexpected ragas prompt (schema title {title!r})")
        import json

        return FakeCompletion(json.dumps(reply))


def test_schema_is_extracted_from_a_ragas_prompt() -> None:
    text = (
        "Do X.\nPlease return the output in a JSON format that complies with the following schema as "
        'specified in JSON Schema:\n{"title": "T", "type": "object"}Do not use single quotes'
    )
    assert schema_from_prompt(text) == {"title": "T", "type": "object"}
    assert schema_from_prompt("no schema here") is None


def test_ragas_runs_offline_through_its_wrappers(embedder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")  # any attempt to build an OpenAI client would fail loudly
    samples = [
        EvalSample(
            id="1",
            question="Where is the headquarters and when does it open?",
            answer="The headquarters is in Leeds. It opens at 07:00.",
            contexts=("The headquarters is at 12 Canal Wharf, Leeds. Open 07:00 to 20:00.",),
        ),
        EvalSample(
            id="2",
            question="Where is the headquarters and when does it open?",
            answer="The headquarters is in Leeds. It opens at 09:00.",
            contexts=("The headquarters is at 12 Canal Wharf, Leeds. Open 07:00 to 20:00. 09:00",),
        ),
    ]
    llm = SchemaFake()
    scores, usage = run_ragas(samples, llm, embedder)
    assert [s["faithfulness"] for s in scores] == [1.0, 0.5]
    assert all(s["answer_relevancy"] is not None and s["answer_relevancy"] > 0.9 for s in scores)
    assert all(s["context_precision"] == pytest.approx(1.0, abs=1e-6) for s in scores)
    assert usage.calls == len(llm.calls) > 0
    assert all(c["json_schema"] and c["json_schema"].get("title") for c in llm.calls)
    diff = compare(["1", "2"], scores, {"faithfulness": {"1": 1.0, "2": 1.0}})
    assert diff["faithfulness"]["n_both"] == 2 and diff["faithfulness"]["mean_abs_diff"] == pytest.approx(0.25)
    assert [d["item_id"] for d in diff["faithfulness"]["differ"]] == ["2"]
