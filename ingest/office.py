"""Office Open XML loaders: ``.docx`` (python-docx), ``.pptx`` (python-pptx), ``.xlsx`` (openpyxl).

Every loader returns Markdown, so the heading-aware splitter sees the structure:

* **docx**: one page; paragraphs and tables in document order, ``Title``/``Heading N`` paragraphs as
  ``#`` headings, list paragraphs as ``- `` items, tables as Markdown tables; every distinct header
  and footer text once (headers first, footers last).
* **pptx**: one page per slide; the slide title as a ``#`` heading, then text frames, tables and
  grouped shapes in slide order, then the speaker notes under ``## Speaker notes``.
* **xlsx**: one page per worksheet, read-only with cached formula values (``data_only``); the sheet
  name as a ``#`` heading and its non-empty rows as a Markdown table. A sheet is read up to
  ``MAX_SHEET_CELLS`` cells; the rest is left out with a note.

A file that is not a zip package (an encrypted/password-protected file is an OLE container, as are
the old binary formats), a corrupt package, a zip bomb, one of the wrong content type (e.g.
macro-enabled) or one without text raises :class:`rag.errors.DocumentError` naming the reason.

Zip bombs are refused from the zip's directory, before anything is inflated (:func:`check_zip_bomb`):
the declared sizes of all members, and of the members of zips inside it (an embedded workbook, say,
``MAX_NESTING`` levels deep), must add up to at most ``MAX_UNPACKED_BYTES``; no member over
``RATIO_MIN_BYTES`` may inflate more than ``MAX_RATIO`` times (real Office XML: 5-15x; deflate's
ceiling: ~1,030x); at most ``MAX_MEMBERS`` members. Python's ``zipfile`` never inflates a member past
its declared size (it stops there and fails the CRC), so the declared sizes bound what the parsers see;
the loader process's memory cap (:mod:`ingest.isolate`) is the second line of defence.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from ingest.document import LoadedDocument
from rag.errors import DocumentError

MAX_UNPACKED_BYTES = 1_000_000_000
MAX_RATIO = 200
RATIO_MIN_BYTES = 10_000_000
MAX_MEMBERS = 10_000
MAX_NESTING = 2
MAX_NESTED_READ_BYTES = 100_000_000  # a nested zip larger than this is not opened (its own size still counts)
_ZIP_MAGIC = b"PK\x03\x04"
MAX_SHEET_CELLS = 50_000
MAX_HEADING_LEVEL = 6
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_CONTENT_TYPES = "[Content_Types].xml"
OfficeKind = Literal["docx", "pptx", "xlsx"]
_LABELS: dict[OfficeKind, str] = {"docx": "Word document", "pptx": "PowerPoint presentation", "xlsx": "Excel workbook"}


# --- package checks -------------------------------------------------------------------------------


def check_package(path: Path, data: bytes, kind: OfficeKind) -> None:
    """Refuse what is not a readable Office Open XML zip before a library parses it."""
    label = _LABELS[kind]
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_STREAM in data:
            raise DocumentError(path, f"password-protected {label} (encrypted); save a copy without a password")
        raise DocumentError(path, f"old binary Office format, not a .{kind} package; save it as .{kind}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_zip_bomb(path, archive, packed=len(data))
            types = archive.read(_CONTENT_TYPES) if _CONTENT_TYPES in archive.namelist() else None
    except DocumentError:
        raise
    except Exception as e:  # zipfile raises many kinds on a damaged directory (BadZipFile, struct, Unicode, ...)
        raise DocumentError(path, f"corrupt {label}: not a readable zip package ({e})") from e
    if types is None:
        raise DocumentError(path, f"not a {label}: the zip package has no {_CONTENT_TYPES}")
    if b"macroEnabled.main+xml" in types:
        raise DocumentError(path, f"macro-enabled file, not a plain {label}; save it as a .{kind} without macros")


def check_zip_bomb(path: Path, archive: zipfile.ZipFile, *, packed: int) -> int:
    """The declared unpacked size of ``archive`` with its nested zips; a zip bomb raises :class:`DocumentError`."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise DocumentError(path, f"zip bomb: {len(members):,} members (limit {MAX_MEMBERS:,})")
    total = _unpacked_size(path, archive, members, depth=0)
    if total > MAX_UNPACKED_BYTES:
        raise DocumentError(
            path, f"zip bomb: {_size(total)} uncompressed from {_size(packed)} (limit {_size(MAX_UNPACKED_BYTES)})"
        )
    return total


