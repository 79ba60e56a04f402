"""``rag ingest PATH`` and ``rag index stats``: thin wrappers over :mod:`ingest`.

Exit codes of ``rag ingest``: 0 every document ingested, 1 some skipped (each reported as one
``path: reason`` line on stderr) or ``--strict`` aborted, 2 usage errors (bad arguments or config,
PATH missing). With ``--watch``: 0 when Ctrl-C (or SIGTERM) stops it while it waits, 130 when it cuts a
change set short (the index keeps the generation before it), 1 when the watched path disappears.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rag.commands.common import add_common_options, positive_int, progress_enabled


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="ingest a folder, file or BEIR corpus.jsonl into the index",
        description="Ingest PDF, Markdown, text, HTML and Office (.docx, .pptx, .xlsx) files (or a BEIR corpus.jsonl) "
        "into a FAISS + BM25 index. Re-running updates only new or changed documents. PDF pages without a text "
        "layer are read by OCR (ingest.ocr), and so are .png/.jpg/.tiff files when listed in ingest.extensions.",
    )
    parser.add_argument("path", metavar="PATH", help="folder, single file, or BEIR corpus.jsonl")
    add_common_options(parser)
    parser.add_argument("--strict", action="store_true", help="abort without changing the index if any file fails")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="then keep the index in step with PATH: one line (or JSON object) per change set; Ctrl-C stops",
    )
    parser.add_argument(
        "--debounce",
        type=positive_int,
        metavar="MS",
        help="with --watch: a change set closes after MS ms without a new file change (default: 500)",
    )
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
    if args.debounce is not None and not args.watch:
        print("rag ingest: error: --debounce only applies with --watch", file=sys.stderr)
        return 2
    if args.watch:
        return _run_watch(args, config)
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


def _run_watch(args: argparse.Namespace, config: Any) -> int:
    from ingest.watch import DEBOUNCE_MS, watch

    index_dir = _index_dir(args, config)
    printer = ChangePrinter(json_lines=args.json)
    print(f"rag ingest: watching {args.path} (index {index_dir}); Ctrl-C stops", file=sys.stderr, flush=True)
    previous = _stop_on_sigterm()
    try:
        watch(
            args.path,
            index_dir=index_dir,
            config=config,
            strict=args.strict,
            debounce_ms=args.debounce or DEBOUNCE_MS,
            on_change=printer,
            progress=progress_enabled(),
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print("rag ingest: stopped watching", file=sys.stderr, flush=True)
    return 0


def _stop_on_sigterm() -> Any:
    """``kill PID`` (SIGTERM, what service managers send) stops the watcher the way Ctrl-C does; returns
    the handler to restore, or None when SIGTERM is handled elsewhere or this is not the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous != signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return previous


class ChangePrinter:
    """One line per change set on stdout (a JSON object with ``--json``); on stderr, failures not
    already reported by the change set before and the ingest's notes."""

    def __init__(self, *, json_lines: bool) -> None:
        self.json_lines = json_lines
        self.reported: set[tuple[str, str]] = set()

    def __call__(self, change: Any) -> None:
        from ingest.watch import UP_TO_DATE_NOTE

        report = change.report
        failed = set(report.failed) if report is not None else set()
        for path, reason in sorted(failed - self.reported):
            print(f"{path}: {reason}", file=sys.stderr)
        if change.status != "locked":
            self.reported = failed
        if report is not None and not self.json_lines:
            for note in report.notes:
                if note != UP_TO_DATE_NOTE:
                    print(f"rag ingest: note: {note}", file=sys.stderr)
        sys.stderr.flush()
        print(json.dumps(change.to_dict(), sort_keys=True) if self.json_lines else change.line(), flush=True)


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
