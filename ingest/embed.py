"""Embedding of chunk texts: L2-normalised float32. With a progress bar, texts go in groups of
``GROUP_BATCHES`` batches, longest first (so batches pad little), and the bar advances per group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

GROUP_BATCHES = 8


def embed_texts(model: Any, texts: Sequence[str], *, batch_size: int, progress: bool = False) -> np.ndarray:
    """``(len(texts), dim)`` float32 with unit rows; a progress bar over batches when ``progress``."""
    dim = embedding_dimension(model)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    if not progress:  # one call: sentence-transformers sorts by length and batches exactly as alone
        return _encode(model, list(texts), batch_size)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    group = batch_size * GROUP_BATCHES
    bar = _bar(len(texts), progress)
    try:
        for begin in range(0, len(order), group):
            rows = order[begin : begin + group]
            out[rows] = _encode(model, [texts[i] for i in rows], batch_size)
            if bar is not None:
                bar.update(len(rows))
    finally:
        if bar is not None:
            bar.close()
    return out


def _encode(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="embedding", unit="chunk", leave=False)


def embedding_dimension(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
