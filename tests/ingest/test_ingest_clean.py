"""Cleaning: NFKC, de-hyphenation, whitespace, running headers/footers/page numbers, empty pages.

Furniture removal must never delete a document's body: the rule is in ``ingest/clean.py``'s docstring.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_pdf_factory import write_pdf

from ingest.clean import (
    EDGE_LINES,
    MIN_PAGES,
    MIN_REPEATS,
    clean_document,
    clean_text,
    dehyphenate,
    furniture_key,
    has_page_marker,
    is_page_number,
    strip_furniture_lines,
    strip_page_furniture,
)
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
    pages += [["Third", "", "Even more body text."], ["Fourth", "", "The last body text."]]
    path = write_pdf(tmp_path / "r.pdf", pages, header="Running Header Inc", footer="Footer line")
    doc = clean_document(load_document(path, path.read_bytes()))
    assert "Running Header" not in doc.text and "Footer line" not in doc.text and "Page " not in doc.text
    assert "autonomous and fast." in doc.text
    assert [n for _, n in doc.pages] == [1, 2, 3, 4]
    assert doc.chars_removed > 0 and doc.chars_loaded > doc.chars_removed


# --- furniture removal never deletes the body -----------------------------------------------------

MANUAL_SENTENCE = "Keep the inlet valve closed during any maintenance work."


def manual_pages(count: int = 4) -> list[list[str]]:
    """The issue's manual: a title line, one section line, one sentence repeated on every page, "Page N"."""
    return [
        [
            "Pump station manual",
            f"Section {n}: The pump station number {n} runs at {10 * n} litres per minute.",
            MANUAL_SENTENCE,
            f"Page {n}",
        ]
        for n in range(1, count + 1)
    ]


def test_four_page_manual_keeps_its_body(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "manual.pdf", manual_pages(), header=None, footer=None, page_numbers=False)
    doc = clean_document(load_document(path, path.read_bytes()))
    for n in range(1, 5):
        assert f"Section {n}: The pump station number {n} runs at {10 * n} litres per minute." in doc.text
    assert doc.text.count(MANUAL_SENTENCE) == 4
    assert [n for _, n in doc.pages] == [1, 2, 3, 4]
    ends = [s - 2 for s, _ in doc.pages[1:]] + [len(doc.text)]
    for (start, _), end in zip(doc.pages, ends, strict=True):
        assert doc.text[start:end].count(MANUAL_SENTENCE) == 1  # once per page
    assert "Page " not in doc.text  # page numbers go
    assert "Pump station manual" not in doc.text  # a short line at the top of every page is a running header


def test_page_is_emptied_only_when_every_line_is_furniture() -> None:
    pages = [["ACME field guide", f"Unique body line number {n} about pumps", f"- {n} -"] for n in range(1, 5)]
    pages.append(["ACME field guide", "7"])
    stripped = strip_furniture_lines(pages)
    assert [page.kept for page in stripped[:4]] == [(f"Unique body line number {n} about pumps",) for n in range(1, 5)]
    assert stripped[4].kept == () and stripped[4].removed == ("ACME field guide", "7")


def test_furniture_is_taken_from_the_edges_only() -> None:
    # "Notes" repeats at the top zone of every page but sits below a body line: it is never reached.
    pages = [[f"Chapter {n} opening words", "Notes", f"Body text {n}", "ACME"] for n in range(1, 6)]
    stripped = strip_furniture_lines(pages)
    assert all(page.kept[:2] == (f"Chapter {n} opening words", "Notes") for n, page in enumerate(stripped, 1))
    assert all(page.removed == ("ACME",) for page in stripped)


def test_document_made_only_of_repeated_lines_keeps_them() -> None:
    pages = [["ACME field guide", f"Page {n}"] for n in range(1, 6)]
    assert strip_page_furniture(["\n".join(p) for p in pages]) == ["ACME field guide"] * 5


def test_numbers_are_normalised_only_in_short_page_number_like_lines() -> None:
    assert furniture_key("Confidential - page 3 of 12") == furniture_key("CONFIDENTIAL  -  Page 4 of 12")
    assert furniture_key("Annual report 2025 | 7") == furniture_key("Annual report 2025 | 8")
    assert furniture_key("Internal use only Page 2 of 4") == furniture_key("Internal use only Page 3 of 4")
    assert furniture_key("Annual report 2025 | 7") != furniture_key("Annual report 2024 | 7")  # not a page marker
    assert furniture_key("Step 3") != furniture_key("Step 4")
    long = "The settings of every pump are described on page {} of the installation guide for engineers"
    assert not has_page_marker(long.format(3)) and furniture_key(long.format(3)) != furniture_key(long.format(4))
    section = "Section {0}: The pump station number {0} runs at {0}0 litres per minute."
    assert furniture_key(section.format(1)) != furniture_key(section.format(2))


