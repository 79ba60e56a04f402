"""What retrieval needs from a store, as Protocols: searches return chunks with scores, never row numbers.

A :class:`VectorStore` holds chunks and their embeddings and answers nearest-neighbour queries; a
:class:`SearchIndex` also answers keyword (BM25) queries, which the ``bm25`` and ``hybrid`` retrieval
modes need. Neither asks for the whole corpus in memory: a store yields its chunks one at a time
(:meth:`~VectorStore.iter_chunks`, for the few consumers that walk the corpus) and returns only the hits of
a search. The plain-file index that ``rag ingest`` writes (:class:`rag.store.plain.Index`) is one
implementation; :mod:`rag.store.registry` opens stores by name.

Contract every store keeps (checked by ``tests/rag/test_store_contract.py``):

* a search returns, per query, at most ``k`` :data:`ScoredChunk` pairs, best first; keyword search returns
  only chunks with a score above 0; vector scores are inner products of L2-normalised vectors (cosine);
* ``filters`` restrict the candidates *before* the top ``k`` are taken (a filtered search still returns
  ``k`` hits when ``k`` chunks match);
* :meth:`~VectorStore.reload` returns the store as its backing data is now (itself when nothing changed);
  the store it was called on keeps answering.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from rag.types import Chunk, Filters

ScoredChunk = tuple[Chunk, float]
"""A chunk a store found and the store's score for it: a plain pair, since one query makes hundreds."""


@runtime_checkable
class VectorStore(Protocol):
    """Chunks and their embeddings, searched by vector."""

    @property
    def embedding_model(self) -> str:
        """The sentence-transformers model the stored vectors come from; queries must be encoded with it."""
        ...

    def __len__(self) -> int: ...

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every stored chunk, once each, in a stable order."""
        ...

    def vector_search(
        self, query_vectors: np.ndarray, k: int, *, filters: Filters | None = None
    ) -> list[list[ScoredChunk]]:
        """Per query vector (rows of a float32 array, L2-normalised) the ``k`` nearest chunks, best first."""
        ...

    def reload(self) -> VectorStore:
        """The store as its backing data is now (``self`` when nothing changed)."""
        ...


@runtime_checkable
class SearchIndex(VectorStore, Protocol):
    """A vector store that also answers keyword (BM25) queries."""

    def keyword_search(
        self, queries: Sequence[str], k: int, *, filters: Filters | None = None
    ) -> list[list[ScoredChunk]]:
        """Per query the ``k`` best chunks with a keyword score above 0, best first."""
        ...
