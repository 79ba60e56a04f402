"""The ingest pipeline: incremental counts, stable ids, bad inputs, walking rules, strict, lock, BEIR."""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_pdf_factory import write_pdf

import ingest.sources as sources
from ingest.pipeline import ingest
from rag.errors import IndexLockedError, IngestError
from rag.store import open_index


def snapshot(index_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(index_dir)): p.read_bytes() for p in index_dir.rglob("*") if p.is_file()}


def test_incremental_counts_and_reuse(built_copy, config, monkeypatch) -> None:
    folder, index_dir = built_copy
    before = open_index(index_dir)
    ids_before = {c.source: [c.id for c in before.chunks if c.source == s] for c in before.chunks for s in [c.source]}
    (folder / "notes.txt").write_text("Orchard notes\n\nThe plum trees were planted in 2024.", encoding="utf-8")
    (folder / "guide.md").unlink()
    (folder / "new.md").write_text("# Pond\n\nThe pond has six goldfish.", encoding="utf-8")
    embedded: list[int] = []
    import ingest.embed as embed

    real = embed.embed_texts
    monkeypatch.setattr(
        embed, "embed_texts", lambda model, texts, **kw: embedded.append(len(texts)) or real(model, texts, **kw)
    )
    report = ingest(folder, index_dir=index_dir, config=config)
    assert (report.added, report.updated, report.removed, report.unchanged, report.failed) == (1, 1, 1, 2, [])
    after = open_index(index_dir)
    new_rows = [c for c in after.chunks if c.source in ("notes.txt", "new.md")]
    assert embedded == [len(new_rows)] == [report.chunks_embedded]
    for source in ("report.pdf", "sub/page.html"):  # unchanged files: same ids, same stored vectors
        assert [c.id for c in after.chunks if c.source == source] == ids_before[source]
        rows_a = [i for i, c in enumerate(after.chunks) if c.source == source]
        rows_b = [i for i, c in enumerate(before.chunks) if c.source == source]
        assert (after.embeddings[rows_a] == before.embeddings[rows_b]).all()
    assert not any(c.source == "guide.md" for c in after.chunks)
    assert after.bm25_search(["goldfish"], 1)[0] and not after.bm25_search(["aphids"], 1)[0]
    assert after.manifest["counts"]["documents"] == 4


def test_rerun_without_changes_writes_nothing_and_keeps_ids(built_copy, config) -> None:
    folder, index_dir = built_copy
    files_before = snapshot(index_dir)
    report = ingest(folder, index_dir=index_dir, config=config)
    assert (report.unchanged, report.added, report.updated, report.removed) == (4, 0, 0, 0)
    assert not report.written and report.chunks_embedded == 0
    assert snapshot(index_dir) == files_before


def test_stable_ids_across_fresh_builds(built_once, tmp_path: Path, config) -> None:
    folder, index_dir = built_once
    ingest(folder, index_dir=tmp_path / "again", config=config)
    assert [c.id for c in open_index(tmp_path / "again").chunks] == [c.id for c in open_index(index_dir).chunks]


def test_config_change_reembeds_everything(built_copy) -> None:
    from rag.config import ChunkingConfig, PipelineConfig

    folder, index_dir = built_copy
    report = ingest(folder, index_dir=index_dir, config=PipelineConfig(chunking=ChunkingConfig(chunk_tokens=200)))
    assert report.updated == 4 and report.unchanged == 0 and report.chunks_embedded == report.chunks_total


