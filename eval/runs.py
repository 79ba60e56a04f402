"""Runs: ``dict[qid, dict[doc_id, score]]`` in memory, TREC run files on disk.

A TREC run line is ``qid Q0 doc_id rank score run_name``. Lines are written per query in ranking order
``(-score, doc_id)`` with ranks from 1, and scores printed with ``repr`` so reading the file back gives
the same floats. Also here: collapsing chunk hits into a document run (``max`` by default).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal, get_args

from eval.metrics import rank_run
from rag.errors import EvalDataError

Run = dict[str, dict[str, float]]
Aggregation = Literal["max", "sum", "first"]
AGGREGATIONS: tuple[Aggregation, ...] = get_args(Aggregation)


def _agg_max(scores: list[float]) -> float:
    return max(scores)


def _agg_sum(scores: list[float]) -> float:
    return math.fsum(scores)


def _agg_first(scores: list[float]) -> float:
    return scores[0]


_AGGREGATORS: dict[Aggregation, Callable[[list[float]], float]] = {
    "max": _agg_max,
    "sum": _agg_sum,
    "first": _agg_first,
}


def aggregate(pairs: Iterable[tuple[str, float]], *, how: Aggregation = "max") -> dict[str, float]:
    """Collapse ``(doc_id, chunk_score)`` pairs (in ranking order) to one score per document.

    ``max``: the best chunk's score; ``sum``: the chunks' scores added; ``first``: the score of the
    document's first chunk in the given order.
    """
    if how not in _AGGREGATORS:
        raise ValueError(f"aggregation {how!r} is not one of {', '.join(AGGREGATIONS)}")
    grouped: dict[str, list[float]] = {}
    for doc_id, score in pairs:
        grouped.setdefault(doc_id, []).append(float(score))
    fn = _AGGREGATORS[how]
    return {doc_id: fn(scores) for doc_id, scores in grouped.items()}


def format_run(run: Mapping[str, Mapping[str, float]], *, name: str, depth: int | None = None) -> Iterable[str]:
    """TREC run lines, queries in sorted id order, documents by ``(-score, doc_id)``."""
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"run name must be non-empty without whitespace, got {name!r}")
    for qid in sorted(run):
        scores = run[qid]
        for rank, doc_id in enumerate(rank_run(scores, depth=depth), start=1):
            yield f"{qid} Q0 {doc_id} {rank} {scores[doc_id]!r} {name}\n"


def write_run(path: Path, run: Mapping[str, Mapping[str, float]], *, name: str, depth: int | None = None) -> Path:
    """Write a TREC run file atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.fchmod(fd, 0o644)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(format_run(run, name=name, depth=depth))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_run(path: Path) -> Run:
    """Read a TREC run file back into ``{qid: {doc_id: score}}``."""
    run: Run = {}
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                parts = line.split()
                if len(parts) != 6:
                    raise EvalDataError(
                        f"{path}:{lineno}: expected 6 fields 'qid Q0 doc rank score name', got {line!r}"
                    )
                qid, _q0, doc_id, _rank, score, _name = parts
                try:
                    run.setdefault(qid, {})[doc_id] = float(score)
                except ValueError as e:
                    raise EvalDataError(f"{path}:{lineno}: score {score!r} is not a number") from e
    except FileNotFoundError as e:
        raise EvalDataError(f"{path}: run file not found") from e
    return run
