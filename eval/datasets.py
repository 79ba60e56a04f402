"""Evaluation data: the BEIR layout and a plain JSONL of questions for users' own folders.

BEIR (``DIR/corpus.jsonl``, ``DIR/queries.jsonl``, ``DIR/qrels/<split>.tsv``): the corpus is ingested
as is (a chunk's ``source`` is the BEIR document id), qrels judge documents.

Plain JSONL (``DIR/questions.jsonl`` beside the documents, or any ``FILE.jsonl``; the documents are the
folder that holds it), one question per line::

    {"id": "q1", "question": "How do I reset it?", "relevant": ["manual.pdf", "faq/reset.md"]}
    {"id": "q2", "question": "...", "relevant": {"manual.pdf": 2, "notes.txt": 1}}
    {"id": "q3", "question": "...", "relevant_chunks": ["3f2a9c..."]}

``relevant`` names source files relative to the folder (graded when given as a mapping) and is scored
per document; ``relevant_chunks`` names chunk ids and is scored per chunk. ``id`` defaults to the
line number.

Qrels files (``--qrels``) may be BEIR TSV (``query-id<TAB>corpus-id<TAB>score``, header optional) or
TREC qrels (``qid iter docid rel``).

This is the one reader of these files: the reranker's training data (:mod:`rag.training.data`) and the
benchmarks read BEIR folders through it, and every JSONL line through :func:`rag.jsonl.read_jsonl`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ingest.sources import BeirDocument, read_beir_corpus
from rag.errors import EvalDataError, IngestError
from rag.jsonl import read_jsonl

DatasetKind = Literal["beir", "jsonl"]
Unit = Literal["document", "chunk"]
PLAIN_QUESTIONS_FILE = "questions.jsonl"


@dataclass(frozen=True)
class EvalDataset:
    """Judged queries and where their corpus lives.

    ``qrels[qid][doc_id] = grade``; ``units[qid]`` says whether the ids are documents (chunk ``source``)
    or chunk ids. ``corpus`` is what to ingest: BEIR ``corpus.jsonl`` or the users' folder.
    """

    name: str
    kind: DatasetKind
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    units: dict[str, Unit] = field(default_factory=dict)
    split: str = "test"

    def unit(self, qid: str) -> Unit:
        return self.units.get(qid, "document")


def load_queries(path: Path) -> dict[str, str]:
    """BEIR ``queries.jsonl``: ``_id`` -> ``text``."""
    queries: dict[str, str] = {}
    for lineno, obj in read_jsonl(path):
        qid, text = obj.get("_id"), obj.get("text")
        if qid is None or not isinstance(text, str):
            raise EvalDataError(f"{path}:{lineno}: a query needs '_id' and a string 'text'")
        queries[str(qid)] = text
    return queries


def load_corpus(path: Path) -> dict[str, BeirDocument]:
    """BEIR ``corpus.jsonl``: ``_id`` -> document, parsed as ``rag ingest`` parses it
    (:func:`ingest.sources.read_beir_corpus`); a line it cannot use is an error naming the line."""
    try:
        docs, failed = read_beir_corpus(path)
    except IngestError as e:  # the file cannot be read
        raise EvalDataError(str(e)) from e
    if failed:
        where, reason = failed[0]
        more = f" (and {len(failed) - 1} more line(s))" if len(failed) > 1 else ""
        raise EvalDataError(f"{where}: {reason}{more}")
    return {d.source: d for d in docs}


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR TSV or TREC qrels -> ``{qid: {doc_id: grade}}``, query ids in file order. Blank lines are skipped,
    a grade may be written as a float (``1.0``); a repeated pair keeps the last grade."""
    qrels: dict[str, dict[str, int]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as e:
        raise EvalDataError(f"{path}: qrels file not found") from e
    except UnicodeDecodeError as e:
        raise EvalDataError(f"{path}: not UTF-8 text ({e.reason})") from e
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [p.strip() for p in parts]
        if lineno == 1 and parts[-1].lower() == "score":
            continue  # BEIR header
        if len(parts) == 3:
            qid, doc_id, grade_text = parts
        elif len(parts) == 4:
            qid, _iteration, doc_id, grade_text = parts
        else:
            raise EvalDataError(
                f"{path}:{lineno}: expected 'query-id corpus-id score' or 'qid iter docid rel', got {line!r}"
            )
        try:
            value = float(grade_text)
        except ValueError as e:
            raise EvalDataError(f"{path}:{lineno}: relevance {grade_text!r} is not a number") from e
        if not value.is_integer():
            raise EvalDataError(f"{path}:{lineno}: relevance {grade_text!r} is not a whole number")
        grade = int(value)
        qrels.setdefault(qid, {})[doc_id] = grade
    if not qrels:
        raise EvalDataError(f"{path}: no judgments found")
    return qrels


def load_beir(directory: Path, *, split: str = "test", qrels_path: Path | None = None) -> EvalDataset:
    """A BEIR dataset folder; only queries with judgments in the split are kept."""
    corpus = directory / "corpus.jsonl"
    if not corpus.is_file():
        raise EvalDataError(f"{directory}: no corpus.jsonl (not a BEIR dataset folder)")
    qrels_file = qrels_path or directory / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        available = sorted(p.stem for p in (directory / "qrels").glob("*.tsv"))
        raise EvalDataError(
            f"{qrels_file}: qrels for split {split!r} not found (available splits: {', '.join(available) or 'none'})"
        )
    qrels = load_qrels(qrels_file)
    all_queries = load_queries(directory / "queries.jsonl")
    missing = sorted(set(qrels) - set(all_queries))
    if missing:
        raise EvalDataError(
            f"{qrels_file}: {len(missing)} judged query id(s) not in {directory / 'queries.jsonl'}: "
            f"{', '.join(missing[:5])}"
        )
    queries = {qid: all_queries[qid] for qid in qrels}
    return EvalDataset(
        name=directory.resolve().name, kind="beir", corpus=corpus, queries=queries, qrels=qrels, split=split
    )


def _relevance(value: Any, where: str) -> dict[str, int]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: 1 for v in value}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in value.items()
    ):
        return dict(value)
    raise EvalDataError(f"{where}: expected a list of ids or a mapping id -> integer grade, got {value!r}")


