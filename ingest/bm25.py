"""Building the BM25 matrix with bm25s, rescaled to rank-bm25's ``BM25Okapi(k1, b, epsilon=0)`` scores.

bm25s ``method="robertson"`` computes the same idf (negative values clipped to 0, which is what
``epsilon=0`` does in rank-bm25) but leaves out the constant factor ``(k1 + 1)``; we multiply it back
in and keep the matrix in float64, so the scores agree to about 1e-12 rather than only in ranking.
The tokeniser, the matrix type and query-time scoring live in :mod:`rag.store.bm25`.
"""

from __future__ import annotations

import numpy as np

from rag.store.bm25 import BM25Matrix


def build_matrix(corpus_tokens: list[list[str]], *, k1: float, b: float) -> BM25Matrix:
    """Index tokenised documents with bm25s (Robertson idf) and rescale to rank-bm25's formula."""
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in corpus_tokens]
    n = len(corpus_tokens)
    if n == 0 or not vocab:
        empty_i = np.zeros(0, dtype=np.int32)
        return BM25Matrix(np.zeros(0), empty_i, np.zeros(len(vocab) + 1, dtype=np.int64), n, vocab)
    import bm25s  # bm25s and scipy load only when an index is built

    model = bm25s.BM25(k1=k1, b=b, method="robertson", dtype="float64", int_dtype="int32")
    model.index((ids, dict(vocab)), create_empty_token=False, show_progress=False)
    scores = model.scores
    data = np.asarray(scores["data"], dtype=np.float64) * (k1 + 1.0)
    indptr = np.asarray(scores["indptr"], dtype=np.int64)
    if len(indptr) != len(vocab) + 1:
        raise RuntimeError(f"bm25s returned {len(indptr) - 1} columns for {len(vocab)} terms")
    return BM25Matrix(data, np.asarray(scores["indices"], dtype=np.int32), indptr, n, vocab)
