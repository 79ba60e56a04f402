"""The suite runner (eval.answers) and the CLI plumbing of `rag eval faithfulness` / `rag eval pairwise`
(rag.commands.eval_answers) on fakes."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest

from eval.answers import load_suite, produce_answers, run_suite
from eval.judges.base import EvalSample
from eval.judges.faithfulness import FaithfulnessJudge
from rag.commands.eval_answers import run_pairwise_command, run_suite_command
from rag.errors import EvalDataError
from tests.eval.judge_fakes import FakeLLM


def test_sample_suite_is_valid(repo_root: Path) -> None:
    items = load_suite(repo_root / "data" / "sample_questions.jsonl")
    assert 6 <= len(items) <= 10 and all(it.reference for it in items)
    assert sum("not in the documents" in (it.reference or "") for it in items) in (1, 2)
    assert any(it.domain == "math" for it in items)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"answer": "x"}', "non-empty 'question'"),
        ('{"question": "q", "contexts": "c"}', "list of strings"),
        ('{"question": "q", "domain": "poetry"}', "domain"),
        ("{oops", "invalid JSON"),
    ],
)
def test_suite_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    p = tmp_path / "s.jsonl"
    p.write_text('{"question": "fine"}\n' + line + "\n")
    with pytest.raises(EvalDataError, match=message) as e:
        load_suite(p)
    assert ":2:" in str(e.value)


def test_missing_answers_are_produced_and_errors_excluded_from_means(tmp_path: Path) -> None:
    items = [
        EvalSample(id="1", question="q1", answer="given", contexts=("c",)),
        EvalSample(id="2", question="q2", answer=""),
    ]
    filled = produce_answers(items, lambda q: (f"answer to {q}", ["ctx"]))
    assert filled[0].answer == "given" and filled[1].answer == "answer to q2" and filled[1].contexts == ("ctx",)
    good = {"claims": [{"claim": "x", "evidence": "x", "verdict": "supported"}]}
    llm = FakeLLM(respond=lambda m: good if "given" in m[-1]["content"] else "garbage")
    result = run_suite(filled, [FaithfulnessJudge(llm)])
    s = result.summary()["faithfulness"]
    assert (s["mean"], s["n_ok"], s["errors"]) == (1.0, 1, 1) and s["tokens_per_item"] > 0


def _args(**kw: Any) -> argparse.Namespace:
    base = {"config": None, "index": None, "out": None, "json": False, "max_retries": 0, "llm_threads": None}
    return argparse.Namespace(**{**base, **kw})


def respond(messages: list[dict[str, str]]) -> dict[str, Any]:
    """Canned verdicts for the faithfulness, answer-relevance and context-relevance judges."""
    system = messages[0]["content"]
    if "fact-checker" in system:
        return {"claims": [{"claim": "It opens at 8.", "evidence": "Open from 8", "verdict": "supported"}]}
    if "questions" in system:
        return {"questions": ["When does it open?"] * 3, "noncommittal": False}
    return {"passages": [{"passage": 1, "reason": "hours", "useful": True}]}


def test_suite_command_writes_every_report_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "suite.jsonl"
    suite.write_text(
        json.dumps(
            {
                "id": "a",
                "question": "When does it open?",
                "answer": "At 8.",
                "contexts": ["Open from 8."],
                "reference": "8:00",
            }
        )
        + "\n"
    )

    from rag.config import PipelineConfig

    fake = FakeLLM(respond=respond)
    rc = run_suite_command(
        _args(suite=str(suite), judges=["faithfulness", "context_relevance"], out=str(tmp_path / "out")),
        llm_factory=lambda a: (PipelineConfig(), fake),
        progress=False,
    )
    assert rc == 0
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"summary.json", "items.jsonl", "answers.jsonl", "report.html"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faithfulness"]["mean"] == 1.0 and summary["context_relevance"]["mean"] == 1.0
    assert "<img" in (out / "report.html").read_text() and "faithfulness" in capsys.readouterr().out

    a = out / "answers.jsonl"
    b = tmp_path / "b.jsonl"
    b.write_text(json.dumps({"id": "a", "question": "When does it open?", "answer": "No idea."}) + "\n")
    judge_llm = FakeLLM([{"explanation": "first is better", "winner": "first"}])
    rc = run_pairwise_command(
        _args(a=str(a), b=str(b), length_control=True, out=str(tmp_path / "pw")),
        llm_factory=lambda args: (None, judge_llm),
        progress=False,
    )
    pw = json.loads((tmp_path / "pw" / "summary.json").read_text())
    assert rc == 0 and pw["ties"] == 1 and pw["position_consistency"] == 0.0 and pw["first_position_preference"] == 1.0


def test_absent_answers_come_from_the_real_pipeline(repo_root: Path, tmp_path: Path, embedder: Any) -> None:
    """Retrieval is real (data/sample ingested with MiniLM); only the generating LLM is a fake."""
    from eval.answers import pipeline_asker
    from ingest.pipeline import ingest
    from rag.config import PipelineConfig, RerankConfig

    config = PipelineConfig(rerank=RerankConfig(model=None))
    ingest(repo_root / "data" / "sample", index_dir=tmp_path / "index", config=config)
    llm = FakeLLM(["Full-time employees get 27 days [1]."])
    items = load_suite(repo_root / "data" / "sample_questions.jsonl")[:1]
    filled = produce_answers(items, pipeline_asker(config, str(tmp_path / "index"), llm))
    assert filled[0].answer.startswith("Full-time employees get 27 days")
    assert filled[0].contexts and any("27 days" in c for c in filled[0].contexts)


def test_suite_command_runs_the_faithbench_variant_of_the_faithfulness_judge(tmp_path: Path) -> None:
    """--granularity sentences --logprobs K: the judge measured on FaithBench (sentence verdicts with word
    hints, log-probabilities asked for) is the one the suite runs."""
    suite = tmp_path / "suite.jsonl"
    row = {"id": "a", "question": "When?", "answer": "It opens at 8. It closes at 9.", "contexts": ["Open from 8."]}
    suite.write_text(json.dumps(row) + "\n")
    verdicts = {"sentences": [{"verdict": "supported", "note": ""}, {"verdict": "unsupported", "note": "9"}]}
    fake = FakeLLM([verdicts])
    from rag.config import PipelineConfig

    rc = run_suite_command(
        _args(
            suite=str(suite), judges=["faithfulness"], out=str(tmp_path / "out"), granularity="sentences", logprobs=5
        ),
        llm_factory=lambda a: (PipelineConfig(), fake),
        progress=False,
    )
    assert rc == 0
    (call,) = fake.calls
    assert call["top_logprobs"] == 5 and "words not in the CONTEXT: closes, 9" in call["messages"][-1]["content"]
    (item,) = [json.loads(line) for line in (tmp_path / "out" / "items.jsonl").read_text().splitlines()]
    assert item["details"]["granularity"] == "sentences" and item["details"]["unsupported"] == ["It closes at 9."]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["faithfulness"]["mean"] == 0.5


def test_default_judges_include_likelihood_only_where_the_backend_scores_given_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], embedder: Any
) -> None:
    from rag.config import PipelineConfig
    from rag.llm import TokenScores

    suite = tmp_path / "suite.jsonl"
    row = {"id": "a", "question": "When does it open?", "answer": "At 8.", "contexts": ["Open from 8."]}
    suite.write_text(json.dumps(row) + "\n")

    class Scoring(FakeLLM):
        def score_continuation(self, messages: Any, continuation: str) -> TokenScores:
            assert "Question: When does it open?" in messages[-1]["content"] and continuation == "At 8."
            return TokenScores([" At", " 8", "."], [-0.2, -0.1, -0.3], prompt_tokens=30)

    def run(llm: FakeLLM, out: str) -> dict[str, Any]:
        rc = run_suite_command(
            _args(suite=str(suite), judges=None, out=str(tmp_path / out)),
            llm_factory=lambda a: (PipelineConfig(), llm),
            progress=False,
        )
        assert rc == 0
        return dict(json.loads((tmp_path / out / "summary.json").read_text()))

    chat_only = run(FakeLLM(respond=respond), "chat")
    assert "likelihood" not in chat_only and "faithfulness" in chat_only
    assert "likelihood judge is skipped" in capsys.readouterr().err
    scoring = run(Scoring(respond=respond), "scoring")
    assert scoring["likelihood"]["mean"] == pytest.approx(math.exp(-0.2))
