"""Time the whole retrieval evaluation of a BEIR dataset (default: SciFact test, bm25 + dense + hybrid).

    nice -n 10 .venv/bin/python benchmarks/eval_retrieval.py [--dataset DIR] [--index DIR] [--config FILE]
        [--modes bm25,dense,hybrid] [--out DIR]

The index is built first when absent (timed separately, not part of the evaluation total). Prints the
metrics table and a timing table: process start-up imports, dataset loading, the index check (a no-op
re-ingest), embedding-model load, retrieval per mode (with its embed / bm25 / dense / fusion split),
scoring, significance tests and report writing. Target on the 2-core machine: total under 60 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

START = time.perf_counter()
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import rag  # noqa: E402, F401 - offline defaults before model libraries load
from eval.report import format_table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(REPO.parent / "shared" / "data" / "beir" / "scifact"))
    parser.add_argument("--index", default=str(REPO / ".ragtrail-scifact"))
    parser.add_argument("--config", default=None)
    parser.add_argument("--modes", default="bm25,dense,hybrid")
    parser.add_argument("--out", default=str(REPO / "runs" / "bench-eval-retrieval"))
    args = parser.parse_args()

    from eval.datasets import load_dataset
    from eval.retrieval import RetrievalEvalConfig, evaluate_retrieval, open_or_build_index
    from eval.retrieval_report import terminal_summary, write_outputs
    from rag.config import load_config
    from rag.models import load_embedder

    rows: list[list[object]] = [["imports (python, numpy, eval, rag)", time.perf_counter() - START, ""]]
    pipeline = load_config(args.config)
    index_dir = Path(args.index)

    t = time.perf_counter()
    dataset = load_dataset(args.dataset)
    rows.append(["load dataset", time.perf_counter() - t, f"{len(dataset.qrels)} judged queries"])

    if not (index_dir / "CURRENT").exists():
        t = time.perf_counter()
        open_or_build_index(dataset, index_dir=index_dir, pipeline=pipeline, progress=sys.stderr.isatty())
        print(f"built index at {index_dir} in {time.perf_counter() - t:.1f} s (not counted below)", file=sys.stderr)

    eval_start = time.perf_counter()
    t = time.perf_counter()
    index, notes = open_or_build_index(dataset, index_dir=index_dir, pipeline=pipeline)
    rows.append(["index check (no-op ingest) + open", time.perf_counter() - t, f"{len(index)} chunks"])

    t = time.perf_counter()
    load_embedder(pipeline.embedding.model, pipeline.embedding.device)
    rows.append(["load embedding model", time.perf_counter() - t, pipeline.embedding.model])

    config = RetrievalEvalConfig(modes=tuple(args.modes.split(",")))  # type: ignore[arg-type]
    t = time.perf_counter()
    result = evaluate_retrieval(dataset, index, pipeline=pipeline, config=config, index_dir=index_dir, notes=notes)
    evaluate_s = time.perf_counter() - t
    for mode, r in result.modes.items():
        split = ", ".join(f"{k} {v / 1000:.2f}" for k, v in r.timings_ms.items())
        rows.append([f"retrieve + collapse: {mode}", r.seconds, split])
    retrieval_s = sum(r.seconds for r in result.modes.values())
    rows.append(["scoring (all modes)", evaluate_s - retrieval_s - result.seconds["significance"], ""])
    rows.append(["significance tests", result.seconds["significance"], f"{len(result.comparisons)} pairs"])

    t = time.perf_counter()
    write_outputs(result, Path(args.out))
    rows.append(["write reports (JSON, JSONL, TREC, HTML)", time.perf_counter() - t, args.out])
    total = time.perf_counter() - eval_start + (rows[0][1] if isinstance(rows[0][1], float) else 0.0)
    rows.append(["TOTAL (index already built)", total, "target < 60 s"])

    print(terminal_summary(result))
    print()
    print(format_table(["step", "seconds", "detail"], rows, precision=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
