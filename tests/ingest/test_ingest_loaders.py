"""Loaders: each format to text; every kind of bad file becomes a DocumentError naming the reason."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from ingest_pdf_factory import write_pdf

from ingest.loaders import load_document
from ingest.sources import read_bytes
from rag.errors import DocumentError


def load(path: Path):
    return load_document(path, path.read_bytes())


def test_markdown_title_and_text(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("# Title here\n\nBody text.\n", encoding="utf-8")
    doc = load(path)
    assert doc.kind == "markdown" and doc.title == "Title here" and "Body text." in doc.pages[0]


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16", "latin-1"])
def test_text_encoding_detected(tmp_path: Path, encoding: str) -> None:
    text = "Crème brûlée and café au lait are served à la carte in the façade garden, naïvely.\n" * 3
    path = tmp_path / "menu.txt"
    path.write_bytes(text.encode(encoding))
    assert load(path).pages[0] == text


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffhello world".encode())
    assert load(path).pages[0] == "hello world"


def test_binary_file_with_text_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DocumentError, match="binary content"):
        load(path)


def test_html_drops_script_and_style_keeps_headings(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    path.write_text(
        "<html><head><title>T</title><style>.x{color:red}</style><script>alert('no')</script></head>"
        "<body><h1>Top</h1><p>First para.</p><h2>Sub</h2><p>Second para.</p><noscript>nojs</noscript></body></html>",
        encoding="utf-8",
    )
    doc = load(path)
    text = doc.pages[0]
    assert doc.title == "T"
    assert "# Top" in text and "## Sub" in text and "First para." in text
    assert "alert" not in text and "color" not in text and "nojs" not in text


def test_pdf_pages(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "r.pdf", [["alpha page"], ["beta page"], ["gamma page"]], title="Greek")
    doc = load(path)
    assert doc.kind == "pdf" and len(doc.pages) == 3 and doc.title == "Greek"
    assert "beta page" in doc.pages[1]


def test_truncated_pdf_is_refused(tmp_path: Path) -> None:
    good = write_pdf(tmp_path / "good.pdf", [["some text"], ["more text"]])
    bad = tmp_path / "cut.pdf"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DocumentError, match="truncated"):
        load(bad)


def test_corrupt_pdf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"garbage " * 200 + b"\n%%EOF\n")
    with pytest.raises(DocumentError, match="PDF"):
        load(path)


def test_not_a_pdf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("just text pretending", encoding="utf-8")
    with pytest.raises(DocumentError, match="not a PDF"):
        load(path)


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    plain = write_pdf(tmp_path / "plain.pdf", [["secret text"]])
    writer = PdfWriter()
    for page in PdfReader(plain).pages:
        writer.add_page(page)
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    path = tmp_path / "locked.pdf"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DocumentError, match="encrypted"):
        load(path)


def test_pdf_without_text_is_refused(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "blank.pdf", [[], []], header=None, footer=None, page_numbers=False)
    with pytest.raises(DocumentError, match="no extractable text"):
        load(path)


def test_zero_byte_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.md"
    path.touch()
    with pytest.raises(DocumentError, match="empty file"):
        read_bytes(path, max_bytes=1000)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 2000, encoding="utf-8")
    with pytest.raises(DocumentError, match="max_file_mb"):
        read_bytes(path, max_bytes=1000)


def test_missing_file_reads_as_vanished(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="vanished"):
        read_bytes(tmp_path / "gone.txt", max_bytes=1000)
