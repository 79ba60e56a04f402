"""``rag search`` / ``rag ask`` / ``rag chat`` in-process, over a real ingested index (LLM scripted)."""

from __future__ import annotations

import io
import json

import pytest
from query_fakes import ScriptedLLM

from rag.cli import main


@pytest.fixture
def open_gate(tmp_path) -> str:
    """A config whose evidence gate lets a scripted (off-topic) reply through: these tests are about the CLI."""
    path = tmp_path / "open-gate.yaml"
    path.write_text("answer:\n  gate: false\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedLLM:
    llm = ScriptedLLM(reply="The Kestrel K7 reaches 14 km/h [1][4].")
    monkeypatch.setattr("rag.llm.create_llm", lambda config: llm)
    return llm


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_json_has_stage_scores_timings_and_the_rerank_notice_once(capsys, query_index, no_default_reranker):
    code, out, err = _run(capsys, "search", "Kestrel top speed", "--index", str(query_index), "--top-k", "3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["hits"][0]["source"] == "kestrel.md" and len(data["hits"]) == 3
    assert {"bm25", "dense", "fusion"} <= set(data["hits"][0]["scores"])
    assert {"bm25", "embed", "dense", "fusion", "total"} <= set(data["timings_ms"])
    assert data["reranked"] is False and data["rerank"]["enabled"] is False
    assert "default reranker is not in this install" in data["rerank"]["reason"]
    assert err.count("reranking is off") == 1 and "rag: notice:" in err


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_search_modes_print_a_table(capsys, query_index, mode):
    code, out, err = _run(capsys, "search", "revenue 2025", "--index", str(query_index), "--mode", mode, "--no-rerank")
    assert code == 0 and "reranking is off" not in err
    assert f"mode {mode}" in out and "report.pdf:p2" in out.splitlines()[1]


def test_search_source_filter(capsys, query_index):
    code, out, _ = _run(
        capsys, "search", "Kestrel", "--index", str(query_index), "--no-rerank", "--json", "--source", "office/*"
    )
    assert code == 0 and {h["source"] for h in json.loads(out)["hits"]} <= {"office/cafeteria.txt", "office/plants.md"}


def test_explicit_rerank_without_a_model_fails_clearly(capsys, query_index, no_default_reranker):
    code, _, err = _run(capsys, "search", "Kestrel", "--index", str(query_index), "--rerank")
    assert code == 1 and "reranking was requested but is unavailable" in err


def test_missing_index_is_a_clear_error(capsys, tmp_path):
    code, _, err = _run(capsys, "search", "x", "--index", str(tmp_path / "none"))
    assert code == 1 and "rag ingest" in err


def test_ask_streams_the_answer_and_lists_cited_sources(capsys, query_index, scripted, no_default_reranker):
    code, out, err = _run(capsys, "ask", "How fast is the Kestrel K7?", "--index", str(query_index), "--top-k", "3")
    assert code == 0
    assert out.startswith("The Kestrel K7 reaches 14 km/h [1][4].")
    assert "Sources:\n  [1] kestrel.md\n" in out
    assert "dropped citation(s) [4]" in err and err.count("reranking is off") == 1


def test_ask_json_and_show_context(capsys, query_index, scripted, open_gate):
    code, out, _ = _run(
        capsys,
        "ask",
        "Revenue in 2025?",
        "--index",
        str(query_index),
        "--config",
        open_gate,
        "--top-k",
        "2",
        "--json",
        "--show-context",
        "--no-rerank",
    )
    data = json.loads(out)
    assert code == 0 and data["answer"] == "The Kestrel K7 reaches 14 km/h [1]."
    assert data["citations"] == {"cited": [1], "invalid": [4], "added": []}
    assert len(data["passages"]) == 2 and {"bm25", "dense", "fusion"} <= set(data["passages"][0]["scores"])
    assert {"prompt", "generate", "total"} <= set(data["timings_ms"]) and data["rerank"]["enabled"] in (True, False)
    assert data["prompt"]["messages"][0]["role"] == "system"
    pdf = [p for p in data["passages"] if p["source"] == "report.pdf"]
    assert pdf and pdf[0]["page"] == 2


def test_ask_show_context_prints_passages(capsys, query_index, scripted):
    code, out, _ = _run(
        capsys, "ask", "Kestrel speed", "--index", str(query_index), "--top-k", "2", "--show-context", "--no-rerank"
    )
    assert code == 0 and "--- [1] " in out and "--- [2] " in out


def test_chat_answers_each_line_until_exit(capsys, query_index, scripted, monkeypatch):
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("How fast is the Kestrel?\n\n  \nWhen does the cafeteria open?\nexit\nnever asked\n")
    )
    code, out, _ = _run(capsys, "chat", "--index", str(query_index), "--top-k", "2", "--json", "--no-rerank")
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert code == 0 and [x["question"] for x in lines] == ["How fast is the Kestrel?", "When does the cafeteria open?"]
    assert len(scripted.seen) == 2


def test_chat_ends_at_eof(capsys, query_index, scripted, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("How fast is the Kestrel K7?"))
    code, out, _ = _run(capsys, "chat", "--index", str(query_index), "--no-rerank")
    assert code == 0 and "Sources:" in out


@pytest.mark.parametrize("question", ["", "   "])
def test_ask_an_empty_question_is_a_usage_error(capsys, query_index, scripted, question):
    code, out, err = _run(capsys, "ask", question, "--index", str(query_index))
    assert code == 2 and out == "" and "the question is empty" in err and scripted.seen == []


def test_ask_says_plainly_when_a_streamed_answer_is_withdrawn(capsys, query_index, scripted, tmp_path):
    scripted.reply = "Neptune has 14 moons [1]."
    config = tmp_path / "strict.yaml"
    config.write_text("answer:\n  max_unsupported: 0.5\n", encoding="utf-8")
    code, out, _ = _run(
        capsys,
        "ask",
        "How fast is the Kestrel K7?",
        "--index",
        str(query_index),
        "--config",
        str(config),
        "--no-rerank",
    )
    assert code == 0 and out.startswith("Neptune has 14 moons [1].")
    assert "[withdrawn] The answer above was taken back" in out and "The answer is not in the documents." in out
    assert "Sources:" not in out