def load_plain(path: Path, *, qrels_path: Path | None = None) -> EvalDataset:
    """A plain questions JSONL; the corpus is the folder that holds it."""
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    units: dict[str, Unit] = {}
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        qid = str(obj.get("id", lineno))
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            raise EvalDataError(f"{where}: 'question' must be a non-empty string")
        if qid in queries:
            raise EvalDataError(f"{where}: duplicate question id {qid!r}")
        has_docs, has_chunks = "relevant" in obj, "relevant_chunks" in obj
        if has_docs == has_chunks:
            raise EvalDataError(f"{where}: give exactly one of 'relevant' (source files) or 'relevant_chunks'")
        queries[qid] = question
        if has_docs:
            qrels[qid] = {
                Path(doc).as_posix().removeprefix("./"): grade
                for doc, grade in _relevance(obj["relevant"], f"{where}: 'relevant'").items()
            }
            units[qid] = "document"
        else:
            qrels[qid] = _relevance(obj["relevant_chunks"], f"{where}: 'relevant_chunks'")
            units[qid] = "chunk"
    if not queries:
        raise EvalDataError(f"{path}: no questions found")
    if qrels_path is not None:
        qrels = load_qrels(qrels_path)
        unknown = sorted(set(qrels) - set(queries))
        if unknown:
            raise EvalDataError(f"{qrels_path}: query id(s) not in {path}: {', '.join(unknown[:5])}")
        queries = {qid: queries[qid] for qid in qrels}
    return EvalDataset(
        name=path.parent.resolve().name,
        kind="jsonl",
        corpus=path.parent,
        queries=queries,
        qrels=qrels,
        units=units,
        split=path.stem,
    )


def load_dataset(path: str | Path, *, split: str = "test", qrels_path: str | Path | None = None) -> EvalDataset:
    """BEIR folder, a folder with ``questions.jsonl``, or a questions ``.jsonl`` file."""
    p = Path(path)
    qp = Path(qrels_path) if qrels_path is not None else None
    if p.is_file():
        if p.suffix != ".jsonl":
            raise EvalDataError(f"{p}: expected a BEIR folder, a folder with {PLAIN_QUESTIONS_FILE} or a .jsonl file")
        return load_plain(p, qrels_path=qp)
    if not p.is_dir():
        raise EvalDataError(f"{p}: dataset not found")
    if (p / "corpus.jsonl").is_file():
        return load_beir(p, split=split, qrels_path=qp)
    if (p / PLAIN_QUESTIONS_FILE).is_file():
        return load_plain(p / PLAIN_QUESTIONS_FILE, qrels_path=qp)
    raise EvalDataError(f"{p}: neither a BEIR folder (corpus.jsonl) nor a folder with {PLAIN_QUESTIONS_FILE}")
