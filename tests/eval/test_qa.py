"""``rag eval qa``: metric functions against hand-computed cases, question loading, resume, the summary."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from eval.qa import (
    QAItem,
    contains_answer,
    gold_token_recall,
    load_questions,
    merge_question_sets,
    normalize_answer,
    run_qa,
    sample_items,
    score_row,
    summarize,
    supports_answer,
    token_f1,
)
from rag.errors import EvalDataError


def test_normalize_answer_is_squad_normalisation() -> None:
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"


def test_gold_token_recall_hand_computed() -> None:
    # gold tokens: 27 days paid leave (4); the answer holds 27, days, leave -> 3/4
    assert gold_token_recall("You get 27 days of leave [1].", ["27 days paid leave"]) == pytest.approx(0.75)
    # best over the gold answers, citations ignored ("[27]" is not the number 27)
    assert gold_token_recall("It is 190 EUR [27].", ["27 euros", "190 EUR"]) == 1.0
    # a multiset: a gold token twice needs the answer to hold it twice
    assert gold_token_recall("days", ["days days"]) == pytest.approx(0.5)
    assert gold_token_recall("anything", []) == 0.0


def test_token_f1_hand_computed() -> None:
    # pred: 27 days of leave (4 tokens), gold: 27 days paid leave (4); common 3 -> P = R = 0.75
    assert token_f1("27 days of leave", ["27 days paid leave"]) == pytest.approx(0.75)
    # pred 2 tokens, gold 4, common 2 -> P 1, R 0.5, F1 2/3
    assert token_f1("27 days", ["27 days paid leave"]) == pytest.approx(2 / 3)
    assert token_f1("nothing shared", ["27 days"]) == 0.0


def test_contains_and_supports_answer() -> None:
    passage = "Every full-time employee receives 27 days of paid annual leave per calendar year."
    assert contains_answer(passage, ["27 days of paid annual leave"])
    assert not contains_answer(passage, ["7 days"])  # token boundaries: "27" is not "7"
    assert supports_answer(passage, ["27 days of leave each year"])  # 5 of 6 tokens... "each" missing
    assert not supports_answer("The hotel limit is 190 EUR.", ["27 days of paid annual leave"])


def _row(**kw: Any) -> dict[str, Any]:
    base = {
        "id": "q",
        "question": "?",
        "answers": ["27 days"],
        "answer": "27 days [1]",
        "refused": False,
        "citations": [1],
        "passages": [{"number": 1, "source": "a.md", "page": None, "text": "You get 27 days of leave."}],
        "prompt_tokens": 300,
        "first_token_s": 2.0,
        "total_s": 4.0,
    }
    return {**base, **kw}


def test_score_row_and_summary_hand_computed() -> None:
    rows = [
        _row(id="a1"),  # answered, cited passage holds the gold
        _row(id="a2", refused=True, answer="The answer is not in the documents.", citations=[]),  # refused
        _row(  # answered, cites a passage without the gold, and [9] which does not exist
            id="a3",
            answer="The hotel limit [2][9].",
            citations=[2, 9],
            passages=[
                {"number": 1, "source": "a.md", "page": None, "text": "You get 27 days of leave."},
                {"number": 2, "source": "b.md", "page": None, "text": "Hotels cost 190 EUR."},
            ],
            first_token_s=4.0,
            total_s=8.0,
        ),
        _row(id="u1", answers=[], refused=True, answer="The answer is not in the documents.", citations=[]),
        _row(id="u2", answers=[], answer="Canberra [1].", citations=[1], first_token_s=None, prompt_tokens=0),
    ]
    s = score_row(rows[2])
    assert s["context_recall"] is True and s["supported_citations"] == [False]
    summary = summarize(rows, resamples=200)
    assert summary["answerable"] == 3 and summary["unanswerable"] == 2
    assert summary["answerable_refusal_rate"] == pytest.approx(1 / 3)
    assert summary["gold_token_recall"] == pytest.approx(1 / 3)  # 1, 0 (refused), 0
    assert summary["context_recall"] == pytest.approx(1.0)
    assert summary["cited_rate"] == pytest.approx(1.0)  # a1, a3, u2 all cite something valid
    assert summary["citation_precision"] == pytest.approx(0.5)  # a1's [1] yes, a3's [2] no
    assert summary["unanswerable_decline_rate"] == pytest.approx(0.5)
    assert summary["first_token_s_p50"] == pytest.approx(2.0)  # 2, 2, 4, 2 (u2 has none)
    assert summary["total_s_p50"] == pytest.approx(4.0)
    assert summary["mean_prompt_tokens"] == pytest.approx(300.0)
    lo, hi = summary["answerable_refusal_rate_ci95"]
    assert 0.0 <= lo <= 1 / 3 <= hi <= 1.0


def test_summary_with_no_unanswerable_questions_reports_none() -> None:
    summary = summarize([_row()], resamples=50)
    assert summary["unanswerable_decline_rate"] is None and summary["unanswerable_decline_rate_ci95"] is None


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_load_questions_accepts_extra_keys_and_empty_answers(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "q.jsonl",
        [
            {"id": "1", "question": " Why? ", "answers": ["because"], "doc": "x.txt"},
            {"id": 2, "question": "How?", "answers": []},
        ],
    )
    items = load_questions(p)
    assert items == [QAItem("1", "Why?", ("because",)), QAItem("2", "How?", ())]
    assert [it.answerable for it in items] == [True, False]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", "q.jsonl:2: invalid JSON"),
        ({"id": "b", "answers": []}, "q.jsonl:2: 'question' must be a non-empty string"),
        ({"id": "b", "question": "  ", "answers": []}, "q.jsonl:2: 'question' must be"),
        ({"id": "b", "question": "Q?"}, "q.jsonl:2: 'answers' must be a list"),
        ({"id": "b", "question": "Q?", "answers": "x"}, "q.jsonl:2: 'answers' must be a list"),
        ({"id": "b", "question": "Q?", "answers": [""]}, "q.jsonl:2: 'answers' must be a list"),
        ({"question": "Q?", "answers": []}, "q.jsonl:2: 'id' must be"),
        ({"id": "a", "question": "Q?", "answers": []}, "q.jsonl:2: id 'a' was already used on line 1"),
        ([1, 2], "q.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_rows_name_the_line(tmp_path: Path, row: Any, message: str) -> None:
    p = _write(tmp_path / "q.jsonl", [{"id": "a", "question": "Q?", "answers": []}, row])
    with pytest.raises(EvalDataError, match=message.replace("?", r"\?").replace("[", r"\[")):
        load_questions(p)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="not found"):
        load_questions(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match="no questions"):
        load_questions(tmp_path / "empty.jsonl")


def test_sample_is_seeded_and_keeps_file_order() -> None:
    items = [QAItem(str(i), f"q{i}", ("a",)) for i in range(50)]
    a, b, c = (sample_items(items, limit=10, seed=s) for s in (0, 0, 1))
    assert a == b and a != c and len(a) == 10
    assert [int(it.id) for it in a] == sorted(int(it.id) for it in a)
    assert sample_items(items, limit=None, seed=0) == items


def test_merge_refuses_an_id_in_two_files() -> None:
    with pytest.raises(EvalDataError, match=r"also used in a\.jsonl"):
        merge_question_sets([("a.jsonl", [QAItem("1", "q", ())]), ("b.jsonl", [QAItem("1", "r", ())])])


def _fake_answer(text: str, *, refused: bool) -> Any:
    passage = SimpleNamespace(
        number=1, text="You get 27 days.", hit=SimpleNamespace(chunk=SimpleNamespace(source="a.md", page=None))
    )
    return SimpleNamespace(
        answer=text,
        raw_answer=text,
        refused=refused,
        decision=None,
        citations=SimpleNamespace(cited=[] if refused else [1]),
        passages=[passage],
        prompt=SimpleNamespace(prompt_tokens=120),
        generated=True,
    )


def test_run_appends_rows_and_resumes(tmp_path: Path) -> None:
    items = [QAItem("a", "How many days?", ("27 days",)), QAItem("b", "Capital of Peru?", ())]
    asked: list[str] = []

    def ask(question: str, on_token: Any) -> Any:
        asked.append(question)
        on_token("x")
        if question.startswith("Capital"):
            raise KeyboardInterrupt  # killed half-way
        return _fake_answer("27 days [1]", refused=False)

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_qa(items, ask, out, settings={"k": 1})
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a"]
    assert rows[0]["passages"] == [{"number": 1, "source": "a.md", "page": None, "text": "You get 27 days."}]
    assert rows[0]["first_token_s"] is not None and rows[0]["total_s"] >= rows[0]["first_token_s"]

    asked.clear()

    def ask2(question: str, on_token: Any) -> Any:
        asked.append(question)
        return _fake_answer("The answer is not in the documents.", refused=True)

    result = run_qa(items, ask2, out, settings={"k": 1})
    assert asked == ["Capital of Peru?"] and result.skipped == 1
    assert [r["id"] for r in result.rows] == ["a", "b"]
    summary = result.summary(resamples=50)
    assert summary["unanswerable_decline_rate"] == 1.0 and summary["answerable_refusal_rate"] == 0.0

    with pytest.raises(EvalDataError, match="other settings"):
        run_qa(items, ask2, out, settings={"k": 2})
