"""Text cleaning: Unicode NFKC, de-hyphenation across line breaks, whitespace repair, and removal of
page furniture (page numbers, running headers and footers) from PDF pages. Empty pages are dropped.

Page furniture: the rule
------------------------
Cleaning must never delete a document's body, so a line leaves a PDF page only when it is one of

* a **page number**: the whole line is a page marker such as ``3``, ``- 3 -``, ``Page 3``,
  ``page 3 of 10``, ``12/40`` or ``iv`` (:func:`is_page_number`); or
* a **verified running header or footer** (:func:`find_running_lines`): the document has at least
  ``MIN_PAGES`` (4) pages; the line is *short* (at most ``MAX_WORDS`` words and ``MAX_CHARS``
  characters) and not a sentence (``SENTENCE_WORDS`` or more words ending in ``.``, ``!`` or ``?``,
  unless it is a copyright notice); and the same line stands among the first ``EDGE_LINES`` lines
  (a header) or among the last ``EDGE_LINES`` lines (a footer) of at least half the pages, and of
  no fewer than ``MIN_REPEATS`` pages. Top and bottom are counted separately.

Lines are compared exactly, up to case and runs of whitespace (:func:`furniture_key`). Digits are
normalised only inside the page marker of a short line (``Confidential - page 3 of 12``,
``Annual report | 7``, ``Internal use only Page 2 of 4``), never elsewhere, so ``Section 3: ...``
and ``Section 4: ...`` stay different lines and a short ``Step 3`` title is not a running header.

Furniture is taken from the edges inwards only: the top of a page loses lines while they are
furniture, and so does the bottom, so text between two furniture lines is never touched and a page
is emptied only when every one of its lines is furniture. If that would leave the whole document
without text, running headers and footers are kept (only page numbers go). Documents of 1-3 pages
keep all their repeated lines: they have too few pages to tell a running header from a body line
that happens to repeat.

:func:`clean_document` composes these pure functions, keeps the page of every offset and counts the
characters that cleaning removed (non-whitespace characters, after Unicode normalisation).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.document import LoadedDocument

EDGE_LINES = 3
MIN_PAGES = 4
MIN_REPEATS = 3
MIN_SHARE = 0.5
MAX_WORDS = 10
MAX_CHARS = 80
SENTENCE_WORDS = 4
PAGED_KINDS = ("pdf", "pptx", "xlsx", "image")
SCANNED_KINDS = ("pdf", "image")  # kinds whose pages can carry running headers and footers

_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])-[ \t]*\n[ \t]*(?=[a-z])")
_SPACES = re.compile(r"[ \t\f\v\u200b]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_WHITESPACE = re.compile(r"\s+")
_PAGE_NUMBER = re.compile(
    r"^[\s\-–—|]*(page|p\.|seite|pg\.?)?\s*(\d+|[ivx]{1,6})(\s*(of|/|von)\s*\d+)?[\s\-–—|]*$", re.IGNORECASE
)
_PAGE_MARKS = (
    re.compile(r"\b(?:page|pg\.?|p\.|seite)\s*\d+(?:\s*(?:of|/|von)\s*\d+)?", re.IGNORECASE),
    re.compile(r"\b\d+\s*(?:of|/|von)\s*\d+\s*$", re.IGNORECASE),
    re.compile(r"^\s*\d+\s*(?:of|/|von)\s*\d+\b", re.IGNORECASE),
    re.compile(r"(?:^|\s)[|·•–—-]\s*\d+\s*$"),
    re.compile(r"^\s*\d+\s*[|·•–—-](?=\s|$)"),
)
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*$")
_BOILERPLATE = re.compile(r"©|\(c\)|copyright|all rights reserved", re.IGNORECASE)


@dataclass(frozen=True)
class CleanDocument:
    """The cleaned text; ``pages`` lists ``(start offset, page number)`` for paged formats (PDF,
    slides, sheets), empty otherwise. ``chars_loaded``/``chars_removed`` count non-whitespace
    characters before cleaning and how many of them cleaning took away; ``notes`` come from the loader;
    ``ocr_pages`` are the page numbers whose text was read by OCR."""

    text: str
    pages: tuple[tuple[int, int], ...] = ()
    title: str | None = None
    markdown: bool = False
    chars_loaded: int = 0
    chars_removed: int = 0
    notes: tuple[str, ...] = ()
    ocr_pages: tuple[int, ...] = ()

    def page_at(self, offset: int) -> int | None:
        page = None
        for start, number in self.pages:
            if start > offset:
                break
            page = number
        return page

    @property
    def removed_share(self) -> float:
        return self.chars_removed / self.chars_loaded if self.chars_loaded else 0.0


@dataclass(frozen=True)
class StrippedPage:
    """One page's lines after furniture removal, and the lines removed from it (in page order)."""

    kept: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class RunningLines:
    """Keys (:func:`furniture_key`) of verified running headers (top edge) and footers (bottom edge)."""

    headers: frozenset[str] = frozenset()
    footers: frozenset[str] = frozenset()


