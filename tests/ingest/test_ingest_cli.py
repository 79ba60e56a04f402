"""``rag ingest`` and ``rag index stats``: exit codes 0/1/2, --json, the default index directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_into_default_index_and_stats(built_once, tmp_path: Path, monkeypatch, capsys) -> None:
    folder, _ = built_once
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.yaml").write_text("chunking:\n  chunk_tokens: 64\n  overlap_tokens: 8\n", encoding="utf-8")
    code, out, err = run(capsys, "ingest", str(folder), "--config", "small.yaml")
    assert code == 0, err
    assert "4 added" in out and "0 failed" in out
    assert (tmp_path / ".ragtrail" / "CURRENT").is_file()
    code, out, _ = run(capsys, "index", "stats", "--json")
    stats = json.loads(out)
    assert code == 0 and stats["documents"] == 4 and stats["dimension"] == 384
    assert stats["chunks"] > 4 and stats["vocabulary"] > 20 and stats["bytes"]["total"] > 0
    assert stats["embedding_model"] == "all-MiniLM-L6-v2"
    code, out, _ = run(capsys, "index", "stats")
    assert code == 0 and "vocabulary" in out and "dimension    384" in out


def test_json_summary_and_exit_1_when_a_file_is_skipped(built_once, tmp_path: Path, capsys) -> None:
    folder, index = built_once
    shutil.copytree(folder, tmp_path / "docs")
    shutil.copytree(index, tmp_path / "index")
    (tmp_path / "docs" / "bad.txt").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "small.yaml").write_text("chunking:\n  chunk_tokens: 64\n  overlap_tokens: 8\n", encoding="utf-8")
    argv = [
        "ingest",
        str(tmp_path / "docs"),
        "--index",
        str(tmp_path / "index"),
        "--config",
        str(tmp_path / "small.yaml"),
    ]
    code, out, err = run(capsys, *argv, "--json")
    summary = json.loads(out)
    assert code == 1
    assert summary["unchanged"] == 4 and summary["added"] == 0
    assert summary["failed"] == [{"path": str(tmp_path / "docs" / "bad.txt"), "reason": summary["failed"][0]["reason"]}]
    assert f"{tmp_path / 'docs' / 'bad.txt'}: binary content" in err
    code, _, err = run(capsys, *argv, "--strict")
    assert code == 1 and "--strict" in err and "bad.txt" in err


def test_json_reports_characters_removed_by_cleaning(tmp_path: Path, capsys, embedder) -> None:
    from ingest_pdf_factory import write_pdf

    pages = [[f"Pumps need oil {n}."] for n in range(1, 5)]
    header = "Harbour Ferries Ltd - operations manual"
    write_pdf(tmp_path / "docs" / "thin.pdf", pages, header=header, footer="Do not copy")
    (tmp_path / "docs" / "notes.txt").write_text("The ferry leaves at noon.", encoding="utf-8")
    code, out, err = run(capsys, "ingest", str(tmp_path / "docs"), "--index", str(tmp_path / "index"), "--json")
    summary = json.loads(out)
    assert code == 0, err
    thin, notes = summary["cleaning"]["thin.pdf"], summary["cleaning"]["notes.txt"]
    assert notes == {"chars_loaded": len("Theferryleavesatnoon."), "chars_removed": 0}
    assert thin["chars_removed"] > 0.5 * thin["chars_loaded"]
    assert any(n.startswith("thin.pdf: cleaning removed") and "% of its characters" in n for n in summary["notes"])
    code, out, err = run(capsys, "ingest", str(tmp_path / "docs"), "--index", str(tmp_path / "index2"))
    assert code == 0 and "rag ingest: note: thin.pdf: cleaning removed" in err and "notes.txt" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest"],
        ["ingest", "data", "--no-such-flag"],
        ["index"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_missing_path_and_bad_config_exit_2(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "ingest", str(tmp_path / "missing"), "--index", str(tmp_path / "ix"))
    assert code == 2 and "no such file or folder" in err
    (tmp_path / "bad.yaml").write_text("chunking:\n  chunk_size: 3\n", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    code, _, err = run(capsys, "ingest", str(tmp_path / "docs"), "--config", str(tmp_path / "bad.yaml"))
    assert code == 2 and "unknown key" in err


def test_stats_without_index_fails_clearly(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "index", "stats", "--index", str(tmp_path / "none"))
    assert code == 1 and "no index at" in err and "rag ingest" in err


FLOOD = """
import sys
import rag.commands.ingest as commands

def flood(args):
    for _ in range(200_000):
        print("x" * 80)
    return 0

commands.run_stats = flood
from rag.cli import main
sys.exit(main(["index", "stats"]))
"""


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", FLOOD], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader leaves at once, as `| head` does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and b"Traceback" not in err, err.decode()
