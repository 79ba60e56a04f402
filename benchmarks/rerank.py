"""Reranking benchmark on a BEIR dataset (default: SciFact test).

Prints nDCG@10 for BM25, dense, hybrid, and hybrid + each reranker given (the reranker alone over the
top ``--depth`` hybrid chunks, and blended with the fusion score at the model's own ``fusion_weight``
from its ``reranker.json`` and at the weight of the index's label-free calibration, ``rag reranker
calibrate``, when there is one), plus p50/p95 milliseconds to rerank ``--depth`` candidates for one query.
``--title`` has the reranker read each chunk after its document title (the pipeline's ``rerank.with_title``).

    python benchmarks/rerank.py --dataset ../shared/data/beir/scifact --index .ragtrail-scifact \
        --model default --model runs/reranker-scifact/model --out runs/bench-rerank

Reranker scores are cached per model under ``--out`` so a rerun only re-scores what changed. This is a
benchmark, not a test: it takes minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rag  # noqa: E402,F401 - offline defaults before model libraries load
from eval.datasets import EvalDataset, load_beir, load_corpus  # noqa: E402
from eval.metrics import mean_scores  # noqa: E402
from eval.retrieval import hits_to_run, score_run  # noqa: E402
from rag.blend import WEIGHT_GRID, rerank_head  # noqa: E402
from rag.calibration_file import read_calibration  # noqa: E402
from rag.config import PipelineConfig  # noqa: E402
from rag.training.data import beir_passage  # noqa: E402
from rag.types import Chunk, Hit  # noqa: E402


def model_settings(path: str) -> dict[str, float]:
    """``reranker.json`` beside the weights (fusion weight, max_length), empty when absent."""
    f = Path(path) / "reranker.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}


def score_heads(
    model_path: str,
    queries: dict[str, str],
    hits: dict[str, list[Hit]],
    *,
    depth: int,
    max_length: int,
    batch_size: int,
    cache: Path,
    with_title: bool = True,
) -> dict[str, np.ndarray]:
    """Cross-encoder logits for every query's top ``depth`` hits, cached on disk as JSON."""
    from rag.rerank import passage_text
    from rag.training.train import score_pairs

    tag = "" if with_title else ":no-title"
    key = hashlib.sha1(f"{Path(model_path).resolve()}:{depth}:{max_length}{tag}".encode()).hexdigest()[:12]
    cache_file = cache / f"scores-{key}.json"
    cached: dict[str, dict[str, float]] = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    todo = [q for q in hits if q not in cached]
    if todo:
        ce = _load(model_path, max_length)
        from tqdm.auto import tqdm

        for qid in tqdm(todo, desc=f"rerank {Path(model_path).name}", disable=not sys.stderr.isatty()):
            head = hits[qid][:depth]
            pairs = [(queries[qid], passage_text(h.chunk, with_title=with_title)) for h in head]
            s = score_pairs(ce, pairs, max_length=max_length, batch_size=batch_size)
            cached[qid] = {h.chunk.id: float(x) for h, x in zip(head, s, strict=True)}
            if len(cached) % 25 == 0:
                cache_file.write_text(json.dumps(cached))
        cache_file.write_text(json.dumps(cached))
    return {q: np.array([cached[q][h.chunk.id] for h in hits[q][:depth]]) for q in hits}


def _load(model_path: str, max_length: int):
    from sentence_transformers import CrossEncoder

    from rag.models import resolve_reranker_model

    return CrossEncoder(resolve_reranker_model(model_path), max_length=max_length, device="cpu")


