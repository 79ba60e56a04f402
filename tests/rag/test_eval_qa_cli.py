"""``rag eval qa`` end to end over a real ingested folder, with a scripted LLM (the real one runs in
tests/rag/test_ask_local_llm.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from query_fakes import ScriptedLLM

from rag.cli import main


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedLLM:
    llm = ScriptedLLM(reply="The Kestrel K7 reaches 14 km/h [1].")
    monkeypatch.setattr("rag.llm.create_llm", lambda config: llm)
    return llm


def _questions(path: Path) -> Path:
    rows = [
        {"id": "speed", "question": "What is the top speed of the Kestrel K7?", "answers": ["14 km/h"]},
        {"id": "moons", "question": "How many moons does Neptune have?", "answers": []},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_qa_ingests_asks_scores_and_resumes(capsys, tmp_path, scripted, query_corpus, embedder):
    questions = _questions(tmp_path / "q.jsonl")
    out = tmp_path / "out"
    config = tmp_path / "c.yaml"
    config.write_text("rerank:\n  model: null\nanswer:\n  max_unsupported: 0.5\n", encoding="utf-8")
    argv = [
        "eval",
        "qa",
        "--docs",
        str(query_corpus),
        "--questions",
        str(questions),
        "--index",
        str(tmp_path / "ix"),
        "--out",
        str(out),
        "--config",
        str(config),
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["speed", "moons"]
    speed, moons = rows
    assert not speed["refused"] and speed["citations"] == [1] and speed["passages"][0]["source"] == "kestrel.md"
    assert speed["prompt_tokens"] > 0 and speed["total_s"] >= speed["first_token_s"] > 0
    # the scripted reply to the Neptune question names the Kestrel, which the selected excerpts do not
    # hold when the gate is strict enough: either way the row says what happened
    assert moons["refused"] is (moons["decision"]["stage"] != "answer")
    assert summary["answerable_refusal_rate"] == 0.0 and summary["gold_token_recall"] == 1.0
    assert summary["questions"] == 2 and (out / "report.html").is_file() and (out / "summary.json").is_file()
    html = (out / "report.html").read_text()
    assert "answerable refused" in html and "How many moons does Neptune have?" in html

    calls = len(scripted.seen)
    assert main(argv) == 0  # a rerun resumes: nothing is asked again
    assert len(scripted.seen) == calls and "resumed: 2 question(s)" in capsys.readouterr().err


def test_eval_qa_refuses_a_bad_row_before_anything_runs(capsys, tmp_path, scripted, query_corpus):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "Q?", "answers": []}\n{"id": "b", "question": "Q?"}\n', encoding="utf-8")
    code = main(
        [
            "eval",
            "qa",
            "--docs",
            str(query_corpus),
            "--questions",
            str(bad),
            "--index",
            str(tmp_path / "ix"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl:2: 'answers' must be a list" in err
    assert not (tmp_path / "ix").exists() and not (tmp_path / "out").exists() and scripted.seen == []
