"""Label-free calibration of the reranker's ``fusion_weight`` for one index.

How far to trust a cross-encoder against the first stage depends on the corpus: the shipped reranker
is strong on general-domain questions and weak on scientific claims. :func:`calibrate` measures it on
the index itself, without labels: pseudo-queries are written for sampled chunks (by the local LLM, or
a sentence cut out of the chunk), each query's own document is its one relevant document, and the
pipeline's first stage + reranker are scored with nDCG@10 at every weight of a fixed grid. The best
weight (ties go to the larger weight, i.e. to the first stage) is stored beside the index in
``rerank_calibration.json`` for that reranker; :func:`rag.rerank.load_reranker` uses it whenever the
configuration leaves ``rerank.fusion_weight`` null.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.metrics import ndcg_at_k
from rag.blend import WEIGHT_GRID, pick_weight, rerank_head
from rag.calibration_file import Calibration, model_fingerprint
from rag.errors import ConfigError
from rag.rerank import CrossEncoderReranker, passage_text
from rag.training.data import LoadReport
from rag.training.mining import llm_queries, pairs_from_chunks
from rag.types import Hit


@dataclass(frozen=True)
class PseudoQuery:
    """A label-free query and the document (``Chunk.source``) it was written from."""

    query: str
    source: str
    kind: str


# ---------------------------------------------------------------- pseudo-queries


def sentence_queries(chunks: Sequence[Any], *, n: int, seed: int = 0) -> list[PseudoQuery]:
    """A sentence cut out of each of ``n`` sampled chunks (inverse cloze; no LLM, seconds)."""
    rows = pairs_from_chunks(chunks, kinds=("sentence",), seed=seed)[:n]
    return [PseudoQuery(r.query, r.group.removeprefix("index:"), "sentence") for r in rows]


def llm_pseudo_queries(
    chunks: Sequence[Any],
    llm: Any,
    *,
    n: int,
    style: str,
    seed: int = 0,
    cache: Path | None = None,
    progress: bool = False,
) -> tuple[list[PseudoQuery], list[str]]:
    """One query written by ``llm`` for each of ``n`` sampled chunks (cached: a rerun resumes)."""
    report = LoadReport()
    rows = llm_queries(chunks, llm, n=n, seed=seed, style=style, cache=cache, report=report, progress=progress)  # type: ignore[arg-type]
    notes = [f"{k}: {v}" for k, v in report.skipped.items()]
    return [PseudoQuery(r.query, r.group.removeprefix("index:"), f"llm-{style}") for r in rows], notes


# ---------------------------------------------------------------- scoring


def doc_ndcg10(order: Sequence[Hit], relevant: str) -> float:
    """nDCG@10 with one relevant document; chunks collapse to their document's best rank."""
    return ndcg_at_k([h.chunk.source for h in order], {relevant: 1}, 10)


def weight_curve(
    candidates: Sequence[Sequence[Hit]],
    scores: Sequence[np.ndarray],
    relevant: Sequence[str],
    *,
    depth: int,
    grid: Sequence[float] = WEIGHT_GRID,
) -> dict[float, np.ndarray]:
    """Per-query nDCG@10 at every weight of ``grid`` (1.0 = the first stage alone), the first ``depth``
    candidates reranked by :func:`rag.blend.rerank_head`."""
    return {
        w: np.array(
            [
                doc_ndcg10(rerank_head(h, s, depth=depth, weight=w), r)
                for h, s, r in zip(candidates, scores, relevant, strict=True)
            ]
        )
        for w in grid
    }


def paired_ci(a: np.ndarray, b: np.ndarray, *, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of mean(a - b)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def calibrate(
    pipeline: Any,
    queries: Sequence[PseudoQuery],
    *,
    pseudo: str,
    batch: int = 10,
    progress: Callable[[int, int], None] | None = None,
    notes: Sequence[str] = (),
) -> Calibration:
    """Score the pipeline's first stage and reranker on ``queries``; the best weight of the grid
    (:func:`rag.blend.pick_weight`: a tie goes to the first stage)."""
    reranker = pipeline.reranker
    if not isinstance(reranker, CrossEncoderReranker):
        why = pipeline.rerank_status.notice or "the reranker is not a cross-encoder"
        raise ConfigError(f"nothing to calibrate: {why}")
    if not queries:
        raise ConfigError("no pseudo-queries to calibrate on (the index has no usable chunks)")
    cfg = pipeline.config
    depth = cfg.rerank.depth
    retriever = pipeline.retrievers[cfg.retrieval.mode]
    start = time.perf_counter()
    candidates: list[list[Hit]] = []
    scores: list[np.ndarray] = []
    for i in range(0, len(queries), batch):
        part = queries[i : i + batch]
        found = retriever.search_many([q.query for q in part], k=max(depth, cfg.retrieval.depth))
        for q, hits in zip(part, found, strict=True):
            pairs = [(q.query, passage_text(h.chunk, with_title=reranker.with_title)) for h in hits[:depth]]
            scores.append(reranker.score(pairs))
            candidates.append(list(hits))
        if progress is not None:
            progress(min(i + batch, len(queries)), len(queries))
    curve = weight_curve(candidates, scores, [q.source for q in queries], depth=depth)
    weight = pick_weight({w: float(v.mean()) for w, v in curve.items()})
    return Calibration(
        model=reranker.model_name,
        fingerprint=model_fingerprint(reranker.model_name),
        with_title=reranker.with_title,
        fusion_weight=weight,
        queries=len(queries),
        pseudo=pseudo,
        mode=cfg.retrieval.mode,
        depth=depth,
        ndcg={str(w): float(v.mean()) for w, v in curve.items()},
        ci95=paired_ci(curve[weight], curve[1.0]),
        chunks=len(pipeline.index),
        seconds=time.perf_counter() - start,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        notes=list(notes),
    )
