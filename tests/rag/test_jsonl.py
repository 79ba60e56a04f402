"""JSONL files: the one data-file reader (errors name the file and the line) and append-only logs (a run
killed mid-write loses at most its torn last row, never the next one)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from rag.errors import EvalDataError
from rag.jsonl import appender, read_jsonl, read_rows


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


def test_read_jsonl_skips_blank_lines_and_numbers_lines_as_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]
    gz = tmp_path / "data.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write('{"a": 3}\n')
    assert list(read_jsonl(gz)) == [(1, {"a": 3})]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{oops", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"text"', "expected a JSON object, got str"),
    ],
)
def test_a_bad_line_is_an_error_naming_the_file_and_the_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"ok": true}\n' + line + '\n{"ok": false}\n', encoding="utf-8")
    with pytest.raises(EvalDataError, match=rf"bad\.jsonl:2: {re.escape(reason)}"):
        list(read_jsonl(path))


def test_on_error_reports_a_bad_line_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"n": 1}\n{oops\n[3]\n{"n": 4}\n', encoding="utf-8")
    bad: list[tuple[int, str]] = []
    rows = list(read_jsonl(path, on_error=lambda n, why: bad.append((n, why))))
    assert rows == [(1, {"n": 1}), (4, {"n": 4})]
    assert [n for n, _ in bad] == [2, 3] and bad[0][1].startswith("invalid JSON")


def test_a_missing_or_undecodable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match=r"nowhere\.jsonl: file not found"):
        list(read_jsonl(tmp_path / "nowhere.jsonl"))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"a": "caf\xe9"}\n')
    with pytest.raises(EvalDataError, match=r"latin\.jsonl: not UTF-8"):
        list(read_jsonl(latin, on_error=lambda n, why: None))
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(EvalDataError, match=r"broken\.jsonl\.gz: cannot be read"):
        list(read_jsonl(broken))
