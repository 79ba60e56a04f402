"""Append-only JSONL logs: a run killed mid-write loses at most its torn last row, never the next one."""

from __future__ import annotations

from pathlib import Path

from rag.jsonl import appender, read_rows


def test_a_torn_last_line_is_skipped_and_never_glued_to_the_next_row(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "rows.jsonl"
    assert read_rows(path) == []
    with appender(path) as append:
        append({"id": 1, "text": "é"})
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"id": 2, "te')  # killed mid-write
    assert read_rows(path) == [{"id": 1, "text": "é"}]
    with appender(path) as append:
        append({"id": 3})
        append({"id": 4})
    assert [r["id"] for r in read_rows(path)] == [1, 3, 4]
    assert path.read_text(encoding="utf-8").count("\n") == 4
