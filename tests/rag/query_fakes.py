"""Small in-memory stand-ins for the index and the LLM, for unit tests of the query side."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from rank_bm25 import BM25Okapi

from rag.store import ScoredChunk
from rag.types import Chunk, Filters, Hit

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


class HashEncoder:
    """Bag-of-words hashed into 64 dimensions, normalised: similar wording -> similar vectors."""

    dim = 64

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in words(text):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def _top(scores: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    rows = np.arange(len(scores)) if allowed is None else np.flatnonzero(allowed)
    order = sorted(rows.tolist(), key=lambda r: (-scores[r], r))[:k]
    return [(r, float(scores[r])) for r in order]


@dataclass
class FakeIndex:
    """A ``rag.store.SearchIndex`` over a few chunks: hashed bag-of-words vectors and rank-bm25 scores.
    ``filters_seen`` records the filters every search was given."""

    chunks: list[Chunk]
    embedding_model: str = "hash-64"
    encoder: HashEncoder = field(default_factory=HashEncoder)

    def __post_init__(self) -> None:
        self.vectors = self.encoder.encode([c.text for c in self.chunks])
        self.encoder.calls.clear()
        self.bm25 = BM25Okapi([words(c.text) for c in self.chunks])
        self.filters_seen: list[Filters | None] = []

    def __len__(self) -> int:
        return len(self.chunks)

    def iter_chunks(self) -> Iterator[Chunk]:
        return iter(self.chunks)

    def reload(self) -> FakeIndex:
        return self

    def vector_search(self, query_vectors: np.ndarray, k: int, *, filters: Filters | None = None):
        allowed = self._allowed(filters)
        return [self._scored(_top(self.vectors @ q, k, allowed)) for q in query_vectors]

    def keyword_search(self, queries: Sequence[str], k: int, *, filters: Filters | None = None):
        allowed = self._allowed(filters)
        found = [_top(self.bm25.get_scores(words(q)), k, allowed) for q in queries]
        return [self._scored([(r, s) for r, s in rows if s > 0]) for rows in found]

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        self.filters_seen.append(filters)
        return None if filters is None else np.array([filters.matches(c) for c in self.chunks], dtype=bool)

    def _scored(self, rows: list[tuple[int, float]]) -> list[ScoredChunk]:
        return [(self.chunks[r], s) for r, s in rows]


def chunk(i: int | str, text: str, source: str = "doc.md", page: int | None = None) -> Chunk:
    return Chunk(id=f"c{i}", source=source, text=text, page=page)


def hit(i: int | str, text: str = "some text", score: float = 1.0, rank: int = 1, **kw) -> Hit:
    return Hit(chunk=chunk(i, text, **kw), score=score, rank=rank, scores={"fusion": score})


def count_words(text: str) -> int:
    """A stand-in tokenizer: one token per word or punctuation mark."""
    return len(re.findall(r"\w+|[^\w\s]", text))


@dataclass
class ScriptedLLM:
    """Answers with a fixed text; records the messages it was given."""

    reply: str = "Paris is the capital [1]."
    name: str = "scripted"
    context_window: int = 4096
    seen: list[list[dict[str, str]]] = field(default_factory=list)

    def count_tokens(self, text: str) -> int:
        return count_words(text)

    def complete(
        self, messages, *, max_tokens=512, temperature=0.0, seed=0, json_schema=None, top_logprobs=0, stop=None
    ):
        from rag.llm import Completion

        self.seen.append(list(messages))
        return Completion(text=self.reply, prompt_tokens=10, completion_tokens=5, finish_reason="stop", logprobs=None)

    def stream(self, messages, *, max_tokens=512, temperature=0.0, seed=0, stop=None) -> Iterator[str]:
        self.seen.append(list(messages))
        yield from re.findall(r"\S+\s*", self.reply)