def normalize_unicode(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00ad", "")
    return unicodedata.normalize("NFKC", text)


def dehyphenate(text: str) -> str:
    """``infor-\\nmation`` becomes ``information`` (only when a lowercase letter follows the break)."""
    return _HYPHEN_BREAK.sub("", text)


def repair_whitespace(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_text(text: str) -> str:
    return repair_whitespace(dehyphenate(normalize_unicode(text)))


def visible_chars(text: str) -> int:
    """Characters that are not whitespace: what the cleaning report counts."""
    return len(_WHITESPACE.sub("", text))


def is_page_number(line: str) -> bool:
    return bool(_PAGE_NUMBER.match(line)) and bool(line.strip())


def is_short(line: str) -> bool:
    return len(line.split()) <= MAX_WORDS and len(line.strip()) <= MAX_CHARS


def has_page_marker(line: str) -> bool:
    """A short line that carries a page number (``... page 3 of 12``, ``... | 7``): its digits are normalised."""
    return is_short(line) and any(mark.search(line) for mark in _PAGE_MARKS)


def is_sentence(line: str) -> bool:
    """Body text: four or more words ending in sentence punctuation (copyright notices excepted)."""
    words = line.split()
    return len(words) >= SENTENCE_WORDS and bool(_SENTENCE_END.search(line)) and not _BOILERPLATE.search(line)


def furniture_key(line: str) -> str:
    """Case- and whitespace-folded line; the page marker of a short line becomes ``#``."""
    key = " ".join(line.lower().split())
    if is_short(key):
        for mark in _PAGE_MARKS:
            key = mark.sub(" #", key)
    return " ".join(key.split())


def may_be_running(line: str) -> bool:
    """Shaped like a running header/footer: short, not a sentence, not blank."""
    return bool(line.strip()) and is_short(line) and not is_sentence(line)


def find_running_lines(pages: Sequence[Sequence[str]]) -> RunningLines:
    """Verified headers and footers: short lines at the same edge of most pages (see the module docstring)."""
    if len(pages) < MIN_PAGES:
        return RunningLines()
    needed = max(MIN_REPEATS, math.ceil(MIN_SHARE * len(pages)))
    return RunningLines(
        headers=_repeated(pages, needed, top=True),
        footers=_repeated(pages, needed, top=False),
    )


def _repeated(pages: Sequence[Sequence[str]], needed: int, *, top: bool) -> frozenset[str]:
    counts: Counter[str] = Counter()
    for lines in pages:
        edge = lines[:EDGE_LINES] if top else lines[-EDGE_LINES:]
        counts.update({furniture_key(line) for line in edge if may_be_running(line)})
    return frozenset(key for key, n in counts.items() if n >= needed and key)


def strip_furniture_lines(pages: Sequence[Sequence[str]]) -> list[StrippedPage]:
    """Page numbers and verified running headers/footers removed from the edges of each page.

    ``pages`` hold non-blank lines. Falls back to removing page numbers only when removing the
    running lines too would leave no text in the whole document.
    """
    running = find_running_lines(pages)
    stripped = [_strip_edges(lines, running) for lines in pages]
    if running != RunningLines() and not any(page.kept for page in stripped):
        stripped = [_strip_edges(lines, RunningLines()) for lines in pages]
    return stripped


def strip_page_furniture(pages: list[str]) -> list[str]:
    """Page texts without page numbers and running headers/footers (blank lines dropped)."""
    split = [[line for line in page.split("\n") if line.strip()] for page in pages]
    return ["\n".join(page.kept) for page in strip_furniture_lines(split)]


def _strip_edges(lines: Sequence[str], running: RunningLines) -> StrippedPage:
    def header(line: str) -> bool:
        return is_page_number(line) or (may_be_running(line) and furniture_key(line) in running.headers)

    def footer(line: str) -> bool:
        return is_page_number(line) or (may_be_running(line) and furniture_key(line) in running.footers)

    start, end = 0, len(lines)
    while start < min(end, EDGE_LINES) and header(lines[start]):
        start += 1
    while end > max(start, len(lines) - EDGE_LINES) and footer(lines[end - 1]):
        end -= 1
    return StrippedPage(tuple(lines[start:end]), (*lines[:start], *lines[end:]))


def clean_document(doc: LoadedDocument) -> CleanDocument:
    """Clean every page, drop empty ones and join them with blank lines, remembering page starts.

    Furniture is removed from PDF pages and image frames only; slides and sheets keep every line.
    """
    normalized = [normalize_unicode(page) for page in doc.pages]
    loaded = sum(visible_chars(page) for page in normalized)
    if doc.kind not in PAGED_KINDS:
        text = repair_whitespace(dehyphenate("\n\n".join(normalized)))
        removed = max(0, loaded - visible_chars(text))
        return CleanDocument(text, (), doc.title, doc.markdown, loaded, removed, doc.notes)
    if doc.kind in SCANNED_KINDS:
        normalized = strip_page_furniture(normalized)
    text, starts = _join_pages(normalized)
    removed = max(0, loaded - visible_chars(text))
    return CleanDocument(text, starts, doc.title, doc.markdown, loaded, removed, doc.notes, doc.ocr_pages)


def _join_pages(pages: list[str]) -> tuple[str, tuple[tuple[int, int], ...]]:
    parts: list[str] = []
    starts: list[tuple[int, int]] = []
    offset = 0
    for number, page in enumerate(pages, start=1):
        text = repair_whitespace(dehyphenate(page))
        if not text:
            continue
        if parts:
            offset += 2
        starts.append((offset, number))
        parts.append(text)
        offset += len(text)
    return "\n\n".join(parts), tuple(starts)
