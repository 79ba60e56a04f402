"""Ingestion benchmark: SciFact ``corpus.jsonl`` into a temporary index, against plain
sentence-transformers embedding of the same chunks, plus BM25 query time at 100k chunks.

    nice -n 10 .venv/bin/python benchmarks/ingest.py [--corpus PATH] [--limit N] [--bm25-docs 100000]

Prints documents/s, chunks/s, the share of time spent embedding, peak RSS, index size, and the
ratio of total ingest time to ``SentenceTransformer.encode`` alone (target <= 1.25x). The model is
loaded (and warmed up) before either timing starts, so both sides measure the same work.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import rag  # noqa: E402,F401 - offline environment first
from rag.config import PipelineConfig  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "beir" / "scifact" / "corpus.jsonl"


def table(rows: list[tuple[str, str]], title: str) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)] + [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def limited_corpus(corpus: Path, limit: int | None, tmp: Path) -> Path:
    if not limit:
        return corpus
    out = tmp / "corpus.jsonl"
    with open(corpus, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= limit:
                break
            dst.write(line)
    return out


def bench_ingest(corpus: Path, tmp: Path, config: PipelineConfig) -> dict[str, float | int | str]:
    from ingest.pipeline import ingest
    from rag.models import load_embedder
    from rag.store import disk_usage, open_index

    start = time.perf_counter()
    model = load_embedder(config.embedding.model, config.embedding.device)
    model.encode(["warm up the model"] * 8, batch_size=8)
    load_s = time.perf_counter() - start

    report = ingest(corpus, index_dir=tmp / "index", config=config)
    index = open_index(tmp / "index")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    texts = [c.text for c in index.chunks]

    start = time.perf_counter()
    model.encode(texts, batch_size=config.embedding.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    baseline_s = time.perf_counter() - start
    docs = report.documents
    return {
        "documents": docs,
        "chunks": report.chunks_total,
        "failed": len(report.failed),
        "model_load_s": load_s,
        "ingest_s": report.seconds,
        "baseline_s": baseline_s,
        "peak_rss_mb": peak_rss_mb,
        "index_mb": disk_usage(index.generation)["total"] / 1e6,
        **{f"stage_{k}_s": v for k, v in report.timings.items()},
        "vocabulary": index.vocabulary_size,
    }


def synthetic_corpus(n: int, seed: int = 0) -> list[list[str]]:
    """``n`` documents of 40-120 tokens drawn from a Zipf-like vocabulary of 50k terms."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"t{i}" for i in range(50_000)])
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    weights /= weights.sum()
    lengths = rng.integers(40, 121, size=n)
    ids = rng.choice(len(vocab), size=int(lengths.sum()), p=weights)
    docs, at = [], 0
    for length in lengths:
        docs.append(vocab[ids[at : at + length]].tolist())
        at += length
    return docs


def bench_bm25(n_docs: int, n_queries: int = 20) -> dict[str, float]:
    from rank_bm25 import BM25Okapi

    from ingest.bm25 import build_matrix
    from rag.store.bm25 import top_k

    docs = synthetic_corpus(n_docs)
    rng = random.Random(1)
    queries = [rng.sample(docs[rng.randrange(n_docs)], 6) for _ in range(n_queries)]
    ids = [f"c{i:07d}" for i in range(n_docs)]

    start = time.perf_counter()
    matrix = build_matrix(docs, k1=1.5, b=0.75)
    ours_build = time.perf_counter() - start
    start = time.perf_counter()
    reference = BM25Okapi(docs, k1=1.5, b=0.75, epsilon=0)
    ref_build = time.perf_counter() - start

    start = time.perf_counter()
    ours = [top_k(matrix.scores(q), 10, ids, None) for q in queries]
    ours_query = (time.perf_counter() - start) / n_queries
    start = time.perf_counter()
    ref_scores = [reference.get_scores(q) for q in queries]
    ref_query = (time.perf_counter() - start) / n_queries
    max_diff = max(float(np.abs(matrix.scores(q) - r).max()) for q, r in zip(queries, ref_scores, strict=True))
    same_top = all(
        [row for row, _ in o] == [int(i) for i in np.argsort(-r, kind="stable")[:10]]
        for o, r in zip(ours, ref_scores, strict=True)
    )
    return {
        "docs": n_docs,
        "ours_build_s": ours_build,
        "ref_build_s": ref_build,
        "ours_query_ms": ours_query * 1e3,
        "ref_query_ms": ref_query * 1e3,
        "max_abs_diff": max_diff,
        "same_top10": float(same_top),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    parser.add_argument("--bm25-docs", type=int, default=100_000)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args(argv)
    config = PipelineConfig()

    if not args.skip_ingest:
        with tempfile.TemporaryDirectory(prefix="ragtrail-bench-") as tmp_name:
            tmp = Path(tmp_name)
            r = bench_ingest(limited_corpus(args.corpus, args.limit, tmp), tmp, config)
        embed_s = float(r["stage_embed_s"])
        ingest_s = float(r["ingest_s"])
        rows = [
            ("corpus", f"{args.corpus} ({r['documents']} documents, {r['failed']} failed)"),
            ("chunks", f"{r['chunks']} (chunk_tokens {config.chunking.chunk_tokens}, capped to the model)"),
            ("documents/s", f"{float(r['documents']) / ingest_s:.1f}"),
            ("chunks/s", f"{float(r['chunks']) / ingest_s:.1f}"),
            ("ingest total", f"{ingest_s:.1f} s (model already loaded: {r['model_load_s']:.1f} s before)"),
            ("embedding share", f"{embed_s / ingest_s:.1%} ({embed_s:.1f} s)"),
            (
                "other stages",
                ", ".join(
                    f"{k.removeprefix('stage_').removesuffix('_s')} {float(v):.2f} s"
                    for k, v in r.items()
                    if k.startswith("stage_") and k != "stage_embed_s"
                ),
            ),
            ("ST encode alone", f"{r['baseline_s']:.1f} s (same chunks, batch {config.embedding.batch_size})"),
            ("ingest / ST alone", f"{ingest_s / float(r['baseline_s']):.2f}x (target <= 1.25x)"),
            ("peak RSS", f"{r['peak_rss_mb']:.0f} MB"),
            ("index size", f"{r['index_mb']:.1f} MB ({r['vocabulary']} BM25 terms)"),
        ]
        print(table(rows, "Ingest: SciFact corpus.jsonl"))
        print()
    b = bench_bm25(args.bm25_docs)
    rows = [
        ("documents", f"{b['docs']} synthetic chunks (Zipf vocabulary, 40-120 tokens)"),
        ("build", f"ours {b['ours_build_s']:.1f} s   rank-bm25 {b['ref_build_s']:.1f} s"),
        ("query (top 10)", f"ours {b['ours_query_ms']:.2f} ms   rank-bm25 get_scores {b['ref_query_ms']:.1f} ms"),
        ("speed-up", f"{b['ref_query_ms'] / b['ours_query_ms']:.0f}x"),
        ("max |score diff|", f"{b['max_abs_diff']:.2e} (same top 10: {bool(b['same_top10'])})"),
    ]
    print(table(rows, "BM25 at scale"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
