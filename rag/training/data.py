"""Training data for the cross-encoder reranker: one typed example shape, many loaders.

Every loader yields :class:`TrainExample` (a query, its relevant passage, optional hard negatives and a
``group`` key used to split train/held-out without leakage: all questions about one article or
paragraph land on the same side). Formats:

* BEIR (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``, read by :mod:`eval.datasets`) —
  :func:`load_beir_examples`;
* JSONL of ``{"query", "positive" | "positives", "negatives"?}`` — :func:`load_jsonl`;
* the folders of ``shared/data/train/`` (SQuAD-format JSON, QED, AQuaMuSe, SelQA, WikiQA) —
  :func:`load_train_dir`. WikiQA is licensed for research only and is skipped unless asked for.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eval.datasets import load_beir, load_corpus
from ingest.sources import BeirDocument
from rag.errors import EvalDataError
from rag.jsonl import open_text, read_jsonl


@dataclass(frozen=True)
class TrainExample:
    """One query with a relevant passage; ``negatives`` are passages known or mined to be irrelevant."""

    query: str
    positive: str
    negatives: tuple[str, ...] = ()
    group: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "positive": self.positive,
            "negatives": list(self.negatives),
            "group": self.group,
            "source": self.source,
        }


@dataclass(frozen=True)
class DatasetInfo:
    """What a shared training folder is and under which licence it may be used."""

    name: str
    licence: str
    research_only: bool = False
    notes: str = ""


@dataclass
class LoadReport:
    """Counts per source, so the CLI and the model card can say exactly what was used."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


_WS = re.compile(r"\s+")
_NQ_SPACES = re.compile(r" ([,.;:!?%)\]}'])|([(\[{$]) | (n't|'s|'re|'ve|'ll|'d|'m)\b")


def normalize_text(text: str) -> str:
    """Collapse whitespace; used for dedup keys and for every passage and query."""
    return _WS.sub(" ", text).strip()


def text_key(text: str) -> str:
    """A dedup key for near-identical passages: lowercase, alphanumerics only, hashed."""
    core = re.sub(r"[^0-9a-z]+", "", text.lower())
    return hashlib.sha1(core.encode("utf-8")).hexdigest()


def _detokenize_nq(text: str) -> str:
    """Undo NQ's space-separated tokenisation (``firm 's customers .`` → ``firm's customers.``)."""
    text = text.replace("``", '"').replace("''", '"')
    return normalize_text(_NQ_SPACES.sub(lambda m: m.group(1) or m.group(2) or m.group(3), text))


def _read_json(path: Path) -> Any:
    with open_text(path) as fh:
        return json.load(fh)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    return (row for _, row in read_jsonl(path))


def _example(query: str, positive: str, *, group: str, source: str, negatives: Iterable[str] = ()) -> TrainExample:
    return TrainExample(
        query=normalize_text(query),
        positive=normalize_text(positive),
        negatives=tuple(normalize_text(n) for n in negatives if n and n.strip()),
        group=group,
        source=source,
    )


# ---------------------------------------------------------------- generic formats


def load_jsonl(path: str | Path, *, source: str | None = None) -> list[TrainExample]:
    """``{"query", "positive"}`` or ``{"query", "positives": [...]}``, optional ``"negatives"``."""
    p = Path(path)
    src = source or p.stem
    out: list[TrainExample] = []
    for n, row in read_jsonl(p):
        query = row.get("query")
        positives = row.get("positives") or ([row["positive"]] if row.get("positive") else [])
        if not isinstance(query, str) or not query.strip() or not positives:
            raise EvalDataError(f"{p}:{n}: each line needs a non-empty 'query' and 'positive' or 'positives'")
        negatives = row.get("negatives") or []
        group = str(row.get("group") or f"{src}:{n}")
        out.extend(_example(query, pos, group=group, source=src, negatives=negatives) for pos in positives)
    return out


def load_beir_examples(
    path: str | Path, *, split: str = "train", qrels: str | Path | None = None, min_score: int = 1
) -> list[TrainExample]:
    """A BEIR folder (:func:`eval.datasets.load_beir`): one example per (query, judged document) with
    ``score >= min_score``, in qrels order; judged documents missing from the corpus are skipped."""
    root = Path(path)
    dataset = load_beir(root, split=split, qrels_path=Path(qrels) if qrels else None)
    corpus = load_corpus(dataset.corpus)
    return [
        _example(dataset.queries[qid], beir_passage(corpus[docid]), group=f"{root.name}:{qid}", source=root.name)
        for qid, judged in dataset.qrels.items()
        for docid, score in judged.items()
        if score >= min_score and docid in corpus
    ]


