"""What the pipeline returns: a :class:`SearchResult` from ``search``, an :class:`Answer` (with its
:class:`Source` list) from ``ask``. Typed, frozen, with ``to_dict`` for JSON output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag.answering import Decision
from rag.citations import CitationCheck, Citations
from rag.config import RetrievalMode
from rag.followup import FollowUp
from rag.prompt import Passage, Prompt
from rag.rerank import RerankStatus
from rag.types import Hit


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: RetrievalMode
    hits: list[Hit]
    reranked: bool
    rerank: RerankStatus
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "mode": self.mode,
            "reranked": self.reranked,
            "rerank": self.rerank.to_dict(),
            "hits": [h.to_dict() for h in self.hits],
            "timings_ms": dict(self.timings),
        }


@dataclass(frozen=True)
class Source:
    """An entry of the answer's source list; ``ocr``: the passage's page was read by OCR."""

    number: int
    source: str
    page: int | None
    chunk_id: str
    ocr: bool = False

    def label(self) -> str:
        page = f", page {self.page}" if self.page is not None else ""
        return f"[{self.number}] {self.source}{page}" + (" (OCR)" if self.ocr else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "source": self.source,
            "page": self.page,
            "chunk_id": self.chunk_id,
            "ocr": self.ocr,
        }


@dataclass(frozen=True)
class Answer:
    """``answer`` has citations to missing sources removed; ``raw_answer`` is what the LLM wrote (empty when
    the evidence gate declined before the LLM ran). ``decision`` says which stage answered or declined and
    why; ``refused`` is true for any decline (the model's own, the gate's, or a withdrawn answer). ``followup``
    (asked with history) says what retrieval searched for: ``search.query``, a follow-up's standalone rewrite."""

    question: str
    answer: str
    raw_answer: str
    citations: Citations
    passages: list[Passage]
    prompt: Prompt
    search: SearchResult
    not_in_documents: bool
    llm: str
    finish_reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    citation_checks: list[CitationCheck] = field(default_factory=list)
    decision: Decision | None = None
    added_citations: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    followup: FollowUp | None = None

    @property
    def refused(self) -> bool:
        return self.not_in_documents or (self.decision is not None and not self.decision.answered)

    @property
    def withdrawn(self) -> bool:
        """The LLM answered (and the answer was streamed) but the support check took it back."""
        return self.decision is not None and self.decision.stage == "check" and not self.decision.answered

    @property
    def generated(self) -> bool:
        """The LLM was called (the gate did not decline first)."""
        return self.decision is None or self.decision.stage != "gate"

    @property
    def weak_citations(self) -> list[CitationCheck]:
        """Citations whose passage holds few of the sentence's key terms while another passage holds many."""
        return [c for c in self.citation_checks if c.weak]

    @property
    def sources(self) -> list[Source]:
        """The cited passages, in order of first citation."""
        chunks = {p.number: p.hit.chunk for p in self.passages}
        return [Source(n, chunks[n].source, chunks[n].page, chunks[n].id, chunks[n].ocr) for n in self.citations.cited]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "raw_answer": self.raw_answer,
            "not_in_documents": self.not_in_documents,
            "refused": self.refused,
            "withdrawn": self.withdrawn,
            "decision": self.decision.to_dict() if self.decision is not None else None,
            "notes": list(self.notes),
            "followup": self.followup.to_dict() if self.followup is not None else None,
            "citations": {**self.citations.to_dict(), "added": list(self.added_citations)},
            "citation_checks": [c.to_dict() for c in self.citation_checks],
            "sources": [s.to_dict() for s in self.sources],
            "passages": [p.to_dict() for p in self.passages],
            "prompt": self.prompt.to_dict(),
            "mode": self.search.mode,
            "reranked": self.search.reranked,
            "rerank": self.search.rerank.to_dict(),
            "llm": self.llm,
            "finish_reason": self.finish_reason,
            "timings_ms": dict(self.timings),
        }
