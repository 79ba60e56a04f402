"""The plain-file index ``rag ingest`` writes (:mod:`rag.store.layout`), loaded read-only: the reference store.

:func:`open_index` loads the live generation; :class:`Index` answers the :class:`~rag.store.base.SearchIndex`
searches (chunks with scores) on top of its row-level ones (``dense_search``/``bm25_search``: row numbers,
used by ingestion and the format's own tests). Chunk texts and the BM25 matrix are held in memory, the
embeddings are memory-mapped and FAISS is read on first use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import DenseIndexConfig, from_dict
from rag.errors import IndexNotFoundError, IndexVersionError
from rag.store import dense
from rag.store.base import ScoredChunk
from rag.store.bm25 import BM25Matrix, BM25Tokenizer, top_k
from rag.store.layout import (
    BM25_ARRAYS,
    BM25_VOCAB,
    CHUNKS,
    EMBEDDINGS,
    FAISS,
    check_manifest,
    current_generation,
    read_manifest,
)
from rag.types import Chunk, Filters

if TYPE_CHECKING:
    from numpy.typing import NDArray

RowScores = list[tuple[int, float]]


class Index:
    """A loaded, read-only index. Row ``i`` of every structure is ``chunks[i]``."""

    def __init__(self, path: Path, generation: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.generation = generation
        self.manifest = manifest
        self.embedding_model: str = manifest["embedding"]["model"]
        self.dimension: int = int(manifest["embedding"]["dimension"])
        self.chunks: list[Chunk] = _read_chunks(generation / CHUNKS)
        self.ids: list[str] = [c.id for c in self.chunks]
        self.bm25_tokenizer = BM25Tokenizer.from_manifest(manifest["bm25"])
        self.bm25 = _read_bm25(generation, len(self.chunks))
        self.embeddings: np.ndarray = np.load(generation / EMBEDDINGS, mmap_mode="r", allow_pickle=False)
        self._masks = MaskCache(self.chunks)
        if int(manifest["counts"]["chunks"]) != len(self.chunks):
            expected = manifest["counts"]["chunks"]
            raise IndexVersionError(
                f"{generation}: manifest lists {expected} chunks, chunks.jsonl has {len(self.chunks)}; "
                "re-run `rag ingest`"
            )

    def __len__(self) -> int:
        return len(self.chunks)

    def __repr__(self) -> str:
        return f"Index({str(self.path)!r}, chunks={len(self.chunks)}, model={self.embedding_model!r})"

    @cached_property
    def faiss_index(self) -> Any:
        """The FAISS index, read on first use (the previous generation is kept for such late readers)."""
        path = self.generation / FAISS
        if not path.is_file():
            raise IndexNotFoundError(f"{path} is gone (replaced by a newer `rag ingest`): open the index again")
        return dense.read_faiss(path, from_dict(DenseIndexConfig, self.manifest["dense_index"]))

    @property
    def vocabulary_size(self) -> int:
        return len(self.bm25.vocab)

    # ---- the SearchIndex protocol -----------------------------------------------------------------

    def iter_chunks(self) -> Iterator[Chunk]:
        return iter(self.chunks)

    def vector_search(
        self, query_vectors: np.ndarray, k: int, *, filters: Filters | None = None
    ) -> list[list[ScoredChunk]]:
        mask = self._masks.get(filters)
        return [self._scored(rows) for rows in self.dense_search(query_vectors, k, allowed=mask)]

    def keyword_search(
        self, queries: Sequence[str], k: int, *, filters: Filters | None = None
    ) -> list[list[ScoredChunk]]:
        mask = self._masks.get(filters)
        return [self._scored(rows) for rows in self.bm25_search(queries, k, allowed=mask)]

    def reload(self) -> Index:
        """The live generation: ``self`` when it is still this one, else the new one, FAISS read now (while
        its files are certainly there)."""
        if current_generation(self.path) == self.generation:
            return self
        index = open_index(self.path)
        _ = index.faiss_index
        return index

    def _scored(self, rows: RowScores) -> list[ScoredChunk]:
        chunks = self.chunks
        return [(chunks[row], score) for row, score in rows]

    # ---- row-level searches -----------------------------------------------------------------------

    def dense_search(self, query_vectors: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> list[RowScores]:
        """Per query ``[(row, inner product)]`` best first, ties by row; queries must be normalised."""
        query_vectors = np.atleast_2d(np.asarray(query_vectors, dtype=np.float32))
        if query_vectors.shape[1] != self.dimension:
            raise ValueError(
                f"query vectors have dimension {query_vectors.shape[1]}, the index {self.dimension} "
                f"(encode queries with {self.embedding_model!r})"
            )
        return dense.search(self.faiss_index, query_vectors, k, allowed=_mask(allowed, len(self)))

    def bm25_scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (rank-bm25 ``BM25Okapi(epsilon=0)`` formula)."""
        return self.bm25.scores(self.bm25_tokenizer(query))

    def bm25_search(self, queries: Sequence[str], k: int, *, allowed: np.ndarray | None = None) -> list[RowScores]:
        """Per query ``[(row, score)]`` for rows with score > 0, best first, ties by chunk id."""
        if isinstance(queries, str):
            raise TypeError("bm25_search takes a sequence of queries, not a single string")
        mask = _mask(allowed, len(self))
        return [top_k(self.bm25_scores(q), k, self.ids, mask) for q in queries]

    def check_embedding_model(self, name: str) -> None:
        """Refuse a query-side model that differs from the one the index was built with."""
        if name != self.embedding_model:
            raise IndexVersionError(
                f"index {self.path} was built with embedding model {self.embedding_model!r}, "
                f"but {name!r} was requested: re-run `rag ingest` with this model or use the index's model"
            )