def beir_passage(doc: BeirDocument) -> str:
    """Title and text joined the way BEIR models see a document."""
    title, text = doc.title.strip(), doc.text.strip()
    return f"{title}. {text}" if title and text else title or text


# ---------------------------------------------------------------- shared/data/train folders


def load_squad(path: str | Path, *, source: str) -> tuple[list[TrainExample], list[TrainExample]]:
    """SQuAD-format JSON: answerable questions → examples; unanswerable (v2.0) → negatives-only rows.

    The second list holds (question, paragraph) pairs written to look answerable but not answered by the
    paragraph; they are returned as ``TrainExample(positive="", negatives=(paragraph,))``.
    """
    data = _read_json(Path(path))
    pos: list[TrainExample] = []
    neg: list[TrainExample] = []
    for article in data["data"]:
        title = str(article.get("title", ""))
        for para in article["paragraphs"]:
            context = para["context"]
            for qa in para["qas"]:
                group = f"{source}:{title}:{text_key(context)[:10]}"
                if qa.get("is_impossible"):
                    neg.append(_example(qa["question"], "", group=group, source=source, negatives=[context]))
                else:
                    pos.append(_example(qa["question"], context, group=group, source=source))
    return pos, neg


def load_qed(folder: Path) -> list[TrainExample]:
    """QED train shards + final dev file (the first-release dev shards duplicate the dev file)."""
    files = [*sorted(folder.glob("nq-train-*-qed.jsonlines.gz")), folder / "qed-dev.jsonlines.gz"]
    out: list[TrainExample] = []
    for f in files:
        if not f.is_file():
            continue
        for row in _rows(f):
            out.append(
                _example(
                    _detokenize_nq(row["question_text"]),
                    _detokenize_nq(row["paragraph_text"]),
                    group=f"qed:{row.get('title_text', '')}",
                    source="qed",
                )
            )
    return out


def load_aquamuse(folder: Path) -> list[TrainExample]:
    out: list[TrainExample] = []
    for row in _rows(folder / "aquamuse-v2-abstractive.decoded.jsonl.gz"):
        query, target = row["query"][0], row["target"][0]
        out.append(_example(query, target, group=f"aquamuse:{text_key(target)[:12]}", source="aquamuse"))
    return out


def load_selqa(folder: Path) -> list[TrainExample]:
    """(question, the whole section) — sections are the passage granularity a RAG index holds."""
    out: list[TrainExample] = []
    for name in ("selqa-ass-dev.json.gz", "selqa-ass-test.json.gz"):
        for row in _read_json(folder / name):
            section = " ".join(row["candidates"])
            out.append(_example(row["question"], section, group=f"selqa:{row['article']}", source="selqa"))
    return out


def load_wikiqa(folder: Path) -> list[TrainExample]:
    """WikiQA dev/test positives (question, sentence). Research-only licence: never for a shipped model."""
    out: list[TrainExample] = []
    for name in ("WikiQA-dev.tsv.gz", "WikiQA-test.tsv.gz"):
        with open_text(folder / name) as fh:
            next(fh)
            for line in fh:
                cols = line.rstrip("\n").split("\t")
                if len(cols) >= 7 and cols[6] == "1":
                    out.append(_example(cols[1], cols[5], group=f"wikiqa:{cols[2]}", source="wikiqa"))
    return out


def _squad_files(pattern: str, source: str) -> Callable[[Path], list[TrainExample]]:
    def load(root: Path) -> list[TrainExample]:
        out: list[TrainExample] = []
        for f in sorted(root.glob(pattern)):
            name = f"{source}/{f.name.split('_v1.0')[0]}" if source == "squadshifts" else source
            out.extend(load_squad(f, source=name)[0])
        return out

    return load


