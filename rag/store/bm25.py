"""BM25 at query time: the tokeniser, the sparse score matrix and its top-k (the reading half;
:mod:`ingest.bm25` builds the matrix with bm25s).

Scores equal rank-bm25's ``BM25Okapi(k1, b, epsilon=0)`` (the reference formula):

    score(q, d) = sum over query tokens t (repeats counted) of
                  idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = max(0, ln((N - df(t) + 0.5) / (df(t) + 0.5)))

The matrix is stored as CSC arrays (``data``, ``indices``, ``indptr``; one column per vocabulary
term), so a query costs one ``np.bincount`` over the postings of its terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from rag.config import BM25Config
from rag.errors import ConfigError

_TOKEN = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=8)
def stopword_list(name: str | None) -> tuple[str, ...]:
    """The stop-word list bm25s ships for a language code (``"en"``); stored in the manifest."""
    if not name:
        return ()
    from bm25s import stopwords as sw  # bm25s (and its scipy) loads only when a stop-word list is asked for

    lists = {"en": sw.STOPWORDS_EN, "english": sw.STOPWORDS_EN}
    extra = {code: getattr(sw, f"STOPWORDS_{code.upper()}", None) for code in ("de", "fr", "es", "it", "nl", "pt")}
    lists.update({k: v for k, v in extra.items() if v})
    if name.lower() not in lists:
        raise ConfigError(f"bm25.stopwords: unknown list {name!r}; choose one of {', '.join(sorted(lists))} or null")
    return tuple(sorted(lists[name.lower()]))


@dataclass(frozen=True)
class BM25Tokenizer:
    """Regex word tokens, optionally lowercased, stop words removed, then Snowball-stemmed."""

    lowercase: bool = True
    stopwords: tuple[str, ...] = ()
    stemmer: str | None = None
    _stop: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_stop", frozenset(w.lower() for w in self.stopwords))

    @classmethod
    def from_config(cls, config: BM25Config) -> BM25Tokenizer:
        return cls(config.lowercase, stopword_list(config.stopwords), config.stemmer)

    @classmethod
    def from_manifest(cls, params: dict[str, Any]) -> BM25Tokenizer:
        return cls(bool(params["lowercase"]), tuple(params["stopword_list"]), params.get("stemmer"))

    def to_manifest(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase, "stopword_list": list(self.stopwords), "stemmer": self.stemmer}

    def __call__(self, text: str) -> list[str]:
        tokens = _TOKEN.findall(text.lower() if self.lowercase else text)
        if self._stop:
            tokens = [t for t in tokens if t.lower() not in self._stop]
        if self.stemmer and tokens:
            return list(_stemmer(self.stemmer).stemWords(tokens))
        return tokens

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self(text) for text in texts]


@lru_cache(maxsize=4)
def _stemmer(name: str) -> Any:
    import Stemmer  # PyStemmer loads on first use

    try:
        return Stemmer.Stemmer(name)
    except KeyError as e:
        raise ConfigError(
            f"bm25.stemmer: unknown stemmer {name!r}; choose one of {', '.join(Stemmer.algorithms())} or null"
        ) from e


@dataclass(frozen=True)
class BM25Matrix:
    """Per (document, term) BM25 weights as CSC arrays; ``vocab`` maps term to column."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    num_docs: int
    vocab: dict[str, int]

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """Full float64 score vector over all documents (repeated query tokens count again)."""
        out = np.zeros(self.num_docs, dtype=np.float64)
        columns = [self.vocab[t] for t in tokens if t in self.vocab]
        if not columns:
            return out
        starts, ends = self.indptr[columns], self.indptr[np.asarray(columns) + 1]
        rows = np.concatenate([self.indices[s:e] for s, e in zip(starts, ends, strict=True)])
        weights = np.concatenate([self.data[s:e] for s, e in zip(starts, ends, strict=True)])
        return np.bincount(rows, weights=weights, minlength=self.num_docs).astype(np.float64)


def top_k(scores: np.ndarray, k: int, ids: Sequence[str], allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """Rows with score > 0 (and allowed), best first, ties broken by chunk id."""
    if k <= 0:
        return []
    mask = scores > 0
    if allowed is not None:
        mask &= allowed
    rows = np.flatnonzero(mask)
    if len(rows) > k:
        kth = np.partition(scores[rows], len(rows) - k)[len(rows) - k]
        rows = rows[scores[rows] >= kth]
    ordered = sorted(rows.tolist(), key=lambda r: (-scores[r], ids[r]))
    return [(r, float(scores[r])) for r in ordered[:k]]
