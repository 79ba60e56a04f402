from __future__ import annotations

import numpy as np
import pytest
from query_fakes import FakeIndex, HashEncoder, chunk

from rag.config import RetrievalConfig
from rag.errors import ConfigError
from rag.retrieval import (
    RETRIEVERS,
    BM25Retriever,
    DenseRetriever,
    Filters,
    HybridRetriever,
    Retriever,
    build_retriever,
    to_hits,
)
from rag.store.plain import allowed_mask

TEXTS = {
    "docs/cats.md": "Cats are small domesticated carnivorous mammals that purr.",
    "docs/dogs.md": "Dogs are loyal domesticated animals that bark at strangers.",
    "notes/cats.txt": "A cat sleeps most of the day; cats purr when content.",
    "notes/weather.txt": "Rain is expected tomorrow with strong winds from the north.",
    "report.pdf": "Quarterly revenue grew by twelve percent thanks to robot sales.",
    "report2.pdf": "Robot sales were the main source of revenue growth this quarter.",
}


@pytest.fixture
def index() -> FakeIndex:
    return FakeIndex([chunk(i, text, source=src) for i, (src, text) in enumerate(TEXTS.items())])


def _ids(hits):
    return [h.chunk.id for h in hits]


def test_registry_builds_every_mode(index):
    for mode in RETRIEVERS:
        r = build_retriever(index, RetrievalConfig(mode=mode), encoder=HashEncoder())
        assert isinstance(r, Retriever) and r.name == mode


def test_bm25_hits_are_ranked_and_scored(index):
    hits = BM25Retriever(index).search("cats purr", k=3)
    assert hits[0].chunk.source in {"docs/cats.md", "notes/cats.txt"}
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(h.scores["bm25"] == h.score and h.ranks["bm25"] == h.rank for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_dense_search_many_encodes_all_queries_in_one_call(index):
    encoder = HashEncoder()
    dense = DenseRetriever(index, encoder)
    queries = ["robot revenue", "cats purr", "rain tomorrow"]
    many = dense.search_many(queries, k=2)
    assert encoder.calls == [3]
    assert [_ids(h) for h in many] == [_ids(dense.search(q, k=2)) for q in queries]


def test_hybrid_records_every_stage_and_fuses_with_rrf(index):
    timings: dict[str, float] = {}
    r = build_retriever(index, RetrievalConfig(mode="hybrid", depth=6), encoder=HashEncoder())
    hits = r.search("robot sales revenue", k=4, timings=timings)
    assert {"bm25", "embed", "dense", "fusion"} <= set(timings)
    top = hits[0]
    assert top.chunk.source.startswith("report")
    assert {"bm25", "dense", "fusion"} <= set(top.scores) and top.score == top.scores["fusion"]
    expected = 1 / (60 + top.ranks["bm25"]) + 1 / (60 + top.ranks["dense"])
    assert top.scores["fusion"] == pytest.approx(expected)


def test_hybrid_weighted_fusion(index):
    cfg = RetrievalConfig(mode="hybrid", fusion="weighted", dense_weight=1.0, depth=6)
    hybrid = build_retriever(index, cfg, encoder=HashEncoder())
    dense = DenseRetriever(index, HashEncoder())
    q = "domesticated animals"
    assert _ids(hybrid.search(q, k=3)) == _ids(dense.search(q, k=3))


def test_hybrid_rejects_a_weight_outside_0_1(index):
    with pytest.raises(ConfigError, match=r"retrieval\.dense_weight must be between 0 and 1, got 1\.5"):
        HybridRetriever(
            BM25Retriever(index), DenseRetriever(index, HashEncoder()), config=RetrievalConfig(dense_weight=1.5)
        )


def test_filters_reach_the_store_before_fusion(index):
    r = build_retriever(index, RetrievalConfig(mode="hybrid", depth=6), encoder=HashEncoder())
    hits = r.search("cats purr robot revenue", k=6, filters=Filters.of("notes/*"))
    assert hits and all(h.chunk.source.startswith("notes/") for h in hits)
    assert index.filters_seen == [Filters(source=("notes/*",))] * 2  # the keyword and the vector search


def test_filter_with_several_globs_and_no_match(index):
    f = Filters.of(["*.pdf", "docs/dogs.md"])
    mask = allowed_mask(index.chunks, f)
    assert mask is not None and mask.tolist() == [False, True, False, False, True, True]
    assert build_retriever(index, encoder=HashEncoder()).search("cats", k=3, filters=Filters.of("*.docx")) == []
    assert Filters.of(None) is None and allowed_mask(index.chunks, None) is None


def test_edge_cases_empty_queries_and_k_zero(index):
    r = build_retriever(index, encoder=HashEncoder())
    assert r.search_many([], k=3) == []
    assert BM25Retriever(index).search("cats", k=0) == []
    empty = FakeIndex([chunk(0, "x")])
    empty.chunks = []
    assert BM25Retriever(empty).search("x", k=3) == []


def test_ties_are_broken_by_chunk_id_whatever_the_store_order():
    b, a, c = chunk("b", "x"), chunk("a", "y"), chunk("c", "z")
    hits = to_hits([(b, 1.0), (c, 2.0), (a, 1.0)], "bm25", 3)
    assert _ids(hits) == ["cc", "ca", "cb"]
    assert [h.chunk.id for h in to_hits([(a, 1.0), (b, 1.0)], "bm25", 2)] == ["ca", "cb"]
    assert [h.chunk.id for h in to_hits([(b, 1.0), (a, 1.0)], "bm25", 1)] == ["ca"]


def test_results_do_not_depend_on_batching(index):
    r = build_retriever(index, RetrievalConfig(depth=4), encoder=HashEncoder())
    queries = ["cats", "robot revenue", "rain", "loyal dogs", "quarter"]
    together = r.search_many(queries, k=3)
    alone = [r.search(q, k=3) for q in queries]
    assert [[(h.chunk.id, h.score) for h in hs] for hs in together] == [
        [(h.chunk.id, h.score) for h in hs] for hs in alone
    ]


def test_to_hits_keeps_best_duplicate():
    a = chunk("a", "x")
    hits = to_hits([(a, 0.5), (a, 0.9)], "dense", 5)
    assert len(hits) == 1 and hits[0].score == 0.9 and hits[0].scores == {"dense": 0.9}


def test_mask_is_numpy_bool(index):
    mask = allowed_mask(index.chunks, Filters.of("docs/*"))
    assert isinstance(mask, np.ndarray) and mask.dtype == bool
