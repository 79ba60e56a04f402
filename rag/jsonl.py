"""JSONL files: the one reader of data files, and append-only logs that survive being killed mid-write.

* :func:`read_jsonl` reads a data file (a BEIR corpus or queries file, a question suite, training pairs;
  ``.gz`` through gzip): blank lines are skipped, and a line that is not a JSON object is an
  :class:`~rag.errors.EvalDataError` naming the file and the line, or, for callers that keep going,
  reported to ``on_error`` and skipped.
* :func:`read_rows` and :func:`appender` are for logs a run appends to (a judge run, LLM query
  generation): a torn last line is skipped when the file is read back, and a new row is never glued onto it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from rag.errors import EvalDataError

LineError = Callable[[int, str], None]


def read_jsonl(path: str | Path, *, on_error: LineError | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of ``path``, in file order.

    A line that is not valid JSON or not a JSON object raises ``EvalDataError("<path>:<line>: <reason>")``;
    with ``on_error`` it is passed on as ``on_error(line number, reason)`` and skipped instead. A file that
    is missing, unreadable or not UTF-8 always raises ``EvalDataError`` naming it."""
    p = Path(path)
    try:
        with open_text(p) as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    reason = f"invalid JSON ({e.msg}, column {e.colno})"
                else:
                    if isinstance(obj, dict):
                        yield lineno, obj
                        continue
                    reason = f"expected a JSON object, got {type(obj).__name__}"
                if on_error is None:
                    raise EvalDataError(f"{p}:{lineno}: {reason}")
                on_error(lineno, reason)
    except FileNotFoundError as e:
        raise EvalDataError(f"{p}: file not found") from e
    except IsADirectoryError as e:
        raise EvalDataError(f"{p}: is a directory, not a JSONL file") from e
    except UnicodeDecodeError as e:
        raise EvalDataError(f"{p}: not UTF-8 text ({e.reason})") from e
    except (OSError, EOFError) as e:  # a permission problem, a truncated .gz
        raise EvalDataError(f"{p}: cannot be read ({e})") from e


def open_text(path: Path) -> IO[str]:
    """``path`` opened for reading as UTF-8 text, through gzip when it ends in ``.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every complete JSON object row of ``path`` (none if it does not exist), in file order."""
    p = Path(path)
    if not p.is_file():
        return []
    rows: list[dict[str, Any]] = []
    with p.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line from an interrupted run
            if isinstance(row, dict):
                rows.append(row)
    return rows


@contextmanager
def appender(path: str | Path) -> Iterator[Callable[[dict[str, Any]], None]]:
    """``with appender(p) as append: append(row)``: each row is written and flushed at once."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torn = p.is_file() and p.stat().st_size > 0 and not _ends_with_newline(p)
    with p.open("a", encoding="utf-8") as fh:
        if torn:
            fh.write("\n")

        def append(row: dict[str, Any]) -> None:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()

        yield append


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"
