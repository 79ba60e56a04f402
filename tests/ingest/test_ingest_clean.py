"""Cleaning: NFKC, de-hyphenation, whitespace, running headers/footers/page numbers, empty pages."""

from __future__ import annotations

from pathlib import Path

from ingest_pdf_factory import write_pdf

from ingest.clean import clean_document, clean_text, dehyphenate, is_page_number, strip_page_furniture
from ingest.loaders import LoadedDocument, load_document


def test_nfkc_ligatures_and_nbsp() -> None:
    assert clean_text("ﬁne\u00a0ﬂow ＡＢＣ") == "fine flow ABC"


def test_dehyphenation_across_line_breaks_only() -> None:
    assert dehyphenate("infor-\nmation and well-known") == "information and well-known"
    assert dehyphenate("Type-\nScript") == "Type-\nScript"  # a capital after the break is kept


def test_whitespace_repair() -> None:
    assert clean_text("  a \t b  \r\n\r\n\r\n\n c  \n") == "a b\n\nc"


def test_soft_hyphen_removed() -> None:
    assert clean_text("hy\u00adphen") == "hyphen"


def test_page_number_lines() -> None:
    for line in ["3", "- 3 -", "Page 3", "page 3 of 10", "12/40", "iv"]:
        assert is_page_number(line), line
    for line in ["3 apples", "Chapter 3 begins", ""]:
        assert not is_page_number(line), line


def test_running_headers_footers_and_numbers_removed() -> None:
    pages = [
        f"ACME Corp annual report\nBody text of page {n} is unique {n * 'x'}\nConfidential - page {n} of 4"
        for n in range(1, 5)
    ]
    cleaned = strip_page_furniture(pages)
    assert cleaned == [f"Body text of page {n} is unique {n * 'x'}" for n in range(1, 5)]


def test_single_page_keeps_its_first_line() -> None:
    assert strip_page_furniture(["Only title\nbody"]) == ["Only title\nbody"]


def test_empty_pages_dropped_and_page_numbers_kept() -> None:
    doc = LoadedDocument("pdf", ["first body", "  \n 2 \n", "third body"])
    cleaned = clean_document(doc)
    assert cleaned.text == "first body\n\nthird body"
    assert cleaned.pages == ((0, 1), (12, 3))
    assert cleaned.page_at(13) == 3 and cleaned.page_at(0) == 1


def test_real_pdf_cleaning(tmp_path: Path) -> None:
    pages = [["Intro", "", "The robots are auto-", "nomous and fast."], ["Second", "", "More body text."]]
    path = write_pdf(tmp_path / "r.pdf", pages, header="Running Header Inc", footer="Footer line")
    doc = clean_document(load_document(path, path.read_bytes()))
    assert "Running Header" not in doc.text and "Footer line" not in doc.text and "Page " not in doc.text
    assert "autonomous and fast." in doc.text
    assert [n for _, n in doc.pages] == [1, 2]
