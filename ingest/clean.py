"""Text cleaning: Unicode NFKC, de-hyphenation across line breaks, whitespace repair, and removal of
running headers, footers and page numbers that repeat across PDF pages. Empty pages are dropped.

All functions are pure; :func:`clean_document` composes them and keeps the page of every offset.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from ingest.loaders import LoadedDocument

EDGE_LINES = 3
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])-[ \t]*\n[ \t]*(?=[a-z])")
_SPACES = re.compile(r"[ \t\f\v\u200b]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(
    r"^[\s\-–—|]*(page|p\.|seite|pg\.?)?\s*(\d+|[ivx]{1,6})(\s*(of|/|von)\s*\d+)?[\s\-–—|]*$", re.IGNORECASE
)


@dataclass(frozen=True)
class CleanDocument:
    """The cleaned text; ``pages`` lists ``(start offset, page number)`` for PDFs, empty otherwise."""

    text: str
    pages: tuple[tuple[int, int], ...] = ()
    title: str | None = None
    markdown: bool = False

    def page_at(self, offset: int) -> int | None:
        page = None
        for start, number in self.pages:
            if start > offset:
                break
            page = number
        return page


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


def _edge_key(line: str) -> str:
    return _DIGITS.sub("#", " ".join(line.lower().split()))


def is_page_number(line: str) -> bool:
    return bool(_PAGE_NUMBER.match(line)) and bool(line.strip())


def repeated_edge_lines(pages: list[list[str]], *, min_share: float = 0.5) -> set[str]:
    """Keys of lines near the top or bottom of a page that recur on at least ``min_share`` of pages."""
    if len(pages) < 2:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({_edge_key(line) for line in lines[:EDGE_LINES] + lines[-EDGE_LINES:]})
    needed = max(2, math.ceil(min_share * len(pages)))
    return {key for key, n in counts.items() if n >= needed and key}


def strip_page_furniture(pages: list[str]) -> list[str]:
    """Remove repeated headers/footers and page-number lines from the edges of each page."""
    split = [[line for line in page.split("\n") if line.strip()] for page in pages]
    repeated = repeated_edge_lines(split)
    return ["\n".join(_strip_edges(lines, repeated)) for lines in split]


def _strip_edges(lines: list[str], repeated: set[str]) -> list[str]:
    def furniture(line: str) -> bool:
        return _edge_key(line) in repeated or is_page_number(line)

    start, end = 0, len(lines)
    while start < min(end, EDGE_LINES) and furniture(lines[start]):
        start += 1
    while end > max(start, len(lines) - EDGE_LINES) and furniture(lines[end - 1]):
        end -= 1
    return lines[start:end]


def clean_document(doc: LoadedDocument) -> CleanDocument:
    """Clean every page, drop empty ones and join them with blank lines, remembering page starts."""
    if doc.kind != "pdf":
        return CleanDocument(clean_text(doc.pages[0]), (), doc.title, doc.markdown)
    normalized = [normalize_unicode(page) for page in doc.pages]
    stripped = strip_page_furniture(normalized)
    parts: list[str] = []
    starts: list[tuple[int, int]] = []
    offset = 0
    for number, page in enumerate(stripped, start=1):
        text = repair_whitespace(dehyphenate(page))
        if not text:
            continue
        if parts:
            offset += 2
        starts.append((offset, number))
        parts.append(text)
        offset += len(text)
    return CleanDocument("\n\n".join(parts), tuple(starts), doc.title, False)
