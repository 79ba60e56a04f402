"""Turn a file's bytes into text: one loader per format, chosen from a registry keyed by suffix.

Every loader raises :class:`rag.errors.DocumentError` with a one-line reason when the file cannot be
read (corrupt, truncated or encrypted PDF or Office file, binary content in a text file, no text at
all). The Office loaders (``.docx``, ``.pptx``, ``.xlsx``) live in :mod:`ingest.office`; OCR of PDF
pages without a text layer and of image files (``.png``, ``.jpg``, ``.tiff``) in :mod:`ingest.ocr`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.document import MARKDOWN_KINDS, DocumentKind, LoadedDocument
from rag.errors import DocumentError

if TYPE_CHECKING:
    from ingest.ocr import OcrReader

__all__ = ["MARKDOWN_KINDS", "DocumentKind", "LoadedDocument", "load_document"]
Loader = Callable[[Path, bytes], LoadedDocument]
OcrLoader = Callable[[Path, bytes, "OcrReader | None"], LoadedDocument]


def load_document(path: Path, data: bytes, *, ocr: OcrReader | None = None) -> LoadedDocument:
    """Dispatch on the file suffix (case-insensitive). PDFs and images are read with ``ocr`` (None: no OCR)."""
    suffix = path.suffix.lower()
    if suffix in OCR_LOADERS:
        return OCR_LOADERS[suffix](path, data, ocr)
    loader = LOADERS.get(suffix)
    if loader is None:
        raise DocumentError(path, f"unsupported file type {suffix!r}")
    return loader(path, data)


# --- text -----------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def decode_text(path: Path, data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then charset-normalizer's best guess; binary is refused."""
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentError(path, "binary content in a text file (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = _detect(path, data)
    sample = text[:20000]
    if sample and len(_CONTROL.findall(sample)) > 0.01 * len(sample):
        raise DocumentError(path, "binary content in a text file (control characters)")
    return text


_PREFERRED = ("utf_8", "cp1252", "latin_1", "iso8859_15", "utf_16", "utf_32")


def _detect(path: Path, data: bytes) -> str:
    """charset-normalizer's best match; among equally good ones prefer the common Western encodings."""
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise DocumentError(path, "binary content in a text file (no text encoding fits)")
    ties = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    for name in _PREFERRED:
        for match in ties:
            if match.encoding == name:
                return str(match)
    return str(best)


def load_text(path: Path, data: bytes) -> LoadedDocument:
    return LoadedDocument("text", [decode_text(path, data)], None)


_MD_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def load_markdown(path: Path, data: bytes) -> LoadedDocument:
    text = decode_text(path, data)
    match = _MD_TITLE.search(text)
    return LoadedDocument("markdown", [text], match.group(1) if match else None)


# --- HTML -----------------------------------------------------------------------------------------

_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "head")
_BLOCK_TAGS = ("p", "div", "li", "tr", "br", "section", "article", "pre", "blockquote", "table", "ul", "ol")


def load_html(path: Path, data: bytes) -> LoadedDocument:
    """Visible text with headings turned into Markdown ``#`` lines; scripts and styles dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(path, data), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for level in range(1, 7):
        for tag in soup.find_all(f"h{level}"):
            heading = tag.get_text(" ", strip=True)
            tag.replace_with(f"\n\n{'#' * level} {heading}\n\n" if heading else "")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    text = soup.get_text()
    return LoadedDocument("html", [text], title or None)


# --- PDF ------------------------------------------------------------------------------------------


def load_pdf(path: Path, data: bytes, ocr: OcrReader | None = None) -> LoadedDocument:
    """Text page by page with pypdf; encrypted, truncated and corrupt files are refused. Pages without a
    text layer are read by ``ocr`` (:meth:`ingest.ocr.OcrReader.read_pdf`)."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise DocumentError(path, "not a PDF (no %PDF header)")
    if b"%%EOF" not in data[-2048:]:
        raise DocumentError(path, "truncated PDF (no %%EOF marker at the end)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not _try_empty_password(reader):
            raise DocumentError(path, "encrypted PDF (a password is required)")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = _pdf_title(reader)
    except DocumentError:
        raise
    except (DependencyError, FileNotDecryptedError) as e:
        raise DocumentError(path, f"encrypted PDF cannot be decrypted: {e}") from e
    except PdfReadError as e:
        raise DocumentError(path, f"corrupt PDF: {e}") from e
    except Exception as e:
        raise DocumentError(path, f"corrupt PDF ({type(e).__name__}: {e})") from e
    if not pages:
        raise DocumentError(path, "PDF has no pages")
    ocr_pages: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    if ocr is not None:
        read = ocr.read_pdf(path, data, pages)
        pages, ocr_pages, notes = read.pages, read.ocr_pages, read.notes
    if not any(p.strip() for p in pages):
        from ingest.ocr import no_text_reason  # lazy: numpy/OpenCV load only when OCR is involved

        raise DocumentError(path, no_text_reason(ocr, len(pages)))
    return LoadedDocument("pdf", pages, title, notes, ocr_pages)


def _try_empty_password(reader: object) -> bool:
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:
        return False


def _pdf_title(reader: object) -> str | None:
    try:
        meta = reader.metadata  # type: ignore[attr-defined]
        title = meta.title if meta else None
    except Exception:
        return None
    return str(title).strip() or None if title else None


# --- Office (ingest.office imports this module, so it is imported on first use) -----------------------


def load_docx(path: Path, data: bytes) -> LoadedDocument:
    from ingest.office import load_docx as load  # lazy: the Office libraries load only for Office files

    return load(path, data)


def load_pptx(path: Path, data: bytes) -> LoadedDocument:
    from ingest.office import load_pptx as load  # lazy: the Office libraries load only for Office files

    return load(path, data)


def load_xlsx(path: Path, data: bytes) -> LoadedDocument:
    from ingest.office import load_xlsx as load  # lazy: the Office libraries load only for Office files

    return load(path, data)


def load_image(path: Path, data: bytes, ocr: OcrReader | None = None) -> LoadedDocument:
    """An image file read by OCR, one page per frame (:meth:`ingest.ocr.OcrReader.read_image`)."""
    if ocr is None or ocr.mode == "off":
        raise DocumentError(path, "an image file is read by OCR, and ingest.ocr is off")
    return ocr.read_image(path, data)


OCR_LOADERS: dict[str, OcrLoader] = {
    ".pdf": load_pdf,
    ".png": load_image,
    ".jpg": load_image,
    ".jpeg": load_image,
    ".tif": load_image,
    ".tiff": load_image,
}

LOADERS: dict[str, Loader] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".pptx": load_pptx,
    ".xlsx": load_xlsx,
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
}
