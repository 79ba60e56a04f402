"""Fuzzing the loaders (the short, seeded run; ``benchmarks/fuzz_ingest.py`` is the long one), and the
zip-bomb checks of the Office loaders.

The invariant: ``ingest`` returns normally and every mutant ends ``added`` or ``failed`` with a one-line
reason of a known class: no traceback, no exception the loaders did not turn into a reason, no file
past the time limit, no worker past the memory cap, and the parent process does not grow with the
files it reads (it never parses one).
"""

from __future__ import annotations

import io
import resource
import zipfile
from pathlib import Path

import pytest
from ingest_fuzz_corpus import (
    ZIP_MUTATIONS,
    _bomb,
    build_corpus,
    reason_class,
    seed_bytes,
    write_seeds,
)
from ingest_office_factory import write_docx, write_xlsx

from ingest.office import MAX_NESTING, check_zip_bomb, load_docx
from rag.config import IngestConfig
from rag.errors import DocumentError

SEED = 0
PER_FORMAT = 12  # 72 mutants: every mutation of every format at least twice
TIMEOUT_S = 60.0
MEMORY_MB = 4096
SLACK_S = 3.0
BUG_CLASSES = ("traceback", "unexpected", "crashed")


def test_seeded_mutants_end_added_or_failed_with_a_reason(tmp_path: Path, config) -> None:
    from ingest.pipeline import ingest

    folder = tmp_path / "corpus"
    seeds = write_seeds(folder)
    mutants = build_corpus(folder, seed=SEED, per_format=PER_FORMAT)
    fuzz_config = config.replace(ingest=IngestConfig(file_timeout_s=TIMEOUT_S, max_file_memory_mb=MEMORY_MB))
    grown_before = _max_rss_mb()

    report = ingest(folder, index_dir=tmp_path / "index", config=fuzz_config)

    names = {p.name for p in seeds} | {m.name for m in mutants}
    failed = {Path(path).name: reason for path, reason in report.failed}
    added = set(_manifest_files(tmp_path / "index"))
    assert added | set(failed) == names and not added & set(failed), "every file ends added or failed, once"
    assert {p.name for p in seeds} <= added, "the unmutated seeds are read"
    assert report.added == len(added)
    classes = {name: reason_class(reason) for name, reason in failed.items()}
    bugs = {name: failed[name] for name, cls in classes.items() if cls in BUG_CLASSES}
    assert not bugs, f"reasons that are not a loader's own: {bugs}"
    assert all(reason.strip() and "\n" not in reason for reason in failed.values())
    for mutant in mutants:
        if mutant.mutation in ("nested_bomb", "huge_size"):
            assert classes.get(mutant.name) == "zip bomb", (mutant.name, failed.get(mutant.name))
    assert set(report.loading) == names
    assert max(row["seconds"] for row in report.loading.values()) < TIMEOUT_S + SLACK_S
    assert max(row["peak_mb"] for row in report.loading.values()) < MEMORY_MB
    # the bombs declare 0.1-4 GB; what the parent's peak may grow by is the embedding model (~0.5 GB)
    assert _max_rss_mb() - grown_before < 1000, "the parent's peak memory grew with the files it read"


def _manifest_files(index: Path) -> list[str]:
    import json

    manifest = json.loads(next(index.rglob("manifest.json")).read_text(encoding="utf-8"))
    return [Path(source).name for source in manifest["files"]]


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_the_corpus_is_seeded_and_covers_every_mutation(tmp_path: Path) -> None:
    first = build_corpus(tmp_path / "a", seed=7, per_format=6)
    again = build_corpus(tmp_path / "b", seed=7, per_format=6)
    other = build_corpus(tmp_path / "c", seed=8, per_format=6)
    assert [m.path.read_bytes() for m in first] == [m.path.read_bytes() for m in again]
    assert [m.path.read_bytes() for m in first] != [m.path.read_bytes() for m in other]
    assert {m.mutation for m in first if m.format == "docx"} == {"truncate", "flip", "zero", *ZIP_MUTATIONS}
    assert all(m.path.read_bytes() != seed_bytes(m.format) for m in first)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("corrupt PDF: EOF marker not found", "corrupt"),
        ("zip bomb: 1.2 GB uncompressed from 40.0 kB (limit 1.0 GB)", "zip bomb"),
        ("took longer than ingest.file_timeout_s (60 s) to load; stopped", "timeout"),
        ("unexpected KeyError: 'Root'", "unexpected"),
        ('Traceback (most recent call last):\n  File "x.py", line 1', "traceback"),
        ("something nobody wrote", "other"),
    ],
)
def test_reason_classes(reason: str, expected: str) -> None:
    assert reason_class(reason) == expected


# --- zip bombs --------------------------------------------------------------------------------------


def _with_member(data: bytes, name: str, content: bytes, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", compression) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info))
        archive.writestr(name, content)
    return out.getvalue()


def _check(path: Path, data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return check_zip_bomb(path, archive, packed=len(data))


def test_a_member_that_inflates_a_thousand_times_is_a_zip_bomb(tmp_path: Path) -> None:
    data = _with_member(write_docx(tmp_path / "a.docx").read_bytes(), "word/media/zeros.bin", b"\x00" * 20_000_000)
    with pytest.raises(
        DocumentError, match=r"zip bomb: word/media/zeros\.bin inflates [\d,]+x \(20\.0 MB uncompressed"
    ):
        _check(tmp_path / "a.docx", data)


def test_nested_zips_count_and_too_deep_nesting_is_a_zip_bomb(tmp_path: Path) -> None:
    docx = write_docx(tmp_path / "a.docx").read_bytes()
    for depth, reason in [
        (1, r"zip bomb: zeros0\.bin inflates"),
        (MAX_NESTING, r"zip bomb: zeros0\.bin inflates"),
        (MAX_NESTING + 1, rf"zip bomb: zips nested more than {MAX_NESTING} deep"),
    ]:
        with pytest.raises(DocumentError, match=reason):
            _check(tmp_path / "a.docx", _with_member(docx, "word/embeddings/object.bin", _bomb(depth, 1)))


def test_a_real_embedded_workbook_is_not_a_bomb_and_the_document_loads(tmp_path: Path) -> None:
    workbook = write_xlsx(tmp_path / "chart.xlsx").read_bytes()
    docx = write_docx(tmp_path / "a.docx").read_bytes()
    data = _with_member(docx, "word/embeddings/Microsoft_Excel_Worksheet.xlsx", workbook)
    with zipfile.ZipFile(io.BytesIO(workbook)) as inner:
        inner_size = sum(i.file_size for i in inner.infolist())
    with zipfile.ZipFile(io.BytesIO(docx)) as outer:
        outer_size = sum(i.file_size for i in outer.infolist())
    assert _check(tmp_path / "a.docx", data) == outer_size + len(workbook) + inner_size
    path = tmp_path / "with-workbook.docx"
    path.write_bytes(data)
    assert "Ferry operations" in load_docx(path, data).pages[0]


def test_a_lying_declared_size_is_refused_before_inflating(tmp_path: Path) -> None:
    from ingest_fuzz_corpus import huge_size

    docx = write_docx(tmp_path / "a.docx").read_bytes()
    import random

    data = huge_size(docx, random.Random(3), "docx")
    with pytest.raises(DocumentError, match=r"^.*: zip bomb: "):
        load_docx(tmp_path / "a.docx", data)
