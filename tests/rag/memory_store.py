"""An in-memory store, written the way a third-party store would be: nothing here is part of ragtrail.

:class:`MemoryStore` mirrors the index ``rag ingest`` writes: opening it copies every chunk and vector of the
live generation into dicts keyed by chunk id; :meth:`MemoryStore.reload` applies a newer generation as a
vector database would (delete the ids that are gone, upsert the rest, keep the vectors it already holds).
It answers every search with its own code: brute-force inner products over its vectors, and rank-bm25's
``BM25Okapi(k1, b, epsilon=0)`` (the formula the plain store reproduces) over the index's analyser.
The test modules register it under a name with :func:`rag.store.register_store`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
from rank_bm25 import BM25Okapi

from rag.config import PipelineConfig
from rag.store import ScoredChunk, current_generation, open_index
from rag.store.bm25 import BM25Tokenizer
from rag.types import Chunk, Filters


class MemoryStore:
    """Chunks and vectors in dicts; ``opened`` lists every location opened (the tests check it was used)."""

    opened: ClassVar[list[str]] = []

    def __init__(
        self,
        root: Path,
        generation: Path,
        *,
        model: str,
        chunks: dict[str, Chunk],
        vectors: dict[str, np.ndarray],
        tokenizer: BM25Tokenizer,
        k1: float,
        b: float,
    ) -> None:
        self.root = root
        self.generation = generation
        self._model = model
        self._chunks = chunks
        self._vectors = vectors
        self._tokenizer = tokenizer
        self._k1, self._b = k1, b
        self._ids = list(chunks)
        dim = next(iter(vectors.values())).shape[0] if vectors else 0
        self._matrix = np.stack([vectors[i] for i in self._ids]).astype(np.float32) if self._ids else np.zeros((0, dim))
        tokens = [tokenizer(chunks[i].text) for i in self._ids]
        # rank-bm25 divides by the corpus size and by the average length: it cannot hold an empty corpus
        self._bm25 = BM25Okapi(tokens, k1=k1, b=b, epsilon=0.0) if any(tokens) else None

    @classmethod
    def open(cls, location: str, config: PipelineConfig) -> MemoryStore:
        cls.opened.append(location)
        return cls._from_generation(Path(location), {}, {})

    @classmethod
    def _from_generation(cls, root: Path, chunks: dict[str, Chunk], vectors: dict[str, np.ndarray]) -> MemoryStore:
        source = open_index(root)  # the files `rag ingest` wrote; only their rows are used
        live = set(source.ids)
        for gone in [cid for cid in chunks if cid not in live]:
            del chunks[gone]
            del vectors[gone]
        for row, chunk in enumerate(source.chunks):
            chunks[chunk.id] = chunk
            if chunk.id not in vectors:
                vectors[chunk.id] = np.array(source.embeddings[row], dtype=np.float32)
        bm25 = source.manifest["bm25"]
        return cls(
            root,
            source.generation,
            model=source.embedding_model,
            chunks=chunks,
            vectors=vectors,
            tokenizer=BM25Tokenizer.from_manifest(bm25),
            k1=float(bm25["config"]["k1"]),
            b=float(bm25["config"]["b"]),
        )

    @property
    def embedding_model(self) -> str:
        return self._model

    def __len__(self) -> int:
        return len(self._ids)

    def iter_chunks(self) -> Iterator[Chunk]:
        for cid in self._ids:
            yield self._chunks[cid]

    def reload(self) -> MemoryStore:
        if current_generation(self.root) == self.generation:
            return self
        return self._from_generation(self.root, dict(self._chunks), dict(self._vectors))

    def vector_search(
        self, query_vectors: np.ndarray, k: int, *, filters: Filters | None = None
    ) -> list[list[ScoredChunk]]:
        queries = np.atleast_2d(np.asarray(query_vectors, dtype=np.float32))
        allowed = self._allowed(filters)
        if not self._ids:
            return [[] for _ in queries]
        return [self._top(self._matrix @ q, k, allowed, positive=False) for q in queries]

    def keyword_search(
        self, queries: Sequence[str], k: int, *, filters: Filters | None = None
    ) -> list[list[ScoredChunk]]:
        allowed = self._allowed(filters)
        if self._bm25 is None:
            return [[] for _ in queries]
        return [self._top(self._bm25.get_scores(self._tokenizer(q)), k, allowed, positive=True) for q in queries]

    def _allowed(self, filters: Filters | None) -> list[bool] | None:
        if filters is None:
            return None
        return [filters.matches(self._chunks[cid]) for cid in self._ids]

    def _top(self, scores: np.ndarray, k: int, allowed: list[bool] | None, *, positive: bool) -> list[ScoredChunk]:
        rows = [r for r in range(len(self._ids)) if (allowed is None or allowed[r]) and (not positive or scores[r] > 0)]
        rows.sort(key=lambda r: (-float(scores[r]), self._ids[r]))
        return [(self._chunks[self._ids[r]], float(scores[r])) for r in rows[: max(k, 0)]]


def open_memory_store(location: str, config: PipelineConfig) -> MemoryStore:
    return MemoryStore.open(location, config)
