"""Retrieval over an index: BM25, dense (FAISS) and their hybrid fusion.

Every retriever satisfies :class:`Retriever`: ``search(query, k=...)`` and the batched
``search_many(queries, k=...)`` (all queries embedded in one call). Hits are sorted by
``(-score, chunk id)`` and carry each stage's score and rank in ``Hit.scores`` / ``Hit.ranks``.
Metadata filters become a boolean ``allowed`` mask handed to the index, so they apply before fusion.
Per-stage wall time in milliseconds is added to an optional ``timings`` mapping; loading a model on
first use is timed as ``load``, not as the stage that needed it.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from rag.config import RetrievalConfig, RetrievalMode
from rag.fusion import fuse, sort_scored
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

Timings = MutableMapping[str, float]
RowScores = list[tuple[int, float]]


class SearchIndex(Protocol):
    """What retrieval needs from an index (``ingest.store.Index`` provides it)."""

    chunks: list[Chunk]
    embedding_model: str

    def dense_search(
        self, query_vectors: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> list[RowScores]: ...

    def bm25_search(self, queries: Sequence[str], k: int, *, allowed: np.ndarray | None = None) -> list[RowScores]: ...


class QueryEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Retriever(Protocol):
    name: str

    def search(
        self, query: str, *, k: int, filters: Filters | None = None, timings: Timings | None = None
    ) -> list[Hit]: ...

    def search_many(
        self, queries: Sequence[str], *, k: int, filters: Filters | None = None, timings: Timings | None = None
    ) -> list[list[Hit]]: ...


@dataclass(frozen=True)
class Filters:
    """Metadata filters. ``source``: glob patterns on the chunk's source path (any may match)."""

    source: tuple[str, ...] = ()

    @classmethod
    def of(cls, source: str | Sequence[str] | None = None) -> Filters | None:
        if source is None or source == () or source == []:
            return None
        return cls(source=(source,) if isinstance(source, str) else tuple(source))

    def matches(self, chunk: Chunk) -> bool:
        return not self.source or any(fnmatch.fnmatchcase(chunk.source, pattern) for pattern in self.source)


def allowed_mask(chunks: Sequence[Chunk], filters: Filters | None) -> NDArray[np.bool_] | None:
    """Boolean mask over ``chunks`` (``None`` when nothing is filtered)."""
    if filters is None or not filters.source:
        return None
    return np.fromiter((filters.matches(c) for c in chunks), dtype=bool, count=len(chunks))


