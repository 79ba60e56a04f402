"""The ``rag`` command line. Thin: each subcommand module parses its arguments, calls one library
function and prints. Subcommands live in ``rag/commands/*.py``; each exposes ``register(subparsers)``
and sets ``func(args) -> int`` as its handler. Errors derived from :class:`rag.errors.RagError` become
one line on stderr and the error's exit code; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

import rag
from rag.errors import RagError

COMMAND_MODULES = (
    "rag.commands.ingest",
    "rag.commands.query",
    "rag.commands.reranker",
    "rag.commands.serve",
)
EVAL_COMMAND_MODULES = (
    "rag.commands.eval_retrieval",
    "rag.commands.eval_answers",
    "rag.commands.eval_qa",
)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--index`` and ``--config``, accepted by every command."""
    parser.add_argument(
        "--index", metavar="DIR", help="index directory (default: .ragtrail/ under the current directory)"
    )
    parser.add_argument("--config", metavar="FILE", help="YAML configuration (default: built-in defaults)")


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal, never in CI or when piped."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def _register(subparsers: argparse._SubParsersAction, modules: Sequence[str]) -> None:
    for name in modules:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="ragtrail: ingest a folder, ask questions with cited sources, evaluate retrieval and answers.",
    )
    parser.add_argument("--version", action="version", version=f"ragtrail {rag.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _register(sub, COMMAND_MODULES)
    eval_parser = sub.add_parser("eval", help="evaluate retrieval, answers and judges")
    eval_sub = eval_parser.add_subparsers(dest="eval_command", metavar="SUITE", required=True)
    _register(eval_sub, EVAL_COMMAND_MODULES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RagError as e:
        print(f"rag: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rag ingest --json | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
