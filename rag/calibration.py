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

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.types import Hit

CALIBRATION_FILE = "rerank_calibration.json"
WEIGHT_GRID: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class PseudoQuery:
    """A label-free query and the document (``Chunk.source``) it was written from."""

    query: str
    source: str
    kind: str


@dataclass(frozen=True)
class Calibration:
    model: str  # the resolved reranker path or id the weight belongs to
    with_title: bool
    fusion_weight: float
    queries: int
    pseudo: str  # how the pseudo-queries were made, e.g. "llm-claim"
    mode: str  # the first stage
    depth: int  # candidates reranked per query
    ndcg: dict[str, float]  # str(weight) -> mean nDCG@10 over the pseudo-queries
    ci95: tuple[float, float]  # bootstrap CI of (best blend - first stage)
    chunks: int  # chunks in the index when it was calibrated
    seconds: float
    created: str = ""
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""  # model_fingerprint(model) when calibrated

    @property
    def first_stage(self) -> float:
        return self.ndcg["1.0"]

    @property
    def reranker_alone(self) -> float:
        return self.ndcg["0.0"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(**{**d, "ci95": tuple(d["ci95"]), "ndcg": {str(k): float(v) for k, v in d["ndcg"].items()}})


def calibration_path(index_dir: str | Path) -> Path:
    return Path(index_dir) / CALIBRATION_FILE


def model_fingerprint(model: str) -> str:
    """sha256 of a local model's weight files (a re-trained or re-installed model is a new model); an id as is."""
    root = Path(model)
    files = sorted(f for f in root.glob("*") if f.suffix in (".safetensors", ".bin")) if root.is_dir() else []
    if not files:
        return model
    return _hash_files(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@lru_cache(maxsize=8)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in files:
        with open(name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def read_calibration(index_dir: str | Path, model: str, *, with_title: bool) -> Calibration | None:
    """The stored calibration for ``model`` (resolved path or id; the same weights) and passage format, or None."""
    path = calibration_path(index_dir)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cals = [Calibration.from_dict(d) for d in data.get("calibrations", [])]
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"{path}: unreadable reranker calibration ({e}); re-run `rag reranker calibrate`") from e
    key = _model_key(model)
    for c in cals:  # the weights are hashed only when a calibration for this model is stored
        if _model_key(c.model) == key and c.with_title == with_title:
            if c.fingerprint in ("", model_fingerprint(model)):
                return c
    return None


def write_calibration(index_dir: str | Path, cal: Calibration) -> Path:
    """Store ``cal``, replacing an earlier one for the same model and passage format (atomic write)."""
    path = calibration_path(index_dir)
    kept: list[dict[str, Any]] = []
    if path.is_file():
        try:
            kept = json.loads(path.read_text(encoding="utf-8")).get("calibrations", [])
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: unreadable reranker calibration ({e}); delete it and re-run") from e
    key = _model_key(cal.model)
    kept = [d for d in kept if not (_model_key(d.get("model", "")) == key and d.get("with_title") == cal.with_title)]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"calibrations": [*kept, cal.to_dict()]}, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _model_key(model: str) -> str:
    p = Path(model)
    return str(p.resolve()) if p.exists() else model


# ---------------------------------------------------------------- pseudo-queries


def sentence_queries(chunks: Sequence[Any], *, n: int, seed: int = 0) -> list[PseudoQuery]:
    """A sentence cut out of each of ``n`` sampled chunks (inverse cloze; no LLM, seconds)."""
    from rag.training.mining import pairs_from_chunks

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
    from rag.training.data import LoadReport
    from rag.training.mining import llm_queries

    report = LoadReport()
    rows = llm_queries(chunks, llm, n=n, seed=seed, style=style, cache=cache, report=report, progress=progress)  # type: ignore[arg-type]
    notes = [f"{k}: {v}" for k, v in report.skipped.items()]
    return [PseudoQuery(r.query, r.group.removeprefix("index:"), f"llm-{style}") for r in rows], notes


# ---------------------------------------------------------------- scoring


def doc_ndcg10(order: Sequence[Hit], relevant: str) -> float:
    """nDCG@10 with one relevant document; chunks collapse to their document's best rank."""
    from eval.metrics import ndcg_at_k

    return ndcg_at_k([h.chunk.source for h in order], {relevant: 1}, 10)


def blended_order(hits: Sequence[Hit], scores: np.ndarray, weight: float, depth: int) -> list[Hit]:
    """The first ``depth`` hits re-sorted by ``(1-w) minmax(reranker) + w minmax(first stage)``."""
    from rag.rerank import blend

    head, tail = list(hits[:depth]), list(hits[depth:])
    if weight >= 1.0:
        return [*head, *tail]
    final = blend(np.asarray(scores, dtype=np.float64), [h.score for h in head], weight)
    order = sorted(range(len(head)), key=lambda i: (-final[i], head[i].chunk.id))
    return [*(head[i] for i in order), *tail]


def weight_curve(
    candidates: Sequence[Sequence[Hit]],
    scores: Sequence[np.ndarray],
    relevant: Sequence[str],
    *,
    depth: int,
    grid: Sequence[float] = WEIGHT_GRID,
) -> dict[float, np.ndarray]:
    """Per-query nDCG@10 at every weight of ``grid`` (1.0 = the first stage alone)."""
    return {
        w: np.array(
            [doc_ndcg10(blended_order(h, s, w, depth), r) for h, s, r in zip(candidates, scores, relevant, strict=True)]
        )
        for w in grid
    }


def pick_weight(curve: dict[float, np.ndarray]) -> float:
    """The weight with the best mean nDCG@10; ties go to the larger weight (the first stage)."""
    best = max(float(v.mean()) for v in curve.values())
    return max(w for w, v in curve.items() if float(v.mean()) >= best - 1e-12)


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
    """Score the pipeline's first stage and reranker on ``queries``; the best weight of :data:`WEIGHT_GRID`."""
    from rag.rerank import CrossEncoderReranker, passage_text

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
    weight = pick_weight(curve)
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
        chunks=len(pipeline.index.chunks),
        seconds=time.perf_counter() - start,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        notes=list(notes),
    )