def _unpacked_size(path: Path, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], *, depth: int) -> int:
    total = 0
    for info in members:
        total += info.file_size
        if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DocumentError(
                path,
                f"zip bomb: {info.filename} inflates {info.file_size / max(info.compress_size, 1):,.0f}x "
                f"({_size(info.file_size)} uncompressed from {_size(info.compress_size)})",
            )
        if total > MAX_UNPACKED_BYTES:
            return total
        total += _nested_size(path, archive, info, depth=depth)
    return total


def _nested_size(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, depth: int) -> int:
    """The declared size of a zip stored inside the package (0 for other members and unreadable zips)."""
    if info.file_size > MAX_NESTED_READ_BYTES or info.file_size < len(_ZIP_MAGIC) or info.filename.endswith("/"):
        return 0
    with archive.open(info) as member:
        if member.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            return 0
    if depth >= MAX_NESTING:
        raise DocumentError(path, f"zip bomb: zips nested more than {MAX_NESTING} deep ({info.filename})")
    try:
        inner = zipfile.ZipFile(io.BytesIO(archive.read(info)))
    except Exception:
        return 0  # a corrupt embedded object: the loaders never unpack it
    with inner:
        members = inner.infolist()
        if len(members) > MAX_MEMBERS:
            raise DocumentError(path, f"zip bomb: {info.filename} has {len(members):,} members")
        return _unpacked_size(path, inner, members, depth=depth + 1)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} bytes"


def _parse_error(path: Path, kind: OfficeKind, e: Exception) -> DocumentError:
    label = _LABELS[kind]
    message = str(e).strip() or type(e).__name__
    if "content type is" in message:
        content_type = message.split("content type is", 1)[1].strip(" '\"")
        return DocumentError(path, f"not a {label} (content type {content_type})")
    return DocumentError(path, f"corrupt {label} ({type(e).__name__}: {message})")


def _require_text(path: Path, kind: OfficeKind, pages: Sequence[str]) -> None:
    if not any(page.strip() for page in pages):
        raise DocumentError(path, f"{_LABELS[kind]} has no text")


# --- Markdown helpers -----------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A table cell as one Markdown-safe line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cell texts as a Markdown table; the first row is the header row."""
    width = max((len(row) for row in rows), default=0)
    if width == 0:
        return ""
    padded = [[*row, *[""] * (width - len(row))] for row in rows]
    lines = [_table_row(padded[0]), _table_row(["---"] * width)]
    lines += [_table_row(row) for row in padded[1:]]
    return "\n".join(lines)


def _table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _blocks(parts: Iterable[str]) -> str:
    return "\n\n".join(part.strip() for part in parts if part.strip())


# --- docx -----------------------------------------------------------------------------------------


def load_docx(path: Path, data: bytes) -> LoadedDocument:
    """Paragraphs and tables in order as Markdown, headers and footers once."""
    check_package(path, data, "docx")
    try:
        from docx import Document

        document = Document(io.BytesIO(data))
        body = [_docx_block(block) for block in document.iter_inner_content()]
        headers, footers = _docx_furniture(document)
        title = (document.core_properties.title or "").strip() or _first_heading(body)
    except Exception as e:
        raise _parse_error(path, "docx", e) from e
    text = _blocks([*headers, *body, *footers])
    _require_text(path, "docx", [text])
    return LoadedDocument("docx", [text], title or None)


def _docx_block(block: Any) -> str:
    from docx.table import Table

    if isinstance(block, Table):
        return _docx_table(block)
    return docx_paragraph(block.text, block.style.name if block.style is not None else "")


def docx_paragraph(text: str, style: str) -> str:
    """A paragraph as Markdown: ``Title``/``Heading N`` become ``#`` headings, ``List ...`` a list item."""
    text = " ".join(text.split())
    if not text:
        return ""
    level = heading_level(style)
    if level:
        return f"{'#' * level} {text}"
    if style.startswith("List"):
        return f"- {text}"
    return text


def heading_level(style: str) -> int:
    if style == "Title":
        return 1
    name, _, number = style.partition(" ")
    if name == "Heading" and number.isdigit():
        return min(max(int(number), 1), MAX_HEADING_LEVEL)
    return 0