def test_changing_numbers_without_a_page_marker_are_kept() -> None:
    pages = [[f"Step {n}", f"Turn the handle {n} times.", f"Report 2025 | {n}"] for n in range(1, 6)]
    stripped = strip_furniture_lines(pages)
    assert [page.kept for page in stripped] == [(f"Step {n}", f"Turn the handle {n} times.") for n in range(1, 6)]


def test_short_documents_keep_repeated_lines() -> None:
    for count in range(1, MIN_PAGES):
        pages = [
            ["ACME Corp annual report", f"Body of page {n} in full.", "Confidential", f"Page {n} of 3"]
            for n in range(1, count + 1)
        ]
        cleaned = strip_page_furniture(["\n".join(p) for p in pages])
        assert cleaned == ["\n".join(p[:3]) for p in pages], count  # only the page numbers go


def test_clean_document_counts_removed_characters() -> None:
    pages = [f"Harbour manual\nBody {n}.\nPage {n}" for n in range(1, 5)]
    doc = clean_document(LoadedDocument("pdf", pages))
    assert doc.text == "Body 1.\n\nBody 2.\n\nBody 3.\n\nBody 4."
    assert doc.chars_loaded == 4 * len("Harbourmanual") + 4 * len("Body1.") + 4 * len("Page1")
    assert doc.chars_removed == 4 * len("Harbourmanual") + 4 * len("Page1")
    assert 0.7 < doc.removed_share < 0.8
    plain = clean_document(LoadedDocument("text", ["plain  text\n\n\nwith   spaces"]))
    assert plain.chars_removed == 0 and plain.chars_loaded == len("plaintextwithspaces")


# --- property: only repeated edge lines and page numbers ever leave a page ---------------------------

WORDS = "pump valve station report manual Section Step Page page of ACME the runs litres closed Keep | - Confidential"
word = st.one_of(st.sampled_from(WORDS.split()), st.integers(0, 40).map(str))
free_line = st.lists(word, min_size=1, max_size=14).map(" ".join).map(lambda line: line + ".") | st.lists(
    word, min_size=1, max_size=14
).map(" ".join)
page_number = st.integers(1, 99).flatmap(lambda n: st.sampled_from([str(n), f"Page {n}", f"- {n} -", f"{n} of 20"]))
running = st.sampled_from(["ACME pump manual", "Confidential", "Station report | 3", "Keep the valve closed."])


@st.composite
def page_sets(draw: st.DrawFn) -> list[list[str]]:
    """1-8 pages: optional running header, free lines (often repeated, often numbered), optional footer."""
    shared = draw(st.lists(free_line, min_size=1, max_size=3))
    pages = []
    for _ in range(draw(st.integers(1, 8))):
        body = draw(st.lists(st.one_of(free_line, st.sampled_from(shared)), min_size=0, max_size=6))
        top = draw(st.lists(st.one_of(running, page_number), max_size=2))
        bottom = draw(st.lists(st.one_of(running, page_number), max_size=2))
        pages.append([line for line in [*top, *body, *bottom] if line.strip()])
    return pages


def _edge_pages(pages: list[list[str]], key: str) -> int:
    """On how many pages a line with this key stands within EDGE_LINES of the top, or of the bottom."""
    top = sum(any(furniture_key(line) == key for line in lines[:EDGE_LINES]) for lines in pages)
    bottom = sum(any(furniture_key(line) == key for line in lines[-EDGE_LINES:]) for lines in pages)
    return max(top, bottom)


@settings(max_examples=200, deadline=None, database=None)
@given(page_sets())
def test_property_only_repeated_edge_lines_and_page_numbers_are_removed(pages: list[list[str]]) -> None:
    stripped = strip_furniture_lines(pages)
    exact_pages = Counter(line for lines in pages for line in set(lines))
    for lines, page in zip(pages, stripped, strict=True):
        assert Counter(page.kept) + Counter(page.removed) == Counter(lines)
        n = len(page.kept)
        assert any(tuple(lines[i : i + n]) == page.kept for i in range(len(lines) - n + 1))  # one unbroken run
        for line in page.removed:
            repeated = len(pages) >= MIN_PAGES and _edge_pages(pages, furniture_key(line)) >= MIN_REPEATS
            assert is_page_number(line) or repeated, line
        for line in lines:
            if exact_pages[line] == 1 and not is_page_number(line) and not has_page_marker(line):
                kept_words = " ".join(page.kept).split()
                assert all(w in kept_words for w in line.split()), line  # a line on one page only survives
    if len(pages) < MIN_PAGES:
        assert all(is_page_number(line) for page in stripped for line in page.removed)


def test_sentence_and_section_lines_are_never_running_lines() -> None:
    pages = manual_pages(6)
    stripped = strip_furniture_lines(pages)
    assert all(page.removed == ("Pump station manual", f"Page {n}") for n, page in enumerate(stripped, 1))
    assert re.fullmatch(r"Section \d: .+", stripped[0].kept[0])
