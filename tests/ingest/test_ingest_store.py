"""The stored index: round trip, refusals on load, searches, and crash safety of the swap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from ingest import store
from ingest.pipeline import ingest
from rag.errors import IndexNotFoundError, IndexVersionError
from rag.store import FORMAT_VERSION, open_index


class SimulatedCrash(BaseException):
    """Stands in for SIGKILL: nothing catches it, no cleanup code runs past the crash point."""


@pytest.fixture
def built(built_once):
    return None, open_index(built_once[1])


def test_round_trip(folder: Path, index_dir: Path, config, embedder) -> None:
    report = ingest(folder, index_dir=index_dir, config=config)
    index = open_index(index_dir)
    assert report.added == 4 and report.failed == [] and report.written
    assert len(index.chunks) == report.chunks_total == index.manifest["counts"]["chunks"]
    assert index.embedding_model == "all-MiniLM-L6-v2" and index.dimension == 384
    assert {c.source for c in index.chunks} == {"guide.md", "notes.txt", "report.pdf", "sub/page.html"}
    emb = np.asarray(index.embeddings)
    assert emb.dtype == np.float32 and emb.shape == (len(index.chunks), 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    fresh = embedder.encode([c.text for c in index.chunks], normalize_embeddings=True)
    assert np.allclose(emb, fresh, atol=1e-4)
    manifest = index.manifest
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["files"]["guide.md"]["sha256"] and manifest["packages"]["faiss-cpu"]
    assert manifest["chunking"]["chunk_tokens"] == 64 and manifest["bm25"]["config"]["k1"] == 1.5
    for name in ("embeddings.npy", "bm25.data.npy", "bm25.indices.npy", "bm25.indptr.npy"):
        np.load(index.generation / name, allow_pickle=False)  # plain arrays, no pickled objects


def test_chunk_metadata(built) -> None:
    _, index = built
    pdf = [c for c in index.chunks if c.source == "report.pdf"]
    assert sorted({c.page for c in pdf}) == [1, 2, 3]
    # three pages are too few to verify a running header: the repeated lines stay (see ingest/clean.py)
    assert {c.page for c in pdf if "Garden Report 2026" in c.text and "Allotment club" in c.text} == {1, 2, 3}
    html = [c for c in index.chunks if c.source == "sub/page.html"]
    assert {c.heading for c in html} == {"Beekeeping", "Beekeeping > Honey"}
    assert not any("javascript" in c.text for c in html)
    assert {c.title for c in index.chunks if c.source == "guide.md"} == {"Greenhouse guide"}


def test_dense_search(built, embedder) -> None:
    _, index = built
    vectors = np.asarray(index.embeddings[:3])
    results = index.dense_search(vectors, 2)
    assert [r[0][0] for r in results] == [0, 1, 2]
    assert all(r[0][1] == pytest.approx(1.0, abs=1e-4) for r in results)
    q = embedder.encode(["When is honey extracted?"], normalize_embeddings=True)
    best = index.dense_search(q, 1)[0][0][0]
    assert "Honey is extracted" in index.chunks[best].text
    mask = np.array([c.source == "notes.txt" for c in index.chunks])
    hits = index.dense_search(q, 10, allowed=mask)[0]
    assert hits and all(index.chunks[row].source == "notes.txt" for row, _ in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_bm25_matches_rank_bm25_on_the_index(built) -> None:
    _, index = built
    tokens = index.bm25_tokenizer.tokenize_many(c.text for c in index.chunks)
    reference = BM25Okapi(tokens, k1=1.5, b=0.75, epsilon=0)
    for query in ["honey centrifuge", "compost weeks", "tomatoes sun", "aphids soap whiteflies"]:
        expected = reference.get_scores(index.bm25_tokenizer(query))
        assert np.allclose(index.bm25_scores(query), expected, rtol=0, atol=1e-6)
    hits = index.bm25_search(["compost turned weeks"], 3)[0]
    assert "Compost is turned" in index.chunks[hits[0][0]].text and all(s > 0 for _, s in hits)


def test_missing_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="no index at"):
        open_index(tmp_path / "nowhere")


def test_version_mismatch_is_refused(built_copy) -> None:
    _, index_dir = built_copy
    path = open_index(index_dir).generation / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexVersionError, match=r"format version 2.*reads version 1.*rag ingest"):
        open_index(index_dir)


def test_model_mismatch_is_refused(built) -> None:
    _, index = built
    with pytest.raises(IndexVersionError, match="built with embedding model 'all-MiniLM-L6-v2'"):
        open_index(index.path, embedding_model="BAAI/bge-small-en-v1.5")
    with pytest.raises(IndexVersionError, match="re-run `rag ingest`"):
        index.check_embedding_model("other-model")


@pytest.mark.parametrize("crash_at", ["stage", "rename", "swap"])
def test_crash_before_swap_keeps_previous_index(built_copy, config, monkeypatch, crash_at: str) -> None:
    folder, index_dir = built_copy
    before = open_index(index_dir)
    before_ids = [c.id for c in before.chunks]
    (folder / "notes.txt").write_text("Completely new orchard notes about plums.", encoding="utf-8")
    (folder / "guide.md").unlink()

    def crash(*args, **kwargs):
        raise SimulatedCrash(crash_at)

    if crash_at == "stage":
        monkeypatch.setattr(store, "write_faiss", crash, raising=False)
        monkeypatch.setattr("ingest.dense.write_faiss", crash)
    elif crash_at == "rename":
        monkeypatch.setattr(store, "swap_current", crash)  # after the rename to gen-*, before CURRENT
    else:
        monkeypatch.setattr(store.os, "replace", crash)  # the commit point itself
    with pytest.raises(SimulatedCrash):
        ingest(folder, index_dir=index_dir, config=config)
    monkeypatch.undo()

    after = open_index(index_dir)
    assert after.generation == before.generation
    assert [c.id for c in after.chunks] == before_ids
    assert after.bm25_search(["aphids"], 1)[0]

    report = ingest(folder, index_dir=index_dir, config=config)  # the next run recovers and tidies up
    assert (report.updated, report.removed, report.unchanged) == (1, 1, 2)
    leftovers = {p.name for p in index_dir.iterdir() if p.name.startswith((".tmp-gen-", "gen-"))}
    assert leftovers == {open_index(index_dir).generation.name, before.generation.name}


def test_hnsw_option(built_copy, embedder) -> None:
    from rag.config import ChunkingConfig, DenseIndexConfig, PipelineConfig

    folder, index_dir = built_copy
    flat = open_index(index_dir)
    config = PipelineConfig(
        chunking=ChunkingConfig(chunk_tokens=64, overlap_tokens=8), dense_index=DenseIndexConfig(kind="hnsw")
    )
    report = ingest(folder, index_dir=index_dir, config=config)
    assert report.unchanged == 4 and report.chunks_embedded == 0 and report.written  # vectors reused
    hnsw = open_index(index_dir)
    assert hnsw.manifest["dense_index"]["kind"] == "hnsw" and type(hnsw.faiss_index).__name__ == "IndexHNSWFlat"
    q = embedder.encode(["honey extraction", "compost"], normalize_embeddings=True)
    assert [[r for r, _ in hits] for hits in hnsw.dense_search(q, 5)] == [
        [r for r, _ in hits] for hits in flat.dense_search(q, 5)
    ]
    mask = np.zeros(len(hnsw.chunks), dtype=bool)
    mask[::2] = True
    hits = hnsw.dense_search(q, 3, allowed=mask)
    assert all(len(h) == 3 and all(mask[r] for r, _ in h) for h in hits)


def test_dense_ties_are_broken_by_row(tmp_path: Path) -> None:
    from ingest.dense import build_faiss
    from rag.config import DenseIndexConfig
    from rag.store.dense import search

    vectors = np.tile(np.eye(4, dtype=np.float32)[:1], (20, 1))  # twenty identical rows
    index = build_faiss(vectors, DenseIndexConfig())
    assert [r for r, _ in search(index, vectors[:1], 5)[0]] == [0, 1, 2, 3, 4]


def test_embedding_with_and_without_progress_agree(embedder) -> None:
    from ingest.embed import embed_texts

    texts = ["short", "a somewhat longer sentence about compost heaps", "mid length text here", ""]
    plain = embed_texts(embedder, texts, batch_size=2)
    grouped = embed_texts(embedder, texts, batch_size=1, progress=True)
    assert plain.dtype == np.float32 and plain.shape == (4, 384)
    assert np.allclose(plain, grouped, atol=1e-5)
    assert np.allclose(np.linalg.norm(plain, axis=1), 1.0, atol=1e-5)
