"""Data types shared by every stage: a stored :class:`Chunk`, a retrieved :class:`Hit` and the metadata
:class:`Filters` a search applies."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """One indexed passage.

    ``source`` is the document's path relative to the ingested folder (POSIX separators) or, for a
    BEIR corpus, the document id. ``start``/``end`` are character offsets into the cleaned document
    text; ``page`` is 1-based for PDFs and ``None`` otherwise; ``heading`` is the Markdown/HTML
    heading path ("Intro > Setup") the chunk falls under; ``ocr`` is true when the chunk's page was read
    by OCR (a scanned PDF page or an image file), so its text may hold recognition errors.
    """

    id: str
    source: str
    text: str
    ordinal: int = 0
    start: int = 0
    end: int = 0
    page: int | None = None
    title: str | None = None
    heading: str | None = None
    ocr: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "text": self.text,
            "ordinal": self.ordinal,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "title": self.title,
            "heading": self.heading,
            "ocr": self.ocr,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a retriever. ``scores`` keeps each stage's score: bm25, dense, fusion, rerank;
    ``ranks`` the 1-based rank the chunk had at each of those stages."""

    chunk: Chunk
    score: float
    rank: int
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": self.score,
            "scores": dict(self.scores),
            "ranks": dict(self.ranks),
            **self.chunk.to_dict(),
        }


@dataclass(frozen=True)
class Filters:
    """Metadata filters. ``source``: glob patterns on the chunk's source path (any may match)."""

    source: tuple[str, ...] = ()

    @classmethod
    def of(cls, source: str | Sequence[str] | None = None) -> Filters | None:
        if source is None or source == () or source == []:
            return None
        return cls(source=(source,) if isinstance(source, str) else tuple(source))

    def matches(self, chunk: Chunk) -> bool:
        return not self.source or any(fnmatch.fnmatchcase(chunk.source, pattern) for pattern in self.source)