SHARED_DATASETS: dict[str, tuple[DatasetInfo, Callable[[Path], list[TrainExample]]]] = {
    "squadshifts": (DatasetInfo("squadshifts", "CC BY 4.0"), _squad_files("*_v1.0.json.gz", "squadshifts")),
    "squad_dev_explore": (
        DatasetInfo("squad_dev_explore", "CC BY-SA 4.0", notes="v1.1 dev; v2.0 unanswerable kept as negatives"),
        _squad_files("squad-dev-v1.1*.json.gz", "squad_dev"),
    ),
    "qed": (DatasetInfo("qed", "CC BY-SA 3.0 (Wikipedia / Natural Questions)"), load_qed),
    "aquamuse": (DatasetInfo("aquamuse", "none stated; NQ-derived, treated as CC BY-SA 3.0"), load_aquamuse),
    "selqa": (DatasetInfo("selqa", "Apache 2.0"), load_selqa),
    "mlqa_dev_en": (DatasetInfo("mlqa_dev_en", "CC BY-SA 3.0"), _squad_files("*.json.gz", "mlqa")),
    "wikiqa": (
        DatasetInfo("wikiqa", "Microsoft Research Data License (research only)", research_only=True),
        load_wikiqa,
    ),
}
"""Folder name → (licence info, loader). ``xquad_en`` is deliberately absent: it duplicates SQuAD dev."""


def load_train_dir(
    root: str | Path,
    *,
    include: Iterable[str] | None = None,
    allow_research_only: bool = False,
    report: LoadReport | None = None,
) -> list[TrainExample]:
    """Load the known folders under ``root`` (``shared/data/train``), skipping research-only data."""
    base = Path(root)
    if not base.is_dir():
        raise EvalDataError(f"{base}: training data folder not found")
    wanted = list(include) if include is not None else list(SHARED_DATASETS)
    report = report if report is not None else LoadReport()
    out: list[TrainExample] = []
    for name in wanted:
        if name not in SHARED_DATASETS:
            raise EvalDataError(f"unknown training folder {name!r}; known: {', '.join(SHARED_DATASETS)}")
        info, loader = SHARED_DATASETS[name]
        folder = base / name
        if info.research_only and not allow_research_only:
            report.skipped[name] = f"licence: {info.licence}"
            continue
        if not folder.is_dir():
            report.skipped[name] = "folder missing"
            continue
        rows = loader(folder)
        report.counts[name] = len(rows)
        out.extend(rows)
    return out


def load_squad_unanswerable(root: str | Path) -> list[TrainExample]:
    """SQuAD v2.0 dev unanswerable questions: (question, paragraph it does NOT answer)."""
    f = Path(root) / "squad_dev_explore" / "squad-dev-v2.0.rebuilt-from-explore.json.gz"
    return load_squad(f, source="squad_dev")[1] if f.is_file() else []


def load_any(
    path: str | Path, *, allow_research_only: bool = False, report: LoadReport | None = None
) -> list[TrainExample]:
    """Dispatch on what ``path`` is: a shared train/ folder, a BEIR folder, or a JSONL file."""
    p = Path(path)
    if p.is_file():
        rows = load_jsonl(p)
    elif (p / "corpus.jsonl").is_file():
        rows = load_beir_examples(p)
    elif p.is_dir() and any((p / name).is_dir() for name in SHARED_DATASETS):
        return load_train_dir(p, allow_research_only=allow_research_only, report=report)
    elif p.is_dir() and p.name in SHARED_DATASETS:
        return load_train_dir(p.parent, include=[p.name], allow_research_only=allow_research_only, report=report)
    else:
        raise EvalDataError(f"{p}: not a JSONL file, a BEIR folder or a shared train/ folder")
    if report is not None:
        report.counts[str(p)] = len(rows)
    return rows


def dedup_examples(rows: Iterable[TrainExample]) -> list[TrainExample]:
    """Drop repeated (query, positive) pairs (normalised text), keeping the first."""
    seen: set[tuple[str, str]] = set()
    out: list[TrainExample] = []
    for r in rows:
        key = (r.query.lower(), text_key(r.positive))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def split_by_group(
    rows: list[TrainExample], *, heldout_fraction: float, seed: int
) -> tuple[list[TrainExample], list[TrainExample]]:
    """Deterministic split by ``group`` hash, so one article's questions never straddle the split."""
    train: list[TrainExample] = []
    held: list[TrainExample] = []
    for r in rows:
        h = int(hashlib.sha1(f"{seed}:{r.group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if h < heldout_fraction else train).append(r)
    return train, held


def write_jsonl(rows: Iterable[TrainExample], path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")


def with_negatives(row: TrainExample, negatives: Iterable[str]) -> TrainExample:
    return replace(row, negatives=tuple(negatives))
