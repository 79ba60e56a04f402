"""Append-only JSONL logs that survive being killed mid-write (a judge run, LLM query generation).

A torn last line is skipped when the file is read back, and a new row is never glued onto it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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
