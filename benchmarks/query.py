"""Query-side latency over the SciFact test queries: p50/p95 per stage and peak RSS.

    nice -n 10 .venv/bin/python benchmarks/query.py --index /tmp/scifact-ix

Stages: bm25, dense (query embedding + FAISS), hybrid (both + fusion), fusion alone, rerank of N
candidates (default 30) with the configured cross-encoder, prompt assembly (LLM tokenizer), and on a
small sample the first streamed token and the full answer of the local LLM. Model loading is excluded
(each model is warmed up first). Targets on the 2-core reference machine: hybrid p50 < 30 ms,
hybrid + rerank(30) p50 < 300 ms, first token < 3 s. The index is built with ``ingest`` when absent.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(HERE.parent)  # the repo, not benchmarks/ (whose ingest.py would shadow the package)

import rag  # noqa: E402, F401 - offline environment first
from eval.datasets import load_beir  # noqa: E402

REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "beir" / "scifact"
TARGETS_MS = {"hybrid": 30.0, "hybrid+rerank": 300.0, "first_token": 3000.0}


def load_test_queries(data: Path, split: str = "test") -> list[tuple[str, str]]:
    """``[(query id, text)]`` of the queries that have judgements in ``qrels/<split>.tsv``, file order."""
    return list(load_beir(data, split=split).queries.items())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    i = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[i]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


_CPU: dict[str, float] = {"last": 0.0}


def timed_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall milliseconds of ``fn()``; the process CPU milliseconds are left in ``_CPU["last"]``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    _CPU["last"] = (time.process_time() - cpu) * 1000.0
    return (time.perf_counter() - start) * 1000.0, out


def ensure_index(index: Path, data: Path) -> None:
    from rag.errors import IndexNotFoundError
    from rag.store import open_index

    try:
        open_index(index)
        return
    except IndexNotFoundError:
        pass
    from ingest.pipeline import ingest
    from rag.config import PipelineConfig

    print(f"building the index at {index} from {data / 'corpus.jsonl'} ...", file=sys.stderr)
    start = time.perf_counter()
    ingest(data / "corpus.jsonl", index_dir=index, config=PipelineConfig())
    print(f"index built in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def make_reranker(pipe: Any, choice: str, max_length: int) -> tuple[Any, str]:
    """The configured reranker, or a stand-in with the same architecture when none is installed."""
    from rag.rerank import CrossEncoderReranker

    if choice != "stand-in" and pipe.reranker is not None:
        return pipe.reranker, f"{pipe.rerank_status.model} ({pipe.rerank_status.path})"
    from sentence_transformers import CrossEncoder

    from rag.models import resolve_embedding_model

    ce = CrossEncoder(resolve_embedding_model("all-MiniLM-L6-v2"), num_labels=1, max_length=max_length)
    why = "" if choice == "stand-in" else f" - {pipe.rerank_status.notice}"
    return CrossEncoderReranker(ce, batch_size=32), f"MiniLM-L6 stand-in (untrained head, same cost){why}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    from rag.config import load_config
    from rag.pipeline import Pipeline

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ensure_index(args.index, args.data)
    config = load_config(args.config)
    queries = [q for _qid, q in load_test_queries(args.data)][: args.queries]
    pipe = Pipeline.from_config(config, index_dir=args.index)
    bm25, dense, hybrid = (pipe.retrievers[m] for m in ("bm25", "dense", "hybrid"))
    depth = config.retrieval.depth
    for retriever in (bm25, dense, hybrid):
        retriever.search("warm up", k=depth)
    samples: dict[str, list[float]] = {}

    cpu_samples: dict[str, list[float]] = {}

    def add(stage: str, ms: float, cpu_ms: float | None = None) -> None:
        samples.setdefault(stage, []).append(ms)
        if cpu_ms is not None:
            cpu_samples.setdefault(stage, []).append(cpu_ms)

    candidates: list[list[Any]] = []
    for q in queries:
        add("bm25", timed_ms(lambda q=q: bm25.search(q, k=depth))[0], _CPU["last"])
        add("dense", timed_ms(lambda q=q: dense.search(q, k=depth))[0], _CPU["last"])
        stage_ms: dict[str, float] = {}
        ms, hits = timed_ms(lambda q=q, t=stage_ms: hybrid.search(q, k=args.rerank_candidates, timings=t))
        add("hybrid", ms, _CPU["last"])
        add("fusion", stage_ms["fusion"])
        candidates.append(hits)

    reranker, rerank_name = make_reranker(pipe, args.rerank_model, config.rerank.max_length)
    reranker.rerank("warm up", candidates[0], top_k=config.prompt.top_k)
    reranked: list[list[Any]] = []
    for i, (q, hits) in enumerate(zip(queries, candidates, strict=True)):
        if i < args.rerank_queries:
            ms, top = timed_ms(lambda q=q, h=hits: reranker.rerank(q, h, top_k=config.prompt.top_k))
            add("rerank", ms, _CPU["last"])
            add("hybrid+rerank", samples["hybrid"][i] + ms, cpu_samples["hybrid"][i] + _CPU["last"])
            reranked.append(top)
        else:
            reranked.append(hits[: config.prompt.top_k])

    llm = pipe.llm
    llm.count_tokens("warm up")
    for q, hits in zip(queries, reranked, strict=True):
        add("prompt", timed_ms(lambda q=q, h=hits: pipe.build_prompt(q, h))[0], _CPU["last"])

    prompt_tokens: list[int] = []
    for q, hits in list(zip(queries, reranked, strict=True))[: max(args.llm_queries, 0)]:
        prompt = pipe.build_prompt(q, hits)
        prompt_tokens.append(prompt.prompt_tokens)
        start = time.perf_counter()
        first: float | None = None
        for _piece in llm.stream(prompt.messages, max_tokens=args.answer_tokens, temperature=0.0, seed=0):
            if first is None:
                first = (time.perf_counter() - start) * 1000.0
        add("first_token", first if first is not None else float("nan"))
        add("full_answer", (time.perf_counter() - start) * 1000.0)

    rows = {
        stage: {
            "n": len(v),
            "p50_ms": percentile(v, 50),
            "p95_ms": percentile(v, 95),
            "mean_ms": statistics.fmean(v),
            "cpu_p50_ms": percentile(cpu_samples[stage], 50) if stage in cpu_samples else None,
        }
        for stage, v in samples.items()
    }
    return {
        "queries": len(queries),
        "chunks": len(pipe.index),
        "depth": depth,
        "rerank_candidates": args.rerank_candidates,
        "rerank_model": rerank_name,
        "rerank_max_length": getattr(reranker, "max_length", config.rerank.max_length),
        "llm": llm.name,
        "llm_prompt_tokens": prompt_tokens,
        "llm_answer_max_tokens": args.answer_tokens,
        "stages": rows,
        "peak_rss_mb": peak_rss_mb(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "torch_threads": args.threads,
    }


ORDER = ["bm25", "dense", "fusion", "hybrid", "rerank", "hybrid+rerank", "prompt", "first_token", "full_answer"]


def print_table(result: dict[str, Any]) -> None:
    print(f"SciFact: {result['queries']} test queries, {result['chunks']} chunks, candidate depth {result['depth']}")
    print(
        f"reranker: {result['rerank_model']}, {result['rerank_candidates']} candidates, "
        f"max_length {result['rerank_max_length']}"
    )
    print(
        f"LLM: {result['llm']}, prompt tokens {result['llm_prompt_tokens']}, "
        f"answer <= {result['llm_answer_max_tokens']} tokens"
    )
    print("\n| stage | n | p50 ms | p95 ms | CPU p50 ms | target p50 | met |\n|---|---:|---:|---:|---:|---:|:---:|")
    for stage in ORDER:
        row = result["stages"].get(stage)
        if row is None:
            continue
        target = TARGETS_MS.get(stage)
        met = "" if target is None else ("yes" if row["p50_ms"] < target else "NO")
        target_s = "" if target is None else f"< {target:.0f}"
        cpu = "" if row["cpu_p50_ms"] is None else f"{row['cpu_p50_ms']:.1f}"
        print(f"| {stage} | {row['n']} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {cpu} | {target_s} | {met} |")
    print(
        f"\npeak RSS: {result['peak_rss_mb']:.0f} MB; load average at the end {result['load_average']} "
        f"(2 cores); torch threads {result['torch_threads'] or 'default'}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR SciFact folder")
    p.add_argument("--index", type=Path, default=Path(".ragtrail-scifact"), help="index dir (built if absent)")
    p.add_argument("--config", help="YAML config (default: built-in defaults)")
    p.add_argument("--queries", type=int, default=300, help="test queries for the retrieval stages")
    p.add_argument("--rerank-queries", type=int, default=50, help="queries to rerank (the slow stage)")
    p.add_argument("--rerank-candidates", type=int, default=30)
    p.add_argument(
        "--rerank-model",
        choices=("config", "stand-in"),
        default="config",
        help="the configured reranker, or a MiniLM-L6 stand-in with the same cost",
    )
    p.add_argument("--llm-queries", type=int, default=3, help="queries answered by the LLM")
    p.add_argument("--answer-tokens", type=int, default=128, help="max tokens per LLM answer")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    args = p.parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