def latency(
    model_path: str,
    queries: dict[str, str],
    hits: dict[str, list[Hit]],
    *,
    depth: int,
    max_length: int,
    batch_size: int,
    n: int,
) -> tuple[float, float]:
    """p50 and p95 ms to score ``depth`` candidates for one query (model already loaded and warm)."""
    from rag.training.train import score_pairs

    ce = _load(model_path, max_length)
    qids = list(hits)[: n + 1]
    times = []
    for i, qid in enumerate(qids):
        pairs = [(queries[qid], h.chunk.text) for h in hits[qid][:depth]]
        t0 = time.perf_counter()
        score_pairs(ce, pairs, max_length=max_length, batch_size=batch_size)
        if i:  # the first call warms up
            times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), float(np.percentile(times, 95))


def _index_first_stage(
    index_dir: str, queries: dict[str, str], dataset: EvalDataset, cfg: PipelineConfig, results: dict[str, float]
) -> dict[str, list[Hit]]:
    """bm25, dense and hybrid from the project's index; returns the hybrid hits (chunks)."""
    from rag.retrieval import SentenceTransformerEncoder, build_retriever
    from rag.store import open_index

    index = open_index(index_dir, embedding_model=cfg.embedding.model)
    encoder = SentenceTransformerEncoder(index.embedding_model)
    qids = list(queries)
    hybrid: dict[str, list[Hit]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        retriever = build_retriever(index, cfg.retrieval, mode=mode, encoder=encoder)
        hits = dict(zip(qids, retriever.search_many([queries[q] for q in qids], k=cfg.retrieval.depth), strict=True))
        results[mode] = mean_scores(score_run(hits_to_run(hits, dataset), dataset, ks=(10,)))["ndcg@10"]
        print(f"{mode:<40} nDCG@10 {results[mode]:.4f}", flush=True)
        hybrid = hits
    return hybrid


def _bm25_docs_first_stage(
    dataset_dir: Path, queries: dict[str, str], dataset: EvalDataset, cfg: PipelineConfig, results: dict[str, float]
) -> dict[str, list[Hit]]:
    """BM25 (bm25s, the project's k1/b/stop words/stemmer) over whole documents "title. text"."""
    import bm25s
    import Stemmer

    docs = load_corpus(dataset_dir / "corpus.jsonl")
    chunks = [Chunk(id=d.source, source=d.source, text=beir_passage(d)) for d in docs.values()]
    stemmer = Stemmer.Stemmer(cfg.bm25.stemmer) if cfg.bm25.stemmer else None
    retriever = bm25s.BM25(k1=cfg.bm25.k1, b=cfg.bm25.b)
    retriever.index(
        bm25s.tokenize([c.text for c in chunks], stopwords=cfg.bm25.stopwords, stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    qids = list(queries)
    tokens = bm25s.tokenize(
        [queries[q] for q in qids], stopwords=cfg.bm25.stopwords, stemmer=stemmer, show_progress=False
    )
    rows, scores = retriever.retrieve(tokens, k=cfg.retrieval.depth, show_progress=False)
    hits = {
        q: [
            Hit(chunk=chunks[int(r)], score=float(s), rank=i + 1, scores={"bm25": float(s), "fusion": float(s)})
            for i, (r, s) in enumerate(zip(rr, ss, strict=True))
        ]
        for q, rr, ss in zip(qids, rows, scores, strict=True)
    }
    results["bm25-docs"] = mean_scores(score_run(hits_to_run(hits, dataset), dataset, ks=(10,)))["ndcg@10"]
    print(f"{'bm25-docs':<40} nDCG@10 {results['bm25-docs']:.4f}", flush=True)
    return hits


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from rag.models import resolve_reranker_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "data" / "beir" / "scifact"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--index", default=".ragtrail-scifact", help="an index built from the dataset's corpus.jsonl")
    ap.add_argument(
        "--first-stage",
        choices=("index", "bm25-docs"),
        default="index",
        help="index: bm25/dense/hybrid from --index (reranks hybrid); bm25-docs: bm25s over whole "
        "documents of corpus.jsonl, no index needed (reranks BM25)",
    )
    ap.add_argument("--model", action="append", help="reranker path or 'default'; repeatable (default: default)")
    ap.add_argument("--depth", type=int, default=30, help="candidates reranked per query")
    ap.add_argument("--max-length", type=int, default=PipelineConfig().rerank.max_length)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--latency-queries", type=int, default=20)
    ap.add_argument("--latency-depth", type=int, default=30, help="candidates per query for the latency numbers")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--title",
        action=argparse.BooleanOptionalAction,
        default=PipelineConfig().rerank.with_title,
        help="the reranker reads each chunk after its document title (default: rerank.with_title)",
    )
    ap.add_argument(
        "--curve", action="store_true", help="also print nDCG@10 at every fusion weight 0.0 ... 1.0 (diagnostic only)"
    )
    ap.add_argument("--out", default="runs/bench-rerank")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_beir(Path(args.dataset), split=args.split)
    queries = {q: dataset.queries[q] for q in dataset.qrels if q in dataset.queries}
    cfg = PipelineConfig()
    results: dict[str, float] = {}
    if args.first_stage == "index":
        first, label = _index_first_stage(args.index, queries, dataset, cfg, results), "hybrid"
    else:
        first, label = _bm25_docs_first_stage(Path(args.dataset), queries, dataset, cfg, results), "bm25-docs"
    report: dict[str, object] = {
        "dataset": args.dataset,
        "split": args.split,
        "queries": len(queries),
        "depth": args.depth,
        "max_length": args.max_length,
        "first_stage": label,
        "with_title": args.title,
        "ndcg@10": results,
        "latency_ms": {},
    }
    with_title = args.title
    for model in args.model or ["default"]:
        path = resolve_reranker_model(model)
        weight = float(model_settings(path).get("fusion_weight", 0.0))
        heads = score_heads(
            path,
            queries,
            first,
            depth=args.depth,
            max_length=args.max_length,
            batch_size=args.batch_size,
            cache=out,
            with_title=with_title,
        )
        rows = [(f"{label}+rerank[{model}]", 0.0), (f"{label}+rerank[{model}] blend w={weight}", weight)]
        cal = read_calibration(args.index, path, with_title=with_title) if args.first_stage == "index" else None
        if cal is not None:
            report.setdefault("calibration", {})[model] = cal.to_dict()  # type: ignore[index]
            if cal.fusion_weight >= 1.0:  # the pipeline turns reranking off: the first stage as it is
                name = f"{label}+rerank[{model}] calibrated: reranking off"
                results[name] = results[label]
                print(f"{name:<40} nDCG@10 {results[name]:.4f}", flush=True)
            else:
                rows.append((f"{label}+rerank[{model}] calibrated w={cal.fusion_weight}", cal.fusion_weight))

        def ndcg_at(w: float, heads: dict[str, np.ndarray] = heads) -> float:
            reranked = {q: rerank_head(first[q], heads[q], depth=args.depth, weight=w) for q in first}
            return mean_scores(score_run(hits_to_run(reranked, dataset), dataset, ks=(10,)))["ndcg@10"]

        if args.curve:
            curve = {str(w): ndcg_at(w) for w in WEIGHT_GRID}
            report.setdefault("curve", {})[model] = curve  # type: ignore[index]
            print(f"blend curve [{model}]: " + " ".join(f"{w} {v:.4f}" for w, v in curve.items()), flush=True)
        for name, w in rows:
            results[name] = ndcg_at(w)
            print(f"{name:<40} nDCG@10 {results[name]:.4f}", flush=True)
        if args.latency_queries:
            p50, p95 = latency(
                path,
                queries,
                first,
                depth=args.latency_depth,
                max_length=args.max_length,
                batch_size=args.batch_size,
                n=args.latency_queries,
            )
            report["latency_ms"][model] = {"candidates": args.latency_depth, "p50": p50, "p95": p95}  # type: ignore[index]
            print(f"rerank {args.latency_depth} candidates [{model}]: p50 {p50:.0f} ms, p95 {p95:.0f} ms", flush=True)
    (out / "results.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
