"""Find the documents to ingest: a folder walk, a single file, or the lines of a BEIR ``corpus.jsonl``.

The walk is recursive, skips hidden files and folders, Office lock files (``~$name.docx``) and the
index directory itself, follows directory symlinks but never into a loop, and yields files in sorted
order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import DocumentError, EvalDataError, IngestError
from rag.jsonl import read_jsonl

# Hidden files, and the owner files Office writes beside a document while it is open (``~$report.docx``).
SKIPPED_PREFIXES = (".", "~$")


@dataclass(frozen=True)
class SourceFile:
    """A file found by the walk. ``source`` is its POSIX path relative to the ingested folder."""

    source: str
    path: Path


@dataclass(frozen=True)
class BeirDocument:
    """One line of a BEIR corpus: ``source`` is the document id."""

    source: str
    title: str
    text: str

    @property
    def content_hash(self) -> str:
        return sha256_text(self.title + "\n\n" + self.text)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def is_beir_corpus(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".jsonl"


def discover(root: Path, *, extensions: tuple[str, ...], exclude: Path | None = None) -> list[SourceFile]:
    """Files under ``root`` (or ``root`` itself) whose suffix is in ``extensions``, sorted by source."""
    if not root.exists():
        raise IngestError(f"{root}: no such file or folder")
    wanted = {e.lower() for e in extensions}
    if root.is_file():
        if root.suffix.lower() not in wanted:
            raise IngestError(f"{root}: unsupported file type {root.suffix!r} (supported: {', '.join(extensions)})")
        return [SourceFile(root.name, root)]
    excluded = _real(exclude) if exclude is not None else None
    found = [
        SourceFile(path.relative_to(root).as_posix(), path)
        for path in _walk(root, excluded)
        if path.suffix.lower() in wanted
    ]
    return sorted(found, key=lambda f: f.source)


def _real(path: Path) -> str:
    return os.path.realpath(path)


def _walk(root: Path, excluded: str | None) -> Iterator[Path]:
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        key = (st.st_dev, st.st_ino)
        if key in seen or (excluded is not None and _real(Path(dirpath)) == excluded):
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(SKIPPED_PREFIXES):
                yield Path(dirpath) / name


def read_bytes(path: Path, *, max_bytes: int) -> bytes:
    """The file's bytes, or a :class:`DocumentError` that says why they cannot be read."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError as e:
        reason = "broken symbolic link" if os.path.islink(path) else "vanished during ingest (file not found)"
        raise DocumentError(path, reason) from e
    except PermissionError as e:
        raise DocumentError(path, "permission denied (file is not readable)") from e
    except IsADirectoryError as e:
        raise DocumentError(path, "is a directory, not a file") from e
    except OSError as e:
        raise DocumentError(path, f"cannot be read: {e.strerror or e}") from e
    if len(data) > max_bytes:
        raise DocumentError(path, f"larger than ingest.max_file_mb ({max_bytes / 1e6:.0f} MB)")
    if not data:
        raise DocumentError(path, "empty file (0 bytes)")
    return data


def read_beir_corpus(path: Path) -> tuple[list[BeirDocument], list[tuple[str, str]]]:
    """Documents of a BEIR ``corpus.jsonl`` and the lines that could not be parsed (``path:line``, reason)."""
    docs: list[BeirDocument] = []
    failed: list[tuple[str, str]] = []
    seen: set[str] = set()

    def fail(number: int, reason: str) -> None:
        failed.append((f"{path}:{number}", reason))

    try:
        for number, row in read_jsonl(path, on_error=fail):
            try:
                doc = beir_document(row)
            except ValueError as e:
                fail(number, str(e))
                continue
            if doc.source in seen:
                fail(number, f"duplicate _id {doc.source!r}")
                continue
            seen.add(doc.source)
            docs.append(doc)
    except EvalDataError as e:  # the file itself cannot be read
        raise IngestError(str(e)) from e
    return docs, failed


def beir_document(row: dict[str, Any]) -> BeirDocument:
    """One parsed line of a BEIR corpus; a ``ValueError`` says why it is not a usable document."""
    if not isinstance(row.get("_id"), str | int):
        raise ValueError("not a BEIR document (needs an _id)")
    title = row.get("title") or ""
    text = row.get("text") or ""
    if not isinstance(title, str) or not isinstance(text, str):
        raise ValueError("title and text must be strings")
    if not (title.strip() or text.strip()):
        raise ValueError("empty document (no title, no text)")
    return BeirDocument(str(row["_id"]), title, text)
