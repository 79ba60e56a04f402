"""The ``rag`` command line. Thin: each subcommand module parses its arguments, calls one library
function and prints. Subcommands live in ``rag/commands/*.py``; each exposes ``register(subparsers)``
and sets ``func(args) -> int`` as its handler; what they share is in :mod:`rag.commands.common`.
Errors derived from :class:`rag.errors.RagError` become one line on stderr and the error's exit code;
usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Protocol

import rag
from rag.commands import eval_answers, eval_qa, eval_retrieval, ingest, query, reranker, serve
from rag.errors import RagError


class CommandModule(Protocol):
    def register(self, subparsers: argparse._SubParsersAction) -> None: ...


COMMANDS: tuple[CommandModule, ...] = (ingest, query, reranker, serve)
EVAL_COMMANDS: tuple[CommandModule, ...] = (eval_retrieval, eval_answers, eval_qa)


def _register(subparsers: argparse._SubParsersAction, modules: Sequence[CommandModule]) -> None:
    for module in modules:
        module.register(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="ragtrail: ingest a folder, ask questions with cited sources, evaluate retrieval and answers.",
    )
    parser.add_argument("--version", action="version", version=f"ragtrail {rag.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _register(sub, COMMANDS)
    eval_parser = sub.add_parser("eval", help="evaluate retrieval, answers and judges")
    eval_sub = eval_parser.add_subparsers(dest="eval_command", metavar="SUITE", required=True)
    _register(eval_sub, EVAL_COMMANDS)
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
