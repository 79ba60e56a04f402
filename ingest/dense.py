"""Building and writing FAISS indexes over L2-normalised float32 embeddings: exact inner product
(``flat``) or HNSW. Reading and searching them is :mod:`rag.store.dense`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import DenseIndexConfig, DenseIndexKind


def _flat(dim: int, config: DenseIndexConfig) -> Any:
    import faiss  # heavy: loads on first use

    return faiss.IndexFlatIP(dim)


def _hnsw(dim: int, config: DenseIndexConfig) -> Any:
    import faiss  # heavy: loads on first use

    index: Any = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = config.hnsw_ef_construction
    index.hnsw.efSearch = config.hnsw_ef_search
    return index


FACTORIES: dict[DenseIndexKind, Callable[[int, DenseIndexConfig], Any]] = {"flat": _flat, "hnsw": _hnsw}


def build_faiss(embeddings: np.ndarray, config: DenseIndexConfig) -> Any:
    index = FACTORIES[config.kind](embeddings.shape[1], config)
    if len(embeddings):
        index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
    return index


def write_faiss(index: Any, path: Path) -> None:
    import faiss  # heavy: loads on first use

    faiss.write_index(index, str(path))
