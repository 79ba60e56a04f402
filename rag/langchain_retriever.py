"""A LangChain ``BaseRetriever`` over ragtrail retrieval, so it drops into LangChain chains.

>>> from rag.langchain_retriever import RagtrailRetriever                # doctest: +SKIP
>>> retriever = RagtrailRetriever.from_pipeline(pipeline, k=5)           # doctest: +SKIP
>>> retriever.invoke("annual leave")                                     # -> list[Document]

Each ``Document`` carries the chunk text as ``page_content`` and, in ``metadata``, the chunk id,
source, page, title, heading, rank and every stage's score (``bm25``, ``dense``, ``fusion``, ``rerank``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.retrieval import Filters
from rag.types import Hit


def hit_to_document(hit: Hit) -> Document:
    c = hit.chunk
    metadata: dict[str, Any] = {
        "id": c.id,
        "source": c.source,
        "page": c.page,
        "ocr": c.ocr,
        "title": c.title,
        "heading": c.heading,
        "start": c.start,
        "end": c.end,
        "rank": hit.rank,
        "score": hit.score,
        "scores": dict(hit.scores),
    }
    return Document(page_content=c.text, metadata=metadata, id=c.id)


class RagtrailRetriever(BaseRetriever):
    """``searcher`` is a :class:`rag.pipeline.Pipeline` (retrieval + optional reranking) or any
    :class:`rag.retrieval.Retriever`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: Any
    k: int = 6
    mode: str | None = None
    rerank: bool | None = None
    source_glob: list[str] | None = None

    @classmethod
    def from_pipeline(cls, pipeline: Any, **kwargs: Any) -> RagtrailRetriever:
        return cls(searcher=pipeline, **kwargs)

    def _hits(self, query: str) -> list[Hit]:
        filters = Filters.of(self.source_glob)
        if hasattr(self.searcher, "search_many") and hasattr(self.searcher, "retrievers"):
            return self.searcher.search_many([query], k=self.k, mode=self.mode, rerank=self.rerank, filters=filters)[0]
        return self.searcher.search(query, k=self.k, filters=filters)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [hit_to_document(h) for h in self._hits(query)]
