"""What every ``rag`` subcommand shares: the ``--index``/``--config`` options, argument types and whether
to draw progress bars. The command modules import this; :mod:`rag.cli` imports the command modules."""

from __future__ import annotations

import argparse
import os
import sys


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--index`` and ``--config``, accepted by every command."""
    parser.add_argument(
        "--index", metavar="DIR", help="index directory (default: .ragtrail/ under the current directory)"
    )
    parser.add_argument("--config", metavar="FILE", help="YAML configuration (default: built-in defaults)")


def positive_int(value: str) -> int:
    """An ``argparse`` type: a whole number of at least 1."""
    return _whole_number(value, minimum=1, expected="a positive integer")


def non_negative_int(value: str) -> int:
    """An ``argparse`` type: a whole number of at least 0."""
    return _whole_number(value, minimum=0, expected="a whole number of 0 or more")


def _whole_number(value: str, *, minimum: int, expected: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}") from None
    if n < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
    return n


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal, never in CI or when piped."""
    return sys.stderr.isatty() and not os.environ.get("CI")
