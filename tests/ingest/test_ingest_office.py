"""Office loaders (.docx, .pptx, .xlsx): structure as Markdown, one page per slide/sheet, and every
bad file (corrupt, password-protected, macro-enabled, empty) a DocumentError with a reason."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from ingest_office_factory import DOCX_FOOTER, DOCX_HEADER, write_docx, write_office_folder, write_pptx, write_xlsx

from ingest.clean import clean_document
from ingest.loaders import load_document
from ingest.office import cell_text, heading_level, markdown_table, sheet_rows
from rag.errors import DocumentError

WRITERS = {"docx": write_docx, "pptx": write_pptx, "xlsx": write_xlsx}


def load(path: Path):
    return load_document(path, path.read_bytes())


def test_docx_paragraphs_headings_tables_and_furniture_once(tmp_path: Path) -> None:
    doc = load(write_docx(tmp_path / "ops.docx"))
    text = doc.pages[0]
    assert doc.kind == "docx" and doc.markdown and doc.title == "Ferry operations" and len(doc.pages) == 1
    order = [
        DOCX_HEADER,
        "# Ferry operations",
        "The harbour ferry leaves the north pier every 20 minutes from 06:00.",
        "# Timetable",
        "| Route | First | Last |\n| --- | --- | --- |\n| North-South | 06:00 | 23:40 |\n"
        "| East \\| West | 07:15 | 22:10 |",
        "## Safety",
        "- Life jackets are stored under every seat.",
        "Lost property is kept at the ticket office for 30 days.",
        DOCX_FOOTER,
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert text.count(DOCX_HEADER) == 1 and text.count(DOCX_FOOTER) == 1  # two sections, one header


def test_pptx_one_page_per_slide_with_title_table_and_notes(tmp_path: Path) -> None:
    doc = load(write_pptx(tmp_path / "fleet.pptx"))
    assert doc.kind == "pptx" and doc.title == "Ferry fleet review" and len(doc.pages) == 4
    assert doc.pages[0] == "# Ferry fleet review\n\nQuarterly report of the harbour ferry fleet"
    assert doc.pages[1].startswith("# Fuel use\n\nThe MV Kittiwake burns 95 litres of diesel per hour.\n")
    assert doc.pages[1].endswith("## Speaker notes\n\nMention the battery supplier by name when presenting.")
    assert "| Ship | Passengers |\n| --- | --- |\n| Kittiwake | 41,200 |" in doc.pages[2]
    assert doc.pages[3] == ""
    cleaned = clean_document(doc)
    assert [number for _, number in cleaned.pages] == [1, 2, 3]  # the empty slide is dropped, numbers kept
    assert cleaned.page_at(cleaned.text.index("Passengers |")) == 3 and cleaned.chars_removed == 0


def test_xlsx_one_page_per_sheet_with_cached_formula_values(tmp_path: Path) -> None:
    doc = load(write_xlsx(tmp_path / "tickets.xlsx"))
    assert doc.kind == "xlsx" and len(doc.pages) == 3 and doc.notes == ()
    assert doc.pages[0] == (
        "# Tickets\n\n| Ticket | Price EUR | Sold |\n| --- | --- | --- |\n| Single | 3.5 | 1200 |\n"
        "| Return | 6 | 800 |\n| Total |  | 2000 |"
    )
    assert doc.pages[1].startswith("# Crew\n\n| Name | Role |") and doc.pages[2] == ""


def test_xlsx_large_sheet_is_capped_with_a_note(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("ingest.office.MAX_SHEET_CELLS", 100)
    doc = load(write_xlsx(tmp_path / "big.xlsx", big_rows=80))
    assert len(doc.notes) == 1 and "'Log' has more than 100 cells" in doc.notes[0]
    assert "| 48 | entry 48 |" in doc.pages[3] and "entry 50" not in doc.pages[3]


def test_markdown_helpers() -> None:
    import datetime as dt

    assert [heading_level(s) for s in ("Title", "Heading 1", "Heading 3", "Heading 9", "Normal", "List Bullet")] == [
        1,
        1,
        3,
        6,
        0,
        0,
    ]
    assert [cell_text(v) for v in (None, True, 2.0, 2.5, dt.datetime(2026, 3, 1), "a | b\nc")] == [
        "",
        "TRUE",
        "2",
        "2.5",
        "2026-03-01",
        "a \\| b c",
    ]
    assert markdown_table([["a", "b"], ["1"]]) == "| a | b |\n| --- | --- |\n| 1 |  |"
    rows, truncated = sheet_rows([(None, None, None), ("x", None, None), (None, 2, None)], max_cells=100)
    assert rows == [["x", ""], ["", "2"]] and not truncated


def _rezip(data: bytes, change: dict[str, bytes | None]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    for name, content in change.items():
        if content is None:
            parts.pop(name, None)
        else:
            parts[name] = content
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return out.getvalue()


def _macro_enabled(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        types = archive.read("[Content_Types].xml").decode()
    for plain, macro in [
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            "application/vnd.ms-word.document.macroEnabled.main+xml",
        ),
        (
            "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
            "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
        ),
        (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        ),
    ]:
        types = types.replace(plain, macro)
    return _rezip(data, {"[Content_Types].xml": types.encode()})


def _flip_bytes(data: bytes) -> bytes:
    bad = bytearray(data)
    for i in range(len(bad) // 3, len(bad) // 3 + 300):
        bad[i] ^= 0xFF
    return bytes(bad)


OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


@pytest.mark.parametrize("kind", ["docx", "pptx", "xlsx"])
@pytest.mark.parametrize(
    ("name", "spoil", "reason"),
    [
        ("truncated", lambda d: d[: len(d) // 2], "corrupt .*not a readable zip package"),
        ("not-a-zip", lambda d: b"this is plain text, not an Office file\n" * 20, "corrupt .*not a readable zip"),
        ("flipped", _flip_bytes, "corrupt "),
        ("no-content-types", lambda d: _rezip(d, {"[Content_Types].xml": None}), r"no \[Content_Types\].xml"),
        ("macro", _macro_enabled, "macro-enabled file"),
        ("encrypted", lambda d: OLE + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 64, "password-protected"),
        ("old-binary", lambda d: OLE + b"\x00" * 512, "old binary Office format"),
    ],
)
def test_bad_office_files_are_refused_with_a_reason(tmp_path: Path, kind: str, name: str, spoil, reason: str) -> None:
    good = WRITERS[kind](tmp_path / f"good.{kind}").read_bytes()
    path = tmp_path / f"{name}.{kind}"
    path.write_bytes(spoil(good))
    with pytest.raises(DocumentError, match=reason) as caught:
        load(path)
    assert caught.value.path == str(path) and "\n" not in caught.value.reason


def test_office_file_without_text_is_refused(tmp_path: Path) -> None:
    from docx import Document
    from openpyxl import Workbook
    from pptx import Presentation

    Document().save(str(tmp_path / "empty.docx"))
    Presentation().save(str(tmp_path / "empty.pptx"))
    Workbook().save(str(tmp_path / "empty.xlsx"))
    for name, label in [("empty.docx", "Word document"), ("empty.pptx", "PowerPoint"), ("empty.xlsx", "Excel")]:
        with pytest.raises(DocumentError, match=f"{label}.* has no text"):
            load(tmp_path / name)


def test_zip_bomb_is_refused_before_parsing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("ingest.office.MAX_UNPACKED_BYTES", 10_000)
    good = write_docx(tmp_path / "good.docx").read_bytes()
    path = tmp_path / "bomb.docx"
    path.write_bytes(_rezip(good, {"word/padding.bin": b"\x00" * 50_000}))
    with pytest.raises(DocumentError, match=r"zip bomb: [\d.]+ kB uncompressed from [\d.]+ kB \(limit 10\.0 kB\)"):
        load(path)


def test_office_folder_is_discovered_with_default_extensions(tmp_path: Path) -> None:
    from ingest.sources import discover
    from rag.config import IngestConfig

    root = write_office_folder(tmp_path / "office")
    (root / "~$operations.docx").write_bytes(b"\x00" * 162)  # Word's owner file while the document is open
    found = discover(root, extensions=IngestConfig().extensions)
    assert [f.source for f in found] == ["fleet.pptx", "operations.docx", "tickets.xlsx"]


# --- through the pipeline (real embedding model) ---------------------------------------------------


def _top_source(index, query: str) -> str:
    (row, _), *_ = index.bm25_search([query], 1)[0]
    return index.chunks[row].source


def test_office_folder_is_ingested_with_pages_headings_and_cleaning_counts(tmp_path: Path, config, embedder) -> None:
    from ingest.pipeline import ingest
    from rag.store import open_index

    root = write_office_folder(tmp_path / "office")
    report = ingest(root, index_dir=tmp_path / "index", config=config)
    assert (report.added, report.failed) == (3, [])
    assert set(report.cleaning) == {"fleet.pptx", "operations.docx", "tickets.xlsx"}
    assert all(c["chars_loaded"] > 100 and c["chars_removed"] == 0 for c in report.cleaning.values())
    index = open_index(tmp_path / "index")
    chunks = {source: [c for c in index.chunks if c.source == source] for source in report.cleaning}
    assert {c.page for c in chunks["fleet.pptx"]} == {1, 2, 3}
    assert {c.heading for c in chunks["fleet.pptx"]} >= {"Fuel use", "Fuel use > Speaker notes", "Passengers"}
    assert {(c.page, c.heading) for c in chunks["tickets.xlsx"]} == {(1, "Tickets"), (2, "Crew")}
    assert {c.page for c in chunks["operations.docx"]} == {None}
    assert {c.heading for c in chunks["operations.docx"]} >= {"Timetable", "Timetable > Safety"}
    assert all(index.manifest["files"][s]["chars_loaded"] == report.cleaning[s]["chars_loaded"] for s in chunks)
    assert _top_source(index, "Which ship burns diesel?") == "fleet.pptx"
    assert _top_source(index, "Who is the captain?") == "tickets.xlsx"
    assert _top_source(index, "Where is lost property kept?") == "operations.docx"


def test_broken_office_file_keeps_its_stored_version(tmp_path: Path, config, embedder) -> None:
    from ingest.pipeline import ingest
    from rag.store import open_index

    root = write_office_folder(tmp_path / "office")
    ingest(root, index_dir=tmp_path / "index", config=config)
    before = [c.id for c in open_index(tmp_path / "index").chunks if c.source == "tickets.xlsx"]
    (root / "tickets.xlsx").write_bytes(b"PK\x03\x04 half-written by a spreadsheet program")
    (root / "new.docx").write_bytes(OLE + "EncryptedPackage".encode("utf-16-le"))
    write_docx(root / "extra.docx", title="Extra")  # something changes, so a new generation is written
    report = ingest(root, index_dir=tmp_path / "index", config=config)
    reasons = {Path(p).name: r for p, r in report.failed}
    assert set(reasons) == {"tickets.xlsx", "new.docx"} and report.exit_code == 1
    assert report.written and (report.added, report.removed) == (1, 0)
    assert reasons["tickets.xlsx"].startswith("corrupt Excel workbook") and "password-protected" in reasons["new.docx"]
    assert "tickets.xlsx: could not be read; the version stored before is kept" in report.notes
    after = open_index(tmp_path / "index")
    assert [c.id for c in after.chunks if c.source == "tickets.xlsx"] == before
    assert "new.docx" not in after.manifest["files"]
