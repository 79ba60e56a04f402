"""eval.datasets: the one reader of BEIR folders and qrels files (training data reads them through it too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import load_beir, load_corpus, load_qrels
from rag.errors import EvalDataError
from rag.training.data import load_beir_examples


def _beir(root: Path, qrels: str, *, split: str = "test") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs = [{"_id": "d1", "title": "T", "text": "body"}, {"_id": 2, "title": "", "text": "two"}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    queries = [{"_id": "q1", "text": "query one"}, {"_id": "q2", "text": "query two"}]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(qrels, encoding="utf-8")
    return root


def test_qrels_skip_blank_lines_and_read_float_grades(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text("query-id\tcorpus-id\tscore\n\nq2\td1\t1.0\n   \nq1\t2\t2\nq1\td1\t0.0\n", encoding="utf-8")
    qrels = load_qrels(path)
    assert qrels == {"q2": {"d1": 1}, "q1": {"2": 2, "d1": 0}}
    assert list(qrels) == ["q2", "q1"]  # file order
    assert all(isinstance(g, int) for judged in qrels.values() for g in judged.values())


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("q1\td1\tyes", r"q\.tsv:2: relevance 'yes' is not a number"),
        ("q1\td1\t1.5", r"q\.tsv:2: relevance '1\.5' is not a whole number"),
        ("q1\td1\tinf", r"q\.tsv:2: relevance 'inf' is not a whole number"),
        ("q1\td1", r"q\.tsv:2: expected 'query-id corpus-id score'"),
    ],
)
def test_a_bad_qrels_line_names_the_file_and_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.tsv"
    path.write_text(f"q1\td2\t1\n{line}\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match=message):
        load_qrels(path)


def test_load_corpus_reads_the_corpus_as_ingest_does_and_names_a_bad_line(tmp_path: Path) -> None:
    root = _beir(tmp_path / "b", "q1\td1\t1\n")
    docs = load_corpus(root / "corpus.jsonl")
    assert list(docs) == ["d1", "2"] and (docs["d1"].title, docs["d1"].text) == ("T", "body")
    with (root / "corpus.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('\n{"_id": "d3", "text": \n{"_id": "d1", "text": "again"}\n')
    with pytest.raises(EvalDataError, match=r"corpus\.jsonl:4: invalid JSON .*\(and 1 more line\(s\)\)"):
        load_corpus(root / "corpus.jsonl")
    with pytest.raises(EvalDataError, match=r"nothing\.jsonl: file not found"):
        load_corpus(tmp_path / "nothing.jsonl")


def test_training_examples_come_from_the_same_reader(tmp_path: Path) -> None:
    root = _beir(tmp_path / "set", "query-id\tcorpus-id\tscore\n\nq1\td1\t1.0\nq2\t2\t2\nq2\td1\t0\n", split="train")
    rows = load_beir_examples(root)
    assert [(r.query, r.positive, r.group) for r in rows] == [
        ("query one", "T. body", "set:q1"),
        ("query two", "two", "set:q2"),
    ]
    assert load_beir(root, split="train").qrels == {"q1": {"d1": 1}, "q2": {"2": 2, "d1": 0}}
    (root / "qrels" / "train.tsv").write_text("q1\td1\tone\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"train\.tsv:1: relevance 'one' is not a number"):
        load_beir_examples(root)
    with pytest.raises(EvalDataError, match=r"qrels for split 'dev' not found"):
        load_beir_examples(root, split="dev")
