"""``rag eval qa``: ingest a folder, ask its questions exactly as ``rag ask`` does, score the answers.
Heavy imports happen inside the handler, not at CLI start-up."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rag.commands.common import add_common_options, positive_int, progress_enabled


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "qa",
        help="end-to-end answers: ingest a folder, ask its questions, score refusals, answers, citations, time",
        description="Ingest --docs into the index (incrementally: a rerun reuses it), ask every question of each "
        "--questions file through the same code path as `rag ask`, append one row per question to "
        "OUT/items.jsonl (a rerun resumes), and write OUT/summary.json and OUT/report.html. A questions row is "
        '{"id", "question", "answers": [gold texts]}; "answers": [] marks a question no document answers.',
    )
    p.add_argument("--docs", required=True, metavar="DIR", help="folder of documents to ingest and ask about")
    p.add_argument(
        "--questions",
        required=True,
        action="append",
        metavar="FILE",
        help="questions JSONL (repeatable: e.g. answerable and unanswerable sets)",
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="a seeded sample of N questions from each --questions file (default: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default: 0)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/eval-qa-<docs folder name>)")
    p.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    add_common_options(p)
    p.set_defaults(func=run)


def _name(docs: Path) -> str:
    """``covidqa-docs`` for ``.../covidqa/docs``: a folder's name with its parent's."""
    full = docs.resolve()
    return f"{full.parent.name}-{full.name}" if full.parent.name else full.name


def _default_index(docs: Path) -> Path:
    return Path(f".ragtrail-qa-{_name(docs)}")


def run(args: argparse.Namespace) -> int:
    from eval.qa import load_questions, merge_question_sets, run_qa, sample_items
    from eval.qa_report import summary_table_rows, write_report
    from eval.report import format_table
    from ingest.pipeline import ingest
    from rag.config import load_config
    from rag.errors import EvalDataError
    from rag.pipeline import Pipeline

    docs = Path(args.docs)
    if not docs.is_dir():
        raise EvalDataError(f"{docs}: --docs must be a folder of documents")
    sets = [(q, sample_items(load_questions(q), limit=args.limit, seed=args.seed)) for q in args.questions]
    items = merge_question_sets(sets)  # every row is checked before anything runs
    config = load_config(args.config)
    index_dir = Path(args.index) if args.index else _default_index(docs)
    progress = progress_enabled()
    report = ingest(docs, index_dir=index_dir, config=config, progress=progress)
    print(
        f"index {index_dir}: {report.documents} document(s), {report.chunks_total} chunks"
        + (f", {len(report.failed)} skipped" if report.failed else ""),
        file=sys.stderr,
    )
    pipeline = Pipeline.from_config(config, index_dir=index_dir)
    notice = pipeline.rerank_status.notice
    if notice:
        print(f"rag: notice: {notice}", file=sys.stderr)
    out = Path(args.out) if args.out else Path("runs") / f"eval-qa-{_name(docs)}"
    settings: dict[str, Any] = {
        "config": config.to_dict(),
        "llm": pipeline.llm.name,
        "docs": str(docs),
        "questions": [str(q) for q in args.questions],
        "limit": args.limit,
        "seed": args.seed,
    }
    settings["config"].pop("index_dir", None)

    def ask(question: str, on_token: Any) -> Any:
        return pipeline.ask(question, on_token=on_token)

    def on_row(row: dict[str, Any], i: int, n: int) -> None:
        outcome = "declined" if row["refused"] else f"answered {row['citations']}"
        print(f"[{i}/{n}] {row['id']}: {outcome} in {row['total_s']:.1f} s", file=sys.stderr, flush=True)

    result = run_qa(items, ask, out, settings=settings, on_row=on_row)
    if result.skipped:
        print(f"resumed: {result.skipped} question(s) were already answered in {out}/items.jsonl", file=sys.stderr)
    paths = write_report(result, out, title=f"Answers on {_name(docs)} ({pipeline.llm.name})")
    summary = result.summary()
    if args.json:
        json.dump(summary, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print(format_table(["metric", "value", "95 % CI", "n"], summary_table_rows(summary), precision=3))
        print(f"wrote {out / 'items.jsonl'}, " + ", ".join(str(p) for p in paths))
    return 0
