"""``rag ingest PATH`` and ``rag index stats``: thin wrappers over :mod:`ingest`.

Exit codes of ``rag ingest``: 0 every document ingested, 1 some skipped (each reported as one
``path: reason`` line on stderr) or ``--strict`` aborted, 2 usage errors (bad arguments or config,
PATH missing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rag.cli import add_common_options, progress_enabled


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="ingest a folder, file or BEIR corpus.jsonl into the index",
        description="Ingest PDF, Markdown, text, HTML and Office (.docx, .pptx, .xlsx) files (or a BEIR corpus.jsonl) "
        "into a FAISS + BM25 index. Re-running updates only new or changed documents.",
    )
    parser.add_argument("path", metavar="PATH", help="folder, single file, or BEIR corpus.jsonl")
    add_common_options(parser)
    parser.add_argument("--strict", action="store_true", help="abort without changing the index if any file fails")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(func=run_ingest)

    index_parser = subparsers.add_parser("index", help="inspect the index")
    index_sub = index_parser.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    stats = index_sub.add_parser("stats", help="documents, chunks, vocabulary, dimension, size on disk, models")
    add_common_options(stats)
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(func=run_stats)


def _index_dir(args: argparse.Namespace, config: Any) -> Path:
    return Path(args.index or config.index_dir)


def run_ingest(args: argparse.Namespace) -> int:
    from ingest.pipeline import ingest
    from rag.config import load_config

    config = load_config(args.config)
    if not Path(args.path).exists():
        print(f"rag ingest: error: {args.path}: no such file or folder", file=sys.stderr)
        return 2
    report = ingest(
        args.path,
        index_dir=_index_dir(args, config),
        config=config,
        strict=args.strict,
        progress=progress_enabled(),
    )
    for path, reason in report.failed:
        print(f"{path}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        for note in report.notes:
            print(f"rag ingest: note: {note}", file=sys.stderr)
        print(_summary(args.path, report))
    return report.exit_code


def _summary(path: str, report: Any) -> str:
    state = "" if report.written else " (index already up to date)"
    return (
        f"ingested {path} into {report.index_dir}{state}: {report.added} added, {report.updated} updated, "
        f"{report.removed} removed, {report.unchanged} unchanged, {len(report.failed)} failed; "
        f"{report.chunks_total} chunks ({report.chunks_embedded} embedded) in {report.seconds:.1f} s"
    )


def run_stats(args: argparse.Namespace) -> int:
    from ingest.stats import format_stats, index_stats
    from rag.config import load_config

    config = load_config(args.config)
    stats = index_stats(_index_dir(args, config))
    print(json.dumps(stats, indent=2, sort_keys=True) if args.json else format_stats(stats))
    return 0
