"""ragtrail vs the same pipeline assembled from LangChain parts, on SciFact, in one run.

    nice -n 10 .venv/bin/python benchmarks/vs_langchain.py

LangChain side: BEIR docs -> ``RecursiveCharacterTextSplitter`` sized in tokens of the same embedding
tokenizer (256/32, as ours) -> ``FAISS`` vector store (inner product over normalised embeddings of the
same SentenceTransformer, through a LangChain ``Embeddings`` wrapper) + ``BM25Retriever`` (its default
whitespace tokeniser) -> ``EnsembleRetriever`` (weighted RRF, c=60, equal weights) -> ``LongContextReorder``.
ragtrail side: ``ingest`` -> hybrid retriever (RRF, k=60) -> lost-in-the-middle ordering. Both retrieve
the same candidate depth per retriever. Each side runs in its own subprocess so peak RSS is its own;
they run one after the other on the same machine. Reported: ingest time, query p50/p95 (retrieval +
reordering, one query at a time), peak RSS, and nDCG@10 on the SciFact test qrels (pytrec_eval;
chunk hits are mapped to documents, first occurrence wins).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(HERE.parent)  # the repo, not benchmarks/ (whose ingest.py would shadow the package)

import rag  # noqa: E402, F401 - offline environment first
from eval.datasets import load_qrels  # noqa: E402
from rag.jsonl import read_jsonl  # noqa: E402


def _query_benchmark() -> Any:
    spec = importlib.util.spec_from_file_location("ragtrail_query_benchmark", HERE / "query.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_qb = _query_benchmark()
DEFAULT_DATA, load_test_queries, percentile = _qb.DEFAULT_DATA, _qb.load_test_queries, _qb.percentile

CHUNK_TOKENS, OVERLAP_TOKENS = 256, 32


def doc_run(doc_ids: Sequence[str], k: int = 10) -> dict[str, float]:
    """Ranked chunk sources -> ``{doc id: score}`` of the first ``k`` distinct documents."""
    ranked = list(dict.fromkeys(doc_ids))[:k]
    return {d: float(len(ranked) - i) for i, d in enumerate(ranked)}


def ndcg_at_10(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> float:
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
    scores = evaluator.evaluate({q: run.get(q, {}) for q in qrels})
    return sum(s["ndcg_cut_10"] for s in scores.values()) / len(scores)


def _ours(data: Path, work: Path, depth: int, queries: list[tuple[str, str]]) -> dict[str, Any]:
    from ingest.pipeline import ingest
    from rag.config import PipelineConfig, RerankConfig, RetrievalConfig
    from rag.ordering import lost_in_the_middle
    from rag.pipeline import Pipeline

    config = PipelineConfig(retrieval=RetrievalConfig(depth=depth), rerank=RerankConfig(model=None))
    start = time.perf_counter()
    ingest(data / "corpus.jsonl", index_dir=work / "ix", config=config)
    pipe = Pipeline.from_config(config, index_dir=work / "ix")
    ingest_s = time.perf_counter() - start
    hybrid = pipe.retrievers["hybrid"]
    hybrid.search("warm up", k=10)
    latencies, run = [], {}
    for qid, text in queries:
        t = time.perf_counter()
        hits = hybrid.search(text, k=depth)
        lost_in_the_middle(hits[:10])
        latencies.append((time.perf_counter() - t) * 1000.0)
        run[qid] = doc_run([h.chunk.source for h in hits])
    return {"ingest_s": ingest_s, "chunks": len(pipe.index), "latencies_ms": latencies, "run": run}


def _langchain(data: Path, depth: int, queries: list[tuple[str, str]]) -> dict[str, Any]:
    from langchain_community.document_transformers import LongContextReorder
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    try:
        from langchain_classic.retrievers import EnsembleRetriever
    except ImportError:  # older LangChain
        from langchain.retrievers import EnsembleRetriever  # type: ignore[no-redef]

    from rag.models import load_embedder

    class SentenceTransformerEmbeddings(Embeddings):
        def __init__(self, name: str) -> None:
            self.model = load_embedder(name)

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.model.encode(texts, batch_size=64, normalize_embeddings=True).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.model.encode([text], normalize_embeddings=True)[0].tolist()

    start = time.perf_counter()
    embeddings = SentenceTransformerEmbeddings("all-MiniLM-L6-v2")
    docs = []
    for _, d in read_jsonl(data / "corpus.jsonl"):
        text = "\n".join(x for x in (d.get("title", ""), d.get("text", "")) if x)
        docs.append(Document(page_content=text, metadata={"source": str(d["_id"])}))
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        embeddings.model.tokenizer, chunk_size=CHUNK_TOKENS, chunk_overlap=OVERLAP_TOKENS
    )
    chunks = splitter.split_documents(docs)
    store = FAISS.from_documents(chunks, embeddings, distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
    bm25 = BM25Retriever.from_documents(chunks, k=depth)
    ensemble = EnsembleRetriever(
        retrievers=[bm25, store.as_retriever(search_kwargs={"k": depth})], weights=[0.5, 0.5], c=60
    )
    reorder = LongContextReorder()
    ingest_s = time.perf_counter() - start
    ensemble.invoke("warm up")
    latencies, run = [], {}
    for qid, text in queries:
        t = time.perf_counter()
        hits = ensemble.invoke(text)
        reorder.transform_documents(hits[:10])
        latencies.append((time.perf_counter() - t) * 1000.0)
        run[qid] = doc_run([h.metadata["source"] for h in hits])
    return {"ingest_s": ingest_s, "chunks": len(chunks), "latencies_ms": latencies, "run": run}


def subsample(data: Path, max_docs: int, out: Path) -> Path:
    """A BEIR folder whose corpus keeps every document judged in the test qrels plus the first others
    in file order up to ``max_docs`` (queries and qrels are linked, not copied)."""
    judged = {d for docs in load_qrels(data / "qrels" / "test.tsv").values() for d in docs}
    out.mkdir(parents=True, exist_ok=True)
    kept = 0
    with open(data / "corpus.jsonl", encoding="utf-8") as src, open(out / "corpus.jsonl", "w", encoding="utf-8") as dst:
        lines = src.readlines()
        budget = max(0, max_docs - len(judged))
        for line in lines:
            doc_id = str(json.loads(line)["_id"])
            if doc_id in judged or budget > 0:
                budget -= doc_id not in judged
                dst.write(line)
                kept += 1
    (out / "qrels").mkdir(exist_ok=True)
    for name in ("queries.jsonl", "qrels/test.tsv"):
        target = out / name
        if not target.exists():
            target.symlink_to(data / name)
    print(f"corpus subsample: {kept} of {len(lines)} documents (all {len(judged)} judged ones)", file=sys.stderr)
    return out


def side(name: str, data: Path, depth: int, n_queries: int, threads: int | None) -> dict[str, Any]:
    if threads:
        import torch

        torch.set_num_threads(threads)
    queries = load_test_queries(data)[:n_queries]
    with tempfile.TemporaryDirectory(prefix="vs-langchain-") as work:
        result = _ours(data, Path(work), depth, queries) if name == "ours" else _langchain(data, depth, queries)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def summarize(result: dict[str, Any], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    lat = result["latencies_ms"]
    judged = {q: qrels[q] for q in result["run"] if q in qrels}
    return {
        "ingest_s": result["ingest_s"],
        "chunks": float(result["chunks"]),
        "query_p50_ms": percentile(lat, 50),
        "query_p95_ms": percentile(lat, 95),
        "peak_rss_mb": result["peak_rss_mb"],
        "ndcg@10": ndcg_at_10(result["run"], judged),
    }


ROWS = [
    ("ingest_s", "ingest (s)", "{:.1f}"),
    ("chunks", "chunks", "{:.0f}"),
    ("query_p50_ms", "query p50 (ms)", "{:.1f}"),
    ("query_p95_ms", "query p95 (ms)", "{:.1f}"),
    ("peak_rss_mb", "peak RSS (MB)", "{:.0f}"),
    ("ndcg@10", "nDCG@10", "{:.4f}"),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--depth", type=int, default=100, help="candidates per retriever before fusion")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--max-docs", type=int, default=0, help="subsample the corpus (judged docs kept); 0 = all")
    p.add_argument("--threads", type=int, help="torch intra-op threads for both sides (default: torch's)")
    p.add_argument("--side", choices=("ours", "langchain"), help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.side:
        print(json.dumps(side(args.side, args.data, args.depth, args.queries, args.threads)))
        return 0
    qrels = load_qrels(args.data / "qrels" / "test.tsv")
    tmp = tempfile.TemporaryDirectory(prefix="vs-langchain-data-")
    data = subsample(args.data, args.max_docs, Path(tmp.name)) if args.max_docs else args.data
    with open(data / "corpus.jsonl", encoding="utf-8") as fh:
        n_docs = sum(1 for _ in fh)
    results: dict[str, dict[str, float]] = {}
    for name in ("ours", "langchain"):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        cmd = [
            sys.executable,
            __file__,
            "--side",
            name,
            "--data",
            str(data),
            "--depth",
            str(args.depth),
            "--queries",
            str(args.queries),
            *(["--threads", str(args.threads)] if args.threads else []),
        ]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        results[name] = summarize(json.loads(out.strip().splitlines()[-1]), qrels)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"SciFact test, {args.queries} queries, {n_docs} documents, depth {args.depth} per retriever, RRF k=60\n")
    print("| metric | ragtrail | LangChain | ragtrail / LangChain |\n|---|---:|---:|---:|")
    for key, label, fmt in ROWS:
        ours, theirs = results["ours"][key], results["langchain"][key]
        ratio = f"{ours / theirs:.2f}x" if theirs else "-"
        print(f"| {label} | {fmt.format(ours)} | {fmt.format(theirs)} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
