from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from query_fakes import FakeIndex, HashEncoder, ScriptedLLM, chunk

from rag.config import PipelineConfig, RerankConfig, RetrievalConfig
from rag.langchain_retriever import RagtrailRetriever
from rag.pipeline import Pipeline
from rag.retrieval import build_retriever

CHUNKS = [
    chunk(0, "Cats purr when they are content.", source="pets/cats.md"),
    chunk(1, "Dogs bark at strangers.", source="pets/dogs.md", page=2),
    chunk(2, "Robot sales grew twelve percent.", source="report.pdf", page=3),
]


def _pipeline() -> Pipeline:
    cfg = PipelineConfig(retrieval=RetrievalConfig(depth=3), rerank=RerankConfig(model=None))
    return Pipeline(cfg, FakeIndex(CHUNKS), llm=ScriptedLLM(), reranker=None, encoder=HashEncoder())


def test_is_a_langchain_retriever_returning_documents_with_scores():
    pipe = _pipeline()
    retriever = RagtrailRetriever.from_pipeline(pipe, k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("do cats purr")
    assert all(isinstance(d, Document) for d in docs) and len(docs) == 2
    assert docs[0].metadata["source"] == "pets/cats.md" and docs[0].id == "c0"
    assert {"bm25", "dense", "fusion"} <= set(docs[0].metadata["scores"])
    assert [d.id for d in docs] == [h.chunk.id for h in pipe.search("do cats purr", k=2).hits]


def test_filters_mode_and_plain_retrievers():
    pipe = _pipeline()
    docs = RagtrailRetriever(searcher=pipe, k=3, mode="bm25", source_glob=["*.pdf"]).invoke("robot sales")
    assert [d.metadata["source"] for d in docs] == ["report.pdf"] and docs[0].metadata["page"] == 3
    plain = build_retriever(FakeIndex(CHUNKS), RetrievalConfig(mode="dense"), encoder=HashEncoder())
    assert RagtrailRetriever(searcher=plain, k=1).invoke("dogs bark")[0].id == "c1"


def test_composes_in_a_chain():
    retriever = RagtrailRetriever.from_pipeline(_pipeline(), k=1)
    chain = retriever | RunnableLambda(lambda docs: docs[0].page_content.upper())
    assert chain.invoke("robot sales") == "ROBOT SALES GREW TWELVE PERCENT."
