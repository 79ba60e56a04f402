"""What a loader returns: a document's raw text per page, its kind and title, and notes on what was left out.

Its own module so that the loaders (:mod:`ingest.loaders`, :mod:`ingest.office`, :mod:`ingest.ocr`) and
cleaning (:mod:`ingest.clean`) share it without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DocumentKind = Literal["pdf", "text", "markdown", "html", "docx", "pptx", "xlsx", "image"]
MARKDOWN_KINDS: tuple[DocumentKind, ...] = ("markdown", "html", "docx", "pptx", "xlsx")


@dataclass(frozen=True)
class LoadedDocument:
    """Raw text per page (one page for a PDF page, a slide or a sheet; one page for other files);
    ``markdown`` means headings are ``#`` lines. ``notes`` say what the loader left out and why;
    ``ocr_pages`` are the 1-based numbers of the pages whose text was read by OCR."""

    kind: DocumentKind
    pages: list[str]
    title: str | None = None
    notes: tuple[str, ...] = ()
    ocr_pages: tuple[int, ...] = ()

    @property
    def markdown(self) -> bool:
        return self.kind in MARKDOWN_KINDS
