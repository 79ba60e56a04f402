"""The query pipeline: retrieve -> rerank -> prompt -> generate -> cite, from Python or the CLI.

>>> pipe = Pipeline.from_config("configs/default.yaml", index_dir=".ragtrail")  # doctest: +SKIP
>>> pipe.search("annual leave", k=5).hits                                        # doctest: +SKIP
>>> pipe.ask("How many days of annual leave?").answer                            # doctest: +SKIP

Models (embedder, cross-encoder, LLM) load lazily on first use. Results are typed dataclasses with
``to_dict``; timings are wall milliseconds per stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.citations import CitationCheck, Citations, check_citations, is_not_in_documents, parse_citations
from rag.config import PipelineConfig, RetrievalMode, load_config
from rag.errors import ModelError
from rag.prompt import NOT_IN_DOCUMENTS, Passage, Prompt, build_prompt
from rag.rerank import Reranker, RerankStatus, load_reranker
from rag.retrieval import (
    BM25Retriever,
    DenseRetriever,
    Filters,
    HybridRetriever,
    QueryEncoder,
    Retriever,
    SearchIndex,
    Timings,
    timed,
)
from rag.types import Hit

if TYPE_CHECKING:
    from rag.llm import LLM

_UNSET: Any = object()


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
    """An entry of the answer's source list."""

    number: int
    source: str
    page: int | None
    chunk_id: str

    def label(self) -> str:
        return f"[{self.number}] {self.source}" + (f", page {self.page}" if self.page is not None else "")

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "source": self.source, "page": self.page, "chunk_id": self.chunk_id}