@contextmanager
def timed(timings: Timings | None, stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0


class SentenceTransformerEncoder:
    """Query embeddings from the index's model, normalised; the model loads on first use."""

    def __init__(self, model_name: str, *, batch_size: int = 64, device: str = "cpu") -> None:
        self.model_name = model_name
        self.batch_size = batch_size
        self.device = device

    def load(self) -> None:
        from rag.models import load_embedder

        load_embedder(self.model_name, self.device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from rag.models import load_embedder

        model = load_embedder(self.model_name, self.device)
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class _MaskCache:
    """The last few filter masks of one index (a glob over every chunk is not free on a big corpus)."""

    def __init__(self, chunks: Sequence[Chunk], size: int = 16) -> None:
        self._chunks = chunks
        self._size = size
        self._masks: dict[Filters, NDArray[np.bool_]] = {}

    def get(self, filters: Filters | None) -> NDArray[np.bool_] | None:
        if filters is None or not filters.source:
            return None
        mask = self._masks.get(filters)
        if mask is None:
            mask = allowed_mask(self._chunks, filters)
            assert mask is not None
            if len(self._masks) >= self._size:
                self._masks.pop(next(iter(self._masks)))
            self._masks[filters] = mask
        return mask


def rows_to_hits(chunks: Sequence[Chunk], rows: RowScores, stage: str, k: int) -> list[Hit]:
    """Index rows -> hits sorted by ``(-score, id)``, ranked 1.., the stage's score and rank recorded."""
    by_id: dict[str, tuple[Chunk, float]] = {}
    for row, score in rows:
        chunk = chunks[row]
        if chunk.id not in by_id or score > by_id[chunk.id][1]:
            by_id[chunk.id] = (chunk, float(score))
    ranked = sort_scored({cid: s for cid, (_c, s) in by_id.items()})[:k]
    return [
        Hit(chunk=by_id[cid][0], score=s, rank=r, scores={stage: s}, ranks={stage: r})
        for r, (cid, s) in enumerate(ranked, start=1)
    ]


class _IndexRetriever:
    name: str = ""

    def __init__(self, index: SearchIndex) -> None:
        self.index = index
        self._masks = _MaskCache(index.chunks)

    def search(
        self, query: str, *, k: int, filters: Filters | None = None, timings: Timings | None = None
    ) -> list[Hit]:
        return self.search_many([query], k=k, filters=filters, timings=timings)[0]

    def search_many(
        self, queries: Sequence[str], *, k: int, filters: Filters | None = None, timings: Timings | None = None
    ) -> list[list[Hit]]:
        if not queries:
            return []
        if k <= 0 or not self.index.chunks:
            return [[] for _ in queries]
        mask = self._masks.get(filters)
        if mask is not None and not mask.any():
            return [[] for _ in queries]
        rows = self._rows(queries, k, mask, timings)
        return [rows_to_hits(self.index.chunks, r, self.name, k) for r in rows]

    def _rows(
        self, queries: Sequence[str], k: int, mask: np.ndarray | None, timings: Timings | None
    ) -> list[RowScores]:
        raise NotImplementedError


class BM25Retriever(_IndexRetriever):
    name = "bm25"

    def _rows(
        self, queries: Sequence[str], k: int, mask: np.ndarray | None, timings: Timings | None
    ) -> list[RowScores]:
        with timed(timings, "bm25"):
            return self.index.bm25_search(list(queries), k, allowed=mask)


class DenseRetriever(_IndexRetriever):
    name = "dense"

    def __init__(self, index: SearchIndex, encoder: QueryEncoder | None = None) -> None:
        super().__init__(index)
        self.encoder = encoder or SentenceTransformerEncoder(index.embedding_model)
        self._loaded = False

    def _rows(
        self, queries: Sequence[str], k: int, mask: np.ndarray | None, timings: Timings | None
    ) -> list[RowScores]:
        load = getattr(self.encoder, "load", None)
        if load is not None and not self._loaded:
            with timed(timings, "load"):
                load()
            self._loaded = True
        with timed(timings, "embed"):
            vectors = self.encoder.encode(list(queries))
        with timed(timings, "dense"):
            return self.index.dense_search(vectors, k, allowed=mask)


class HybridRetriever:
    """BM25 + dense, each ``depth`` deep, fused by RRF or weighted normalised scores."""

    name = "hybrid"

    def __init__(self, bm25: Retriever, dense: Retriever, *, config: RetrievalConfig | None = None) -> None:
        self.bm25 = bm25
        self.dense = dense
        self.config = config or RetrievalConfig()
        w = self.config.dense_weight
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"retrieval.dense_weight must be in [0, 1], got {w}")
        # RRF gets 2w so the default 0.5 is plain, unweighted RRF.
        scale = 2.0 if self.config.fusion == "rrf" else 1.0
        self.weights = {"bm25": scale * (1.0 - w), "dense": scale * w}

    def search(
        self, query: str, *, k: int, filters: Filters | None = None, timings: Timings | None = None
    ) -> list[Hit]:
        return self.search_many([query], k=k, filters=filters, timings=timings)[0]

    def search_many(
        self, queries: Sequence[str], *, k: int, filters: Filters | None = None, timings: Timings | None = None
    ) -> list[list[Hit]]:
        depth = max(self.config.depth, k)
        sparse = self.bm25.search_many(queries, k=depth, filters=filters, timings=timings)
        dense = self.dense.search_many(queries, k=depth, filters=filters, timings=timings)
        with timed(timings, "fusion"):
            return [self._fuse(s, d, k) for s, d in zip(sparse, dense, strict=True)]

    def _fuse(self, sparse: list[Hit], dense: list[Hit], k: int) -> list[Hit]:
        merged: dict[str, Hit] = {}
        for hit in (*sparse, *dense):
            prev = merged.get(hit.chunk.id)
            merged[hit.chunk.id] = (
                hit
                if prev is None
                else Hit(
                    chunk=hit.chunk,
                    score=hit.score,
                    rank=hit.rank,
                    scores={**prev.scores, **hit.scores},
                    ranks={**prev.ranks, **hit.ranks},
                )
            )
        rankings = {
            "bm25": [(h.chunk.id, h.score) for h in sparse],
            "dense": [(h.chunk.id, h.score) for h in dense],
        }
        fused = fuse(self.config.fusion, rankings, rrf_k=self.config.rrf_k, weights=self.weights)[:k]
        return [
            Hit(
                chunk=merged[cid].chunk,
                score=score,
                rank=rank,
                scores={**merged[cid].scores, "fusion": score},
                ranks={**merged[cid].ranks, "fusion": rank},
            )
            for rank, (cid, score) in enumerate(fused, start=1)
        ]


RetrieverFactory = Callable[[SearchIndex, QueryEncoder | None, RetrievalConfig], Retriever]


def _hybrid(index: SearchIndex, encoder: QueryEncoder | None, config: RetrievalConfig) -> Retriever:
    return HybridRetriever(BM25Retriever(index), DenseRetriever(index, encoder), config=config)


RETRIEVERS: dict[RetrievalMode, RetrieverFactory] = {
    "bm25": lambda index, encoder, config: BM25Retriever(index),
    "dense": lambda index, encoder, config: DenseRetriever(index, encoder),
    "hybrid": _hybrid,
}


def build_retriever(
    index: SearchIndex,
    config: RetrievalConfig | None = None,
    *,
    mode: RetrievalMode | None = None,
    encoder: QueryEncoder | None = None,
) -> Retriever:
    """The retriever for ``mode`` (default: ``config.mode``) over ``index``."""
    config = config or RetrievalConfig()
    return RETRIEVERS[mode or config.mode](index, encoder, config)
