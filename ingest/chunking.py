"""Chunking with LangChain's text splitters, sized in tokens of the embedding model's tokenizer.

Markdown (and HTML, whose headings the loader turns into ``#`` lines) is split on headings first
with ``MarkdownHeaderTextSplitter``; every section is then split recursively to at most
``chunk_tokens`` tokens with ``overlap_tokens`` overlap. Each chunk's text is an exact slice of the
cleaned document, so ``text == document[start:end]`` and the page and heading path are known.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingest.clean import CleanDocument
from rag.config import ChunkingConfig
from rag.types import Chunk

HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
SPECIAL_TOKENS = 2  # [CLS] and [SEP] count against the model's max_seq_length


@dataclass(frozen=True)
class Piece:
    """A chunk before it gets an id: the text slice and where it lies."""

    text: str
    start: int
    end: int
    heading: str | None


def chunk_id(source: str, text: str, occurrence: int = 0) -> str:
    """Stable id: sha256 of source and content (plus an occurrence number for repeated text)."""
    payload = f"{source}\x00{text}" + (f"\x00{occurrence}" if occurrence else "")
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


class Chunker:
    """Splits cleaned documents into :class:`Piece` s. The tokenizer is any HF tokenizer."""

    def __init__(self, tokenizer: Any, config: ChunkingConfig, *, max_tokens: int | None = None) -> None:
        from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

        self.config = config
        self.chunk_tokens = effective_chunk_tokens(config, max_tokens)
        overlap = min(config.overlap_tokens, self.chunk_tokens // 2)
        self._count = _token_counter(tokenizer)
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.chunk_tokens,
            chunk_overlap=overlap,
            length_function=self._count,
            separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
            keep_separator="end",
        )
        self._headings = MarkdownHeaderTextSplitter(HEADINGS, strip_headers=False)

    def split(self, doc: CleanDocument) -> list[Piece]:
        if not doc.text.strip():
            return []
        sections: list[tuple[str, str | None]]
        if doc.pages:
            sections = [(doc.text[start:end], None) for start, end in _page_spans(doc)]
        elif doc.markdown and self.config.split_markdown_headings:
            sections = [
                (section.page_content, _heading_path(section.metadata))
                for section in self._headings.split_text(doc.text)
            ]
        else:
            sections = [(doc.text, None)]
        pieces: list[Piece] = []
        cursor = 0
        for section_text, heading in sections:
            for part in self._split_section(section_text):
                located = locate(doc.text, part, cursor)
                if located is None:
                    continue
                start, end = located
                pieces.append(Piece(doc.text[start:end], start, end, heading))
                cursor = start + 1
        return pieces

    def _split_section(self, text: str) -> list[str]:
        if self._count(text) <= self.chunk_tokens:
            return [text] if text.strip() else []
        return [t for t in self._splitter.split_text(text) if t.strip()]


def _page_spans(doc: CleanDocument) -> list[tuple[int, int]]:
    """PDF pages are split separately, so every chunk lies on one page."""
    starts = [start for start, _ in doc.pages]
    ends = [s - 2 for s in starts[1:]] + [len(doc.text)]
    return list(zip(starts, ends, strict=True))


def effective_chunk_tokens(config: ChunkingConfig, max_tokens: int | None) -> int:
    """``chunk_tokens``, capped so a chunk plus special tokens fits the model's ``max_seq_length``."""
    size = config.chunk_tokens
    if max_tokens:
        size = min(size, max_tokens - SPECIAL_TOKENS)
    return max(size, 8)


def _token_counter(tokenizer: Any) -> Callable[[str], int]:
    """Token count without special tokens, padding or truncation.

    Uses a private copy of the fast (Rust) tokenizer when there is one: the shared one carries
    whatever padding/truncation state the last ``encode`` call left on it.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        private = Tokenizer.from_str(backend.to_str())
        private.no_padding()
        private.no_truncation()

        def count_fast(text: str) -> int:
            return len(private.encode(text, add_special_tokens=False).ids)

        return count_fast

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False, verbose=False))

    return count


def _heading_path(metadata: dict[str, str]) -> str | None:
    parts = [metadata[key] for _, key in HEADINGS if metadata.get(key)]
    return " > ".join(parts) or None


def locate(text: str, part: str, cursor: int) -> tuple[int, int] | None:
    """Where ``part`` occurs in ``text`` at or after ``cursor``, allowing for changed whitespace."""
    stripped = part.strip()
    if not stripped:
        return None
    index = text.find(stripped, cursor)
    if index < 0:
        index = text.find(stripped)
    if index >= 0:
        return index, index + len(stripped)
    pattern = re.compile(r"\s+".join(re.escape(word) for word in stripped.split()))
    match = pattern.search(text, cursor) or pattern.search(text)
    return (match.start(), match.end()) if match else None


def make_chunks(source: str, doc: CleanDocument, pieces: list[Piece]) -> list[Chunk]:
    """Chunks with stable ids, page numbers (PDF) and the document title."""
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for ordinal, piece in enumerate(pieces):
        occurrence = seen.get(piece.text, 0)
        seen[piece.text] = occurrence + 1
        chunks.append(
            Chunk(
                id=chunk_id(source, piece.text, occurrence),
                source=source,
                text=piece.text,
                ordinal=ordinal,
                start=piece.start,
                end=piece.end,
                page=doc.page_at(piece.start) if doc.pages else None,
                title=doc.title,
                heading=piece.heading,
            )
        )
    return chunks
