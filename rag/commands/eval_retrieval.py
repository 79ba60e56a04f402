"""``rag eval retrieval``: nDCG, recall, MRR, MAP, precision and hit rate per retrieval mode, with paired
significance tests, a terminal table and report files (metrics.json, per_query.jsonl, runs/*.trec,
report.json, report.html). Heavy imports happen inside the handler, not at CLI start-up."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval.runs import AGGREGATIONS
from rag.commands.common import add_common_options, progress_enabled

DEFAULT_MODES = "bm25,dense,hybrid (+ hybrid+rerank when a reranker model is present)"


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,3,5,10,100, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"cut-offs must be positive integers, got {text!r}")
    return tuple(sorted(set(values)))


def _mode_list(text: str) -> tuple[str, ...]:
    from eval.retrieval import EVAL_MODES

    modes = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    bad = [m for m in modes if m not in EVAL_MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError(
            f"unknown mode(s) {', '.join(bad) or text!r}; choose from {', '.join(EVAL_MODES)}"
        )
    return modes


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "retrieval",
        help="score retrieval modes on a BEIR dataset or a questions JSONL",
        description="Evaluate retrieval on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), a folder "
        "holding questions.jsonl beside its documents, or a questions .jsonl file. Builds the corpus's index "
        "when absent and reuses it next time.",
    )
    p.add_argument(
        "--dataset", required=True, metavar="DIR", help="BEIR folder, folder with questions.jsonl, or a .jsonl file"
    )
    p.add_argument("--split", default="test", help="qrels split for BEIR folders (default: test)")
    p.add_argument("--qrels", metavar="FILE", help="qrels file (BEIR TSV or TREC) instead of the split's")
    p.add_argument("--modes", type=_mode_list, metavar="LIST", help=f"comma-separated modes (default: {DEFAULT_MODES})")
    p.add_argument(
        "--k",
        dest="ks",
        type=_int_list,
        default=(1, 3, 5, 10, 100),
        metavar="LIST",
        help="metric cut-offs (default: 1,3,5,10,100)",
    )
    p.add_argument(
        "--depth",
        type=int,
        metavar="N",
        help="chunks retrieved per query (default: max(retrieval.depth, 3 x largest k))",
    )
    p.add_argument(
        "--aggregation",
        choices=AGGREGATIONS,
        default="max",
        help="how a document's chunk scores become its score (default: max)",
    )
    p.add_argument(
        "--resamples", type=int, default=10_000, metavar="N", help="randomisation-test resamples (default: 10000)"
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/eval-retrieval-<dataset>)")
    p.add_argument("--json", action="store_true", help="print metrics.json to stdout instead of the table")
    add_common_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eval.retrieval import RetrievalEvalConfig, RetrievalEvaluator
    from eval.retrieval_report import terminal_summary, write_outputs
    from rag.config import load_config

    pipeline = load_config(args.config)
    sig_k = 10 if 10 in args.ks else max([k for k in args.ks if k <= 10] or [min(args.ks)])
    config = RetrievalEvalConfig(
        modes=args.modes,
        ks=args.ks,
        depth=args.depth,
        aggregation=args.aggregation,
        n_resamples=args.resamples,
        significance_metric=f"ndcg@{sig_k}",
    )
    result = RetrievalEvaluator(pipeline, config).run(
        args.dataset, split=args.split, qrels=args.qrels, index_dir=args.index, progress=progress_enabled()
    )
    out = Path(args.out) if args.out else Path("runs") / f"eval-retrieval-{result.dataset.name}"
    paths = write_outputs(result, out)
    if args.json:
        json.dump(result.metrics(), sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print(terminal_summary(result))
        print(f"\nwrote metrics.json, per_query.jsonl, report.json, report.html and runs/*.trec to {out}/")
    print(f"report: {paths['html']}", file=sys.stderr)
    return 0
