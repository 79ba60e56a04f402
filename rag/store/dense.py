"""FAISS at query time: read an index written by :mod:`ingest.dense` and search it, optionally restricted
to some rows. Inner product of L2-normalised vectors is cosine similarity; results are sorted by
``(-score, row)``. faiss loads on first use (importing this module stays cheap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rag.config import DenseIndexConfig

TIE_MARGIN = 8


def read_faiss(path: Path, config: DenseIndexConfig) -> Any:
    import faiss  # heavy: loads on first use

    index: Any = faiss.read_index(str(path))
    if config.kind == "hnsw":
        index.hnsw.efSearch = config.hnsw_ef_search
    return index


def _selection(faiss: Any, index: Any, rows: np.ndarray) -> Any:
    """Search parameters restricted to ``rows``; HNSW keeps the index's own efSearch."""
    selector = faiss.IDSelectorBatch(rows.astype(np.int64))
    hnsw = getattr(index, "hnsw", None)
    if hnsw is not None:
        return faiss.SearchParametersHNSW(sel=selector, efSearch=hnsw.efSearch)
    return faiss.SearchParameters(sel=selector)


def search(
    index: Any, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None
) -> list[list[tuple[int, float]]]:
    """Per query ``[(row, inner product)]``, best first, ties by row; ``allowed`` is a row mask."""
    import faiss as faiss_module  # heavy: loads on first use (already loaded by read_faiss in practice)

    faiss: Any = faiss_module
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    n = index.ntotal
    if n == 0 or k <= 0:
        return [[] for _ in range(len(queries))]
    params = None
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        if len(allowed) != n:
            raise ValueError(f"allowed mask has {len(allowed)} entries for an index of {n} rows")
        count = int(allowed.sum())
        if count == 0:
            return [[] for _ in range(len(queries))]
        params = _selection(faiss, index, np.flatnonzero(allowed))
        n = count
    # a few extra candidates so exact ties at the cut-off are decided by row id, not by FAISS's heap
    scores, rows = index.search(queries, min(k + TIE_MARGIN, n), params=params)
    results = []
    for row_ids, row_scores in zip(rows, scores, strict=True):
        pairs = [(int(r), float(s)) for r, s in zip(row_ids, row_scores, strict=True) if r >= 0]
        results.append(sorted(pairs, key=lambda p: (-p[1], p[0]))[:k])
    return results