@dataclass(frozen=True)
class Answer:
    """``answer`` has citations to missing sources removed; ``raw_answer`` is what the LLM wrote."""

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

    @property
    def weak_citations(self) -> list[CitationCheck]:
        """Citations whose passage holds few of the sentence's key terms while another passage holds many."""
        return [c for c in self.citation_checks if c.weak]

    @property
    def sources(self) -> list[Source]:
        """The cited passages, in order of first citation."""
        by_number = {p.number: p for p in self.passages}
        return [
            Source(n, by_number[n].hit.chunk.source, by_number[n].hit.chunk.page, by_number[n].hit.chunk.id)
            for n in self.citations.cited
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "raw_answer": self.raw_answer,
            "not_in_documents": self.not_in_documents,
            "citations": self.citations.to_dict(),
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


class Pipeline:
    """Holds the index, the retrievers, the reranker (or why there is none) and the LLM."""

    def __init__(
        self,
        config: PipelineConfig,
        index: SearchIndex,
        *,
        llm: LLM | None = None,
        reranker: Reranker | None = _UNSET,
        encoder: QueryEncoder | None = None,
    ) -> None:
        self.config = config
        self.index = index
        self._llm = llm
        self._llm_ready = False
        if reranker is _UNSET:
            self.reranker, self.rerank_status = load_reranker(config.rerank, index_dir=getattr(index, "path", None))
        elif reranker is None:
            self.reranker, self.rerank_status = None, RerankStatus(enabled=False, reason="no reranker was given")
        else:
            self.reranker, self.rerank_status = reranker, RerankStatus(enabled=True, model=reranker.name)
        bm25 = BM25Retriever(index)
        dense = DenseRetriever(index, encoder)
        self.retrievers: dict[RetrievalMode, Retriever] = {
            "bm25": bm25,
            "dense": dense,
            "hybrid": HybridRetriever(bm25, dense, config=config.retrieval),
        }

    @classmethod
    def from_config(
        cls,
        config: PipelineConfig | str | Path | None = None,
        *,
        index_dir: str | Path | None = None,
        llm: LLM | None = None,
        reranker: Reranker | None = _UNSET,
    ) -> Pipeline:
        """A pipeline from a config object, a YAML path or the defaults, over ``index_dir``
        (default: ``config.index_dir``)."""
        from ingest.store import open_index

        if not isinstance(config, PipelineConfig):
            config = load_config(config)
        index = open_index(Path(index_dir if index_dir is not None else config.index_dir))
        return cls(config, index, llm=llm, reranker=reranker)

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            from rag.llm import create_llm

            self._llm = create_llm(self.config.llm)
        return self._llm

    def _use_reranker(self, rerank: bool | None) -> Reranker | None:
        if rerank is False:
            return None
        if self.reranker is None and rerank is True:
            raise ModelError(f"reranking was requested but is unavailable: {self.rerank_status.reason}")
        return self.reranker

    def search_many(
        self,
        queries: Sequence[str],
        *,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
        filters: Filters | None = None,
        timings: Timings | None = None,
    ) -> list[list[Hit]]:
        """Batched retrieval (+ reranking of ``rerank.depth`` candidates when on) for many queries."""
        k = k if k is not None else self.config.prompt.top_k
        retriever = self.retrievers[mode or self.config.retrieval.mode]
        reranker = self._use_reranker(rerank)
        depth = max(k, self.config.rerank.depth) if reranker is not None else k
        candidates = retriever.search_many(queries, k=depth, filters=filters, timings=timings)
        if reranker is None:
            return candidates
        load = getattr(reranker, "load", None)
        if load is not None:
            with timed(timings, "load"):
                load()
        with timed(timings, "rerank"):
            return reranker.rerank_many(queries, candidates, top_k=k)

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
        filters: Filters | None = None,
    ) -> SearchResult:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        hits = self.search_many([query], k=k, mode=mode, rerank=rerank, filters=filters, timings=timings)[0]
        timings["total"] = (time.perf_counter() - start) * 1000.0
        return SearchResult(
            query=query,
            mode=mode or self.config.retrieval.mode,
            hits=hits,
            reranked=self._use_reranker(rerank) is not None,
            rerank=self.rerank_status,
            timings=timings,
        )

    def build_prompt(self, question: str, hits: Sequence[Hit], *, top_k: int | None = None) -> Prompt:
        config = self.config.prompt
        if top_k is not None:
            config = replace(config, top_k=top_k)
        llm = self.llm
        return build_prompt(
            question, hits, config=config, count_tokens=llm.count_tokens, context_window=llm.context_window
        )

    def ask(
        self,
        question: str,
        *,
        top_k: int | None = None,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
        filters: Filters | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer ``question`` from the index with [n] citations. ``on_token`` receives the answer as it
        streams; without it the answer is generated in one call."""
        start = time.perf_counter()
        top_k = top_k if top_k is not None else self.config.prompt.top_k
        found = self.search(question, k=top_k, mode=mode, rerank=rerank, filters=filters)
        timings = {k: v for k, v in found.timings.items() if k != "total"}
        if not self._llm_ready:  # the tokenizer comes with the model: load it outside the prompt timing
            with timed(timings, "load"):
                self.llm.count_tokens("")
            self._llm_ready = True
        with timed(timings, "prompt"):
            prompt = self.build_prompt(question, found.hits, top_k=top_k)
        raw, finish = self._generate(prompt, on_token, timings)
        citations = parse_citations(raw, len(prompt.passages))
        checks = check_citations(citations.text, {p.number: p.text for p in prompt.passages})
        timings["total"] = (time.perf_counter() - start) * 1000.0
        return Answer(
            question=question,
            answer=citations.text.strip(),
            raw_answer=raw,
            citations=citations,
            passages=prompt.passages,
            prompt=prompt,
            search=found,
            not_in_documents=is_not_in_documents(raw),
            llm=self.llm.name,
            finish_reason=finish,
            timings=timings,
            citation_checks=checks,
        )

    def _generate(
        self, prompt: Prompt, on_token: Callable[[str], None] | None, timings: dict[str, float]
    ) -> tuple[str, str | None]:
        if not prompt.passages:
            if on_token is not None:
                on_token(NOT_IN_DOCUMENTS)
            return NOT_IN_DOCUMENTS, "no_sources"
        max_tokens = self.config.prompt.answer_tokens
        temperature, seed = self.config.llm.temperature, self.config.llm.seed
        start = time.perf_counter()
        if on_token is None:
            completion = self.llm.complete(prompt.messages, max_tokens=max_tokens, temperature=temperature, seed=seed)
            timings["generate"] = (time.perf_counter() - start) * 1000.0
            return completion.text, completion.finish_reason
        pieces: list[str] = []
        for piece in self.llm.stream(prompt.messages, max_tokens=max_tokens, temperature=temperature, seed=seed):
            if not pieces:
                timings["first_token"] = (time.perf_counter() - start) * 1000.0
            pieces.append(piece)
            on_token(piece)
        timings["generate"] = (time.perf_counter() - start) * 1000.0
        return "".join(pieces), None