def _docx_table(table: Any) -> str:
    rows: list[list[str]] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            cells.append("" if cell._tc is previous else cell_text(cell.text))  # a merged cell once
            previous = cell._tc
        rows.append(cells)
    return markdown_table(rows)


def _docx_furniture(document: Any) -> tuple[list[str], list[str]]:
    """Every distinct header and footer text of every section, each once."""
    headers: list[str] = []
    footers: list[str] = []
    for section in document.sections:
        for name, out in (("header", headers), ("footer", footers)):
            for variant in (f"first_page_{name}", name, f"even_page_{name}"):
                part = getattr(section, variant)
                text = "" if part.is_linked_to_previous else _blocks(_docx_block(b) for b in part.iter_inner_content())
                if text and text not in headers + footers:
                    out.append(text)
    return headers, footers


def _first_heading(blocks: Sequence[str]) -> str | None:
    for block in blocks:
        if block.startswith("#"):
            return block.lstrip("#").strip()
    return None


# --- pptx -----------------------------------------------------------------------------------------


def load_pptx(path: Path, data: bytes) -> LoadedDocument:
    """One page per slide: title, text frames, tables, then the speaker notes."""
    check_package(path, data, "pptx")
    try:
        from pptx import Presentation

        presentation = Presentation(io.BytesIO(data))
        pages = [_slide_text(slide) for slide in presentation.slides]
        title = (presentation.core_properties.title or "").strip() or _first_heading(pages)
    except Exception as e:
        raise _parse_error(path, "pptx", e) from e
    _require_text(path, "pptx", pages)
    return LoadedDocument("pptx", pages, title or None)


def _slide_text(slide: Any) -> str:
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    skip = title_shape.shape_id if title_shape is not None else None
    parts = [f"# {title}" if title else ""]
    parts += [text for shape in slide.shapes if shape.shape_id != skip for text in _shape_texts(shape)]
    notes = _slide_notes(slide)
    if notes:
        parts.append(f"## Speaker notes\n\n{notes}")
    return _blocks(parts)


def _shape_texts(shape: Any) -> Iterator[str]:
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):
        for child in shape.shapes:
            yield from _shape_texts(child)
    elif getattr(shape, "has_table", False):
        yield markdown_table([[cell_text(cell.text) for cell in row.cells] for row in shape.table.rows])
    elif getattr(shape, "has_text_frame", False):
        yield "\n".join(line for p in shape.text_frame.paragraphs if (line := " ".join(p.text.split())))


def _slide_notes(slide: Any) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return frame.text.strip() if frame is not None else ""


# --- xlsx -----------------------------------------------------------------------------------------


def load_xlsx(path: Path, data: bytes) -> LoadedDocument:
    """One page per worksheet: the sheet name as a heading, the rows as a Markdown table."""
    check_package(path, data, "xlsx")
    notes: list[str] = []
    try:
        from openpyxl import load_workbook

        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            pages = [_sheet_text(sheet, notes) for sheet in workbook.worksheets]
            title = (workbook.properties.title or "").strip() or None
        finally:
            workbook.close()
    except Exception as e:
        raise _parse_error(path, "xlsx", e) from e
    _require_text(path, "xlsx", pages)
    return LoadedDocument("xlsx", pages, title, tuple(notes))


def _sheet_text(sheet: Any, notes: list[str]) -> str:
    rows, truncated = sheet_rows(sheet.iter_rows(values_only=True), max_cells=MAX_SHEET_CELLS)
    if truncated:
        notes.append(
            f"sheet {sheet.title!r} has more than {MAX_SHEET_CELLS:,} cells; only its first {len(rows):,} "
            "non-empty rows were read"
        )
    table = markdown_table(rows)
    return f"# {sheet.title}\n\n{table}" if table else ""


def sheet_rows(values: Iterable[Sequence[Any]], *, max_cells: int) -> tuple[list[list[str]], bool]:
    """Non-empty rows as cell texts, trailing empty columns dropped; stops at ``max_cells`` cells read."""
    rows: list[list[str]] = []
    cells = 0
    for row in values:
        cells += len(row)
        if cells > max_cells:
            return _trim_columns(rows), True
        texts = [cell_text(value) for value in row]
        if any(texts):
            rows.append(texts)
    return _trim_columns(rows), False


def _trim_columns(rows: list[list[str]]) -> list[list[str]]:
    width = max((max((i + 1 for i, t in enumerate(row) if t), default=0) for row in rows), default=0)
    return [row[:width] for row in rows]
