"""Chunking with LangChain's text splitters, sized in tokens of the embedding model's tokenizer.

Markdown (and HTML and Office files, whose headings the loaders turn into ``#`` lines) is split on
headings first with ``MarkdownHeaderTextSplitter`` (within each page for slides and sheets); every
section is then split recursively to at most ``chunk_tokens`` tokens with ``overlap_tokens`` overlap
(:class:`rag.config.ChunkingConfig` holds the overlap to at most half a chunk; a model whose window cannot
hold such a chunk is a :class:`~rag.errors.ConfigError`, never a silent change of the settings).
Each chunk's text is an exact slice of the cleaned document, so ``text == document[start:end]`` and
the page and heading path are known.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

from ingest.clean import CleanDocument
from rag.config import MIN_CHUNK_TOKENS, ChunkingConfig
from rag.errors import ConfigError
from rag.types import Chunk

HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]
SPECIAL_TOKENS = 2  # [CLS] and [SEP] count against the model's max_seq_length
# Bump when chunk boundaries change for the same config, so stored chunks are rebuilt on re-ingest.
CHUNKER_VERSION = 3  # 3: cleaning keeps body lines that the old header/footer rule removed


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
        self.overlap = config.overlap_tokens
        self._count = TokenCounter(tokenizer)
        self._splitters: dict[int, RecursiveCharacterTextSplitter] = {}
        self._splitter_class = RecursiveCharacterTextSplitter
        self._headings = MarkdownHeaderTextSplitter(HEADINGS, strip_headers=False)

    def split(self, doc: CleanDocument) -> list[Piece]:
        if not doc.text.strip():
            return []
        headings = doc.markdown and self.config.split_markdown_headings
        sections: list[tuple[str, str | None]]
        if doc.pages:
            pages = [doc.text[start:end] for start, end in _page_spans(doc)]
            sections = [s for page in pages for s in self._sections(page)] if headings else [(p, None) for p in pages]
        elif headings:
            sections = self._sections(doc.text)
        else:
            sections = [(doc.text, None)]
        pieces: list[Piece] = []
        cursor = 0
        for section_text, heading in sections:
            spans: list[tuple[int, int]] = []
            self._count.focus(section_text)
            for part in self._split_section(section_text):
                located = locate(doc.text, part, cursor)
                if located is not None:
                    spans.append(located)
                    cursor = located[0] + 1
            pieces += [Piece(doc.text[a:b], a, b, heading) for a, b in self._merge_small(doc.text, spans)]
        return pieces

    def _sections(self, text: str) -> list[tuple[str, str | None]]:
        """Markdown split on headings: ``(section text, heading path)``."""
        return [(section.page_content, _heading_path(section.metadata)) for section in self._headings.split_text(text)]

    def _merge_small(self, text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Join neighbouring pieces while the joined slice still fits the budget.

        LangChain's recursive splitter leaves a short piece on its own whenever the next one is too
        long (a title before its abstract, the tail of a section); those make poor chunks.
        """
        merged: list[tuple[int, int]] = []
        if len(spans) > 1:
            self._count.focus(text)
        for start, end in spans:
            if merged and end > merged[-1][1] and self._count(text[merged[-1][0] : end]) <= self.chunk_tokens:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged

    def _split_section(self, text: str) -> list[str]:
        """Split into chunks of balanced size: a 300-token section becomes two of ~150 + overlap,
        not one of 254 and a 46-token tail. A balanced piece overlaps the next by at most half its own
        size (the rule the configuration applies to a whole chunk), so every piece moves the text on."""
        tokens = self._count(text)
        if tokens <= self.chunk_tokens:
            return [text] if text.strip() else []
        parts = math.ceil(tokens / (self.chunk_tokens - self.overlap))
        target = min(self.chunk_tokens, math.ceil(tokens / parts) + self.overlap)
        return [t for t in self._splitter(target).split_text(text) if t.strip()]

    def _splitter(self, size: int) -> Any:
        if size not in self._splitters:
            self._splitters[size] = self._splitter_class(
                chunk_size=size,
                chunk_overlap=min(self.overlap, size // 2),
                length_function=self._count,
                separators=SEPARATORS,
                keep_separator="end",
            )
        return self._splitters[size]


def _page_spans(doc: CleanDocument) -> list[tuple[int, int]]:
    """PDF pages are split separately, so every chunk lies on one page."""
    starts = [start for start, _ in doc.pages]
    ends = [s - 2 for s in starts[1:]] + [len(doc.text)]
    return list(zip(starts, ends, strict=True))


def effective_chunk_tokens(config: ChunkingConfig, max_tokens: int | None) -> int:
    """``chunk_tokens``, lowered when needed so a chunk plus special tokens fits the model's ``max_seq_length``
    (``max_tokens``); the manifest records the result as ``effective_chunk_tokens``. A window too small for a
    chunk of ``MIN_CHUNK_TOKENS``, or for ``overlap_tokens`` within half a chunk, raises :class:`ConfigError`."""
    if not max_tokens or config.chunk_tokens <= max_tokens - SPECIAL_TOKENS:
        return config.chunk_tokens
    size = max_tokens - SPECIAL_TOKENS
    if size < MIN_CHUNK_TOKENS:
        raise ConfigError(
            f"the embedding model reads at most {max_tokens} tokens, too few for a chunk of {MIN_CHUNK_TOKENS}; "
            "raise embedding.max_seq_length or choose another embedding.model"
        )
    if config.overlap_tokens > size // 2:
        raise ConfigError(
            f"chunking.overlap_tokens must be at most half a chunk, and the embedding model's {max_tokens}-token "
            f"window holds chunks of {size} tokens: lower chunking.overlap_tokens to {size // 2} or less, "
            f"got {config.overlap_tokens}"
        )
    return size


class TokenCounter:
    """Token counts (no special tokens, no padding, no truncation) for LangChain's ``length_function``.

    The splitter asks for the length of many substrings of one section. After :meth:`focus` the
    section is encoded once, with character offsets, and a substring's count is read off those
    offsets by bisection (exact, since WordPiece tokens never cross the whitespace and punctuation
    the splitter cuts at). Other strings are encoded directly. A private copy of the fast tokenizer
    is used: the shared one carries whatever padding/truncation state its last caller left on it.
    """

    def __init__(self, tokenizer: Any) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._fast: Any = None
        if backend is not None:
            from tokenizers import Tokenizer

            self._fast = Tokenizer.from_str(backend.to_str())
            self._fast.no_padding()
            self._fast.no_truncation()
        self._tokenizer = tokenizer
        self._text = ""
        self._starts: list[int] = []
        self._ends: list[int] = []

    def focus(self, text: str) -> None:
        if self._fast is None or text == self._text:
            return
        offsets = self._fast.encode(text, add_special_tokens=False).offsets
        self._text = text
        self._starts = [a for a, _ in offsets]
        self._ends = [b for _, b in offsets]

    def __call__(self, text: str) -> int:
        at = self._text.find(text) if text and self._text else -1
        if at >= 0:
            return bisect.bisect_right(self._ends, at + len(text)) - bisect.bisect_left(self._starts, at)
        if self._fast is not None:
            return len(self._fast.encode(text, add_special_tokens=False).ids)
        return len(self._tokenizer.encode(text, add_special_tokens=False, verbose=False))


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
    """Chunks with stable ids, page numbers (PDF), the document title and whether OCR read the page."""
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for ordinal, piece in enumerate(pieces):
        occurrence = seen.get(piece.text, 0)
        seen[piece.text] = occurrence + 1
        page = doc.page_at(piece.start) if doc.pages else None
        chunks.append(
            Chunk(
                id=chunk_id(source, piece.text, occurrence),
                source=source,
                text=piece.text,
                ordinal=ordinal,
                start=piece.start,
                end=piece.end,
                page=page,
                title=doc.title,
                heading=piece.heading,
                ocr=page is not None and page in doc.ocr_pages,
            )
        )
    return chunks