def allowed_mask(chunks: Sequence[Chunk], filters: Filters | None) -> NDArray[np.bool_] | None:
    """Boolean mask over ``chunks`` (``None`` when nothing is filtered)."""
    if filters is None or not filters.source:
        return None
    return np.fromiter((filters.matches(c) for c in chunks), dtype=bool, count=len(chunks))


class MaskCache:
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


def _mask(allowed: np.ndarray | None, n: int) -> np.ndarray | None:
    if allowed is None:
        return None
    mask = np.asarray(allowed, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"allowed must be a boolean mask of length {n}, got shape {mask.shape}")
    return mask


def open_index(path: str | Path, *, embedding_model: str | None = None) -> Index:
    """Load the index at ``path``; refuse a missing index, another format version or model."""
    root = Path(path)
    for attempt in range(3):
        generation = current_generation(root)
        try:
            manifest = read_manifest(generation)
            check_manifest(manifest, generation)
            index = Index(root, generation, manifest)
        except FileNotFoundError:
            if attempt == 2 or generation == current_generation(root):
                raise IndexNotFoundError(f"{generation}: index files are missing; re-run `rag ingest`") from None
            continue  # a concurrent ingest replaced the generation while we read it
        if embedding_model is not None:
            index.check_embedding_model(embedding_model)
        return index
    raise AssertionError("unreachable")


def _read_chunks(path: Path) -> list[Chunk]:
    with open(path, encoding="utf-8") as fh:
        return [Chunk.from_dict(json.loads(line)) for line in fh if line.strip()]


def _read_bm25(generation: Path, n: int) -> BM25Matrix:
    arrays = {name: np.load(generation / f"bm25.{name}.npy", allow_pickle=False) for name in BM25_ARRAYS}
    with open(generation / BM25_VOCAB, encoding="utf-8") as fh:
        terms = json.load(fh)
    vocab = {term: i for i, term in enumerate(terms)}
    return BM25Matrix(arrays["data"], arrays["indices"], arrays["indptr"], n, vocab)