def bad_folder(root: Path) -> Path:
    """Two good files and every kind of bad one."""
    root.mkdir()
    (root / "good.md").write_text("# Good\n\nThe lighthouse keeper feeds the gulls at dawn.", encoding="utf-8")
    (root / "also-good.txt").write_text("Ferries leave the harbour every hour.", encoding="utf-8")
    good_pdf = write_pdf(root / "good.pdf", [["Page one text about tides."], ["Page two text about waves."]])
    data = good_pdf.read_bytes()
    (root / "truncated.pdf").write_bytes(data[: len(data) // 2])
    (root / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage\n%%EOF\n")
    (root / "empty.pdf").write_bytes(b"")
    write_pdf(root / "blank.pdf", [[], []], header=None, footer=None, page_numbers=False)
    (root / "binary.txt").write_bytes(bytes(range(256)) * 16)
    (root / "zero.md").write_bytes(b"")
    (root / "locked.txt").write_text("secret", encoding="utf-8")
    (root / "vanishing.txt").write_text("here now, gone soon", encoding="utf-8")
    os.symlink(root / "nowhere.md", root / "dangling.md")
    return root


def encrypt(path: Path, target: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(path).pages:
        writer.add_page(page)
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="AES-256")
    with open(target, "wb") as fh:
        writer.write(fh)


def test_bad_inputs_are_skipped_with_reasons(tmp_path: Path, config, monkeypatch, embedder) -> None:
    root = bad_folder(tmp_path / "bad")
    encrypt(root / "good.pdf", root / "encrypted.pdf")
    real_open = builtins.open
    locked = str(root / "locked.txt")

    def fake_open(file, *args, **kwargs):  # chmod 000 does not stop root, so refuse like the OS would
        if str(file) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(sources, "open", fake_open, raising=False)
    real_discover = sources.discover

    def discover_then_delete(*args, **kwargs):
        found = real_discover(*args, **kwargs)
        (root / "vanishing.txt").unlink()
        return found

    monkeypatch.setattr("ingest.pipeline.discover", discover_then_delete)
    report = ingest(root, index_dir=tmp_path / "index", config=config)
    reasons = {Path(p).name: r for p, r in report.failed}
    assert report.added == 3 and report.exit_code == 1
    assert set(reasons) == {
        "truncated.pdf",
        "corrupt.pdf",
        "empty.pdf",
        "blank.pdf",
        "encrypted.pdf",
        "binary.txt",
        "zero.md",
        "locked.txt",
        "vanishing.txt",
        "dangling.md",
    }
    assert "truncated" in reasons["truncated.pdf"]
    assert "PDF" in reasons["corrupt.pdf"]
    assert "empty file" in reasons["empty.pdf"] and "empty file" in reasons["zero.md"]
    assert "no extractable text" in reasons["blank.pdf"]
    assert "encrypted" in reasons["encrypted.pdf"]
    assert "binary" in reasons["binary.txt"]
    assert "permission denied" in reasons["locked.txt"]
    assert "vanished" in reasons["vanishing.txt"]
    assert "broken symbolic link" in reasons["dangling.md"]
    assert all(Path(p).is_absolute() for p, _ in report.failed)
    index = open_index(tmp_path / "index")
    assert {c.source for c in index.chunks} == {"good.md", "also-good.txt", "good.pdf"}


def test_strict_aborts_and_leaves_index_untouched(built_copy, config) -> None:
    folder, index_dir = built_copy
    files_before = snapshot(index_dir)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (folder / "notes.txt").write_text("changed text that must not be stored", encoding="utf-8")
    with pytest.raises(IngestError, match=r"(?s)--strict.*broken.pdf: truncated"):
        ingest(folder, index_dir=index_dir, config=config, strict=True)
    assert snapshot(index_dir) == files_before


def test_walk_rules(tmp_path: Path, config) -> None:
    root = tmp_path / "docs"
    (root / ".hidden").mkdir(parents=True)
    (root / ".hidden" / "secret.md").write_text("hidden folder", encoding="utf-8")
    (root / ".dotfile.md").write_text("hidden file", encoding="utf-8")
    (root / "code.py").write_text("print('not a document')", encoding="utf-8")
    (root / "UPPER.MD").write_text("# Loud\n\nUpper-case suffix is fine.", encoding="utf-8")
    (root / "loop").mkdir()
    os.symlink(root, root / "loop" / "back", target_is_directory=True)  # a symlink loop
    found = [f.source for f in sources.discover(root, extensions=config.ingest.extensions, exclude=None)]
    assert found == ["UPPER.MD"]


def test_index_inside_the_folder_is_ignored(tmp_path: Path, config, embedder) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("# A\n\nSome text about kites.", encoding="utf-8")
    first = ingest(root, index_dir=root / "myindex", config=config)
    (root / "myindex" / "stray.md").write_text("must not be ingested", encoding="utf-8")
    second = ingest(root, index_dir=root / "myindex", config=config)
    assert first.added == 1 and second.unchanged == 1 and second.added == 0


def test_single_file_and_missing_path(tmp_path: Path, config, embedder) -> None:
    path = tmp_path / "one.txt"
    path.write_text("A single file about lanterns.", encoding="utf-8")
    report = ingest(path, index_dir=tmp_path / "ix", config=config)
    assert report.added == 1 and [c.source for c in open_index(tmp_path / "ix").chunks] == ["one.txt"]
    with pytest.raises(IngestError, match="no such file"):
        ingest(tmp_path / "nothing", index_dir=tmp_path / "ix", config=config)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no documents to ingest"):
        ingest(tmp_path / "empty", index_dir=tmp_path / "ix2", config=config)


def test_second_concurrent_ingest_gets_a_clear_message(built_copy, config) -> None:
    folder, index_dir = built_copy
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; l = FileLock(sys.argv[1]); l.acquire(); "
            "print('locked', flush=True); time.sleep(60)",
            str(index_dir / "ingest.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        files_before = snapshot(index_dir)
        with pytest.raises(IndexLockedError, match=r"locked by another `rag ingest`.*wait"):
            ingest(folder, index_dir=index_dir, config=config)
        assert snapshot(index_dir) == files_before
    finally:
        holder.kill()
        holder.wait()


def test_beir_corpus(tmp_path: Path, config, embedder) -> None:
    rows = [
        {"_id": "d1", "title": "Vitamin D and bones", "text": "Vitamin D supplements increase bone density."},
        {"_id": "d2", "title": "", "text": "Aspirin reduces the risk of heart attacks in some adults."},
        {"_id": 3, "title": "Sleep", "text": "Adults need seven to nine hours of sleep."},
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json}\n", encoding="utf-8")
    report = ingest(corpus, index_dir=tmp_path / "ix", config=config)
    assert report.added == 3 and len(report.failed) == 1 and "invalid JSON" in report.failed[0][1]
    index = open_index(tmp_path / "ix")
    by_source = {c.source: c for c in index.chunks}
    assert set(by_source) == {"d1", "d2", "3"}
    assert by_source["d1"].title == "Vitamin D and bones"
    assert by_source["d1"].text.startswith("Vitamin D and bones\n\nVitamin D supplements")
    assert index.bm25_search(["bones"], 1)[0][0][0] == index.chunks.index(by_source["d1"])  # the title is indexed
    rows[1]["text"] = "Aspirin thins the blood."
    corpus.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n", encoding="utf-8")
    again = ingest(corpus, index_dir=tmp_path / "ix", config=config)
    assert (again.unchanged, again.updated, again.removed) == (1, 1, 1)


def test_progress_bars_do_not_break_ingest(built_copy, config, capsys) -> None:
    folder, index_dir = built_copy
    (folder / "extra.txt").write_text("Some extra words about clouds.", encoding="utf-8")
    start = time.perf_counter()
    report = ingest(folder, index_dir=index_dir, config=config, progress=True)
    assert report.added == 1 and time.perf_counter() - start < 60
