"""Retrieval over a store: BM25, dense and their hybrid fusion.

Every retriever satisfies :class:`Retriever`: ``search(query, k=...)`` and the batched
``search_many(queries, k=...)`` (all queries embedded in one call). Hits are sorted by
``(-score, chunk id)`` and carry each stage's score and rank in ``Hit.scores`` / ``Hit.ranks``.
Retrievers search a store (:mod:`rag.store`): the dense retriever any :class:`~rag.store.VectorStore`,
the BM25 retriever a :class:`~rag.store.SearchIndex` (one with keyword search). Metadata filters are
handed to the store, so they apply before the top ``k`` and before fusion. :data:`RETRIEVERS` builds the
retriever of each :data:`~rag.config.RetrievalMode`.
Per-stage wall time in milliseconds is added to an optional ``timings`` mapping; loading a model on
first use is timed as ``load``, not as the stage that needed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import numpy as np

from rag.config import RetrievalConfig, RetrievalMode
from rag.errors import ConfigError
from rag.fusion import fuse, sort_scored
from rag.models import load_embedder
from rag.store import ScoredChunk, SearchIndex, VectorStore
from rag.types import Filters, Hit

__all__ = [
    "RETRIEVERS",
    "BM25Retriever",
    "DenseRetriever",
    "Filters",
    "HybridRetriever",
    "QueryEncoder",
    "Retriever",
    "RetrieverFactory",
    "SearchIndex",
    "SentenceTransformerEncoder",
    "Timings",
    "VectorStore",
    "build_retriever",
    "timed",
    "to_hits",
]

Timings = MutableMapping[str, float]


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
        load_embedder(self.model_name, self.device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = load_embedder(self.model_name, self.device)
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def to_hits(found: Sequence[ScoredChunk], stage: str, k: int) -> list[Hit]:
    """A store's results -> hits sorted by ``(-score, id)``, ranked 1.., the stage's score and rank recorded;
    a chunk found twice keeps its best score."""
    best: dict[str, ScoredChunk] = {}
    for chunk, score in found:
        seen = best.get(chunk.id)
        if seen is None or score > seen[1]:
            best[chunk.id] = (chunk, score)
    ranked = sort_scored({cid: float(score) for cid, (_chunk, score) in best.items()})[:k]
    return [
        Hit(chunk=best[cid][0], score=s, rank=r, scores={stage: s}, ranks={stage: r})
        for r, (cid, s) in enumerate(ranked, start=1)
    ]


class _StoreRetriever:
    name: str = ""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    def search(
        self, query: str, *, k: int, filters: Filters | None = None, timings: Timings | None = None
    ) -> list[Hit]:
        return self.search_many([query], k=k, filters=filters, timings=timings)[0]

    def search_many(
        self, queries: Sequence[str], *, k: int, filters: Filters | None = None, timings: Timings | None = None
    ) -> list[list[Hit]]:
        if not queries:
            return []
        if k <= 0 or len(self.store) == 0:
            return [[] for _ in queries]
        found = self._search(queries, k, filters, timings)
        return [to_hits(f, self.name, k) for f in found]

    def _search(
        self, queries: Sequence[str], k: int, filters: Filters | None, timings: Timings | None
    ) -> list[list[ScoredChunk]]:
        raise NotImplementedError


class BM25Retriever(_StoreRetriever):
    name = "bm25"

    def __init__(self, store: VectorStore) -> None:
        if not isinstance(store, SearchIndex):
            raise ConfigError(
                f"retrieval mode bm25 needs a store with keyword search; {type(store).__name__} has only vector "
                "search: use retrieval.mode: dense (or --mode dense)"
            )
        super().__init__(store)
        self.keywords: SearchIndex = store

    def _search(
        self, queries: Sequence[str], k: int, filters: Filters | None, timings: Timings | None
    ) -> list[list[ScoredChunk]]:
        with timed(timings, "bm25"):
            return self.keywords.keyword_search(list(queries), k, filters=filters)


class DenseRetriever(_StoreRetriever):
    name = "dense"

    def __init__(self, store: VectorStore, encoder: QueryEncoder | None = None) -> None:
        super().__init__(store)
        self.encoder = encoder or SentenceTransformerEncoder(store.embedding_model)
        self._loaded = False

    def _search(
        self, queries: Sequence[str], k: int, filters: Filters | None, timings: Timings | None
    ) -> list[list[ScoredChunk]]:
        load = getattr(self.encoder, "load", None)
        if load is not None and not self._loaded:
            with timed(timings, "load"):
                load()
            self._loaded = True
        with timed(timings, "embed"):
            vectors = self.encoder.encode(list(queries))
        with timed(timings, "dense"):
            return self.store.vector_search(vectors, k, filters=filters)


class HybridRetriever:
    """BM25 + dense, each ``depth`` deep, fused by RRF or weighted normalised scores."""

    name = "hybrid"

    def __init__(self, bm25: Retriever, dense: Retriever, *, config: RetrievalConfig | None = None) -> None:
        self.bm25 = bm25
        self.dense = dense
        self.config = config or RetrievalConfig()
        w = self.config.dense_weight  # in [0, 1]: RetrievalConfig checks it
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


RetrieverFactory = Callable[[VectorStore, QueryEncoder | None, RetrievalConfig], Retriever]


def _hybrid(store: VectorStore, encoder: QueryEncoder | None, config: RetrievalConfig) -> Retriever:
    return HybridRetriever(BM25Retriever(store), DenseRetriever(store, encoder), config=config)


RETRIEVERS: dict[RetrievalMode, RetrieverFactory] = {
    "bm25": lambda store, encoder, config: BM25Retriever(store),
    "dense": lambda store, encoder, config: DenseRetriever(store, encoder),
    "hybrid": _hybrid,
}


def build_retriever(
    store: VectorStore,
    config: RetrievalConfig | None = None,
    *,
    mode: RetrievalMode | None = None,
    encoder: QueryEncoder | None = None,
) -> Retriever:
    """The retriever for ``mode`` (default: ``config.mode``) over ``store``; a mode the store cannot serve
    (``bm25``/``hybrid`` over a store without keyword search) is a :class:`~rag.errors.ConfigError`."""
    config = config or RetrievalConfig()
    return RETRIEVERS[mode or config.mode](store, encoder, config)
