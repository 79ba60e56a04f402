"""``ingest``: a folder, a single file or a BEIR ``corpus.jsonl`` becomes (or refreshes) an index.

Stages: discover → read + load + clean → chunk → embed (new or changed documents only) → BM25 →
FAISS → write a new generation → publish. Unchanged documents (same content hash, same chunking
and embedding model) keep their stored chunks and embeddings; a chunk of a new or changed document
whose text is already stored (a renamed file, the untouched part of an edited one) reuses its
vector. The stored index is only replaced at the very end, under the index lock; ``strict`` aborts
before anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ingest import store
from ingest.bm25 import build_matrix
from ingest.chunking import CHUNKER_VERSION, Chunker, effective_chunk_tokens, make_chunks
from ingest.clean import CleanDocument, clean_text, normalize_unicode, visible_chars
from ingest.dense import build_faiss
from ingest.isolate import FileLoader
from ingest.loaders import OCR_LOADERS
from ingest.lock import index_lock
from ingest.manifest import build_manifest, chunking_params
from ingest.ocr import ocr_settings
from ingest.report import IngestReport, nothing_message, strict_message
from ingest.sources import (
    BeirDocument,
    SourceFile,
    discover,
    is_beir_corpus,
    read_beir_corpus,
    read_bytes,
    sha256_bytes,
)
from rag.config import PipelineConfig, to_dict
from rag.errors import ConfigError, DocumentError, IndexNotFoundError, IndexVersionError, IngestError
from rag.store import FORMAT_VERSION, Index, open_index
from rag.store.bm25 import BM25Tokenizer
from rag.types import Chunk

__all__ = ["IngestReport", "ingest", "load_models"]

Status = Literal["added", "updated", "unchanged"]
CLEANING_NOTE_SHARE = 0.2  # a note when cleaning removes more than this share of a document's characters


@dataclass
class Prepared:
    """A document ready to store: new chunks to embed, or rows reused from the previous index."""

    source: str
    sha256: str
    size: int
    status: Status
    chunks: list[Chunk]
    reuse_rows: list[int] | None = None
    chars_loaded: int | None = None
    chars_removed: int | None = None
    notes: tuple[str, ...] = ()
    ocr: dict[str, Any] | None = None  # the OCR settings a PDF or image file was read with (manifest)

    @property
    def cleaning(self) -> dict[str, int] | None:
        if self.chars_loaded is None or self.chars_removed is None:
            return None
        return {"chars_loaded": self.chars_loaded, "chars_removed": self.chars_removed}


@dataclass
class Previous:
    index: Index
    reusable: bool
    rows: dict[str, list[int]]

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.index.manifest["files"]


class _Timer:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start


class _Models:
    """The embedding model and chunker, loaded on first use (not at all when nothing changed)."""

    def __init__(self, config: PipelineConfig, *, progress: bool) -> None:
        self.config = config
        self.progress = progress

    @cached_property
    def embedder(self) -> Any:
        from rag.models import load_embedder

        if not self.progress:
            _quiet_model_loading()

        model = load_embedder(self.config.embedding.model, self.config.embedding.device)
        if self.config.embedding.max_seq_length:
            model.max_seq_length = self.config.embedding.max_seq_length
        return model

    @cached_property
    def chunker(self) -> Chunker:
        return Chunker(self.embedder.tokenizer, self.config.chunking, max_tokens=self.embedder.max_seq_length)

    @property
    def effective_tokens(self) -> int:
        return effective_chunk_tokens(self.config.chunking, self.embedder.max_seq_length)


def load_models(config: PipelineConfig, *, progress: bool = False) -> None:
    """Load the embedding model now rather than at the first changed document; it stays loaded for
    the process (``rag.models.load_embedder`` is cached), so every later :func:`ingest` reuses it."""
    _Models(config, progress=progress).embedder  # noqa: B018 - loading is the point


def _quiet_model_loading() -> None:
    """No "Loading weights" bars from transformers when progress output is off (CI, pipes)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()


def ingest(
    path: str | Path,
    *,
    index_dir: str | Path,
    config: PipelineConfig,
    strict: bool = False,
    progress: bool = False,
) -> IngestReport:
    """Ingest ``path`` into the index at ``index_dir``; see the module docstring."""
    started = time.perf_counter()
    root, index_root = Path(path), Path(index_dir)
    report = IngestReport(index_dir=str(index_root))
    timer = _Timer(report.timings)
    with timer("discover"):
        items, failed = _discover(root, index_root, config)
    report.failed.extend(failed)
    models = _Models(config, progress=progress)
    with index_lock(index_root):
        previous = _load_previous(index_root, config, report)
        prepared = _prepare_all(items, previous, models, report, timer, progress=progress)
        if report.failed and strict:
            raise IngestError(strict_message(report))
        kept = {p.source for p in prepared}
        report.removed = len(set(previous.files) - kept) if previous else 0
        report.chunks_total = sum(len(p.chunks) for p in prepared)
        if not prepared:
            raise IngestError(nothing_message(root, report, config))
        if previous is not None and _nothing_changed(prepared, previous, config):
            report.notes.append("index is up to date; nothing written")
        else:
            _build_and_write(root, index_root, prepared, previous, models, config, report, timer, progress)
            report.written = True
    report.seconds = time.perf_counter() - started
    return report


def _discover(root: Path, index_root: Path, config: PipelineConfig) -> tuple[list[Any], list[tuple[str, str]]]:
    if is_beir_corpus(root):
        docs, failed = read_beir_corpus(root)
        return docs, failed
    return discover(root, extensions=config.ingest.extensions, exclude=index_root), []


def _load_previous(index_root: Path, config: PipelineConfig, report: IngestReport) -> Previous | None:
    try:
        index = open_index(index_root)
    except IndexNotFoundError:
        return None
    except IndexVersionError as e:
        report.notes.append(f"previous index not reusable, rebuilding: {e}")
        return None
    old = index.manifest["chunking"].get("reuse_key")
    reusable = old == _reuse_key(config)
    if not reusable:
        report.notes.append("chunking or embedding settings changed: every document is re-embedded")
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(index.chunks):
        rows.setdefault(chunk.source, []).append(row)
    return Previous(index, reusable, rows)


def _reuse_key(config: PipelineConfig) -> dict[str, Any]:
    return {
        "chunking": to_dict(config.chunking),
        "model": config.embedding.model,
        "max_seq_length": config.embedding.max_seq_length,
        "format_version": FORMAT_VERSION,
        "chunker_version": CHUNKER_VERSION,
    }


def _prepare_all(
    items: list[Any],
    previous: Previous | None,
    models: _Models,
    report: IngestReport,
    timer: _Timer,
    *,
    progress: bool,
) -> list[Prepared]:
    prepared: list[Prepared] = []
    max_bytes = int(models.config.ingest.max_file_mb * 1e6)
    with FileLoader(models.config.ingest, progress=progress) as loader:
        for item in _progress(items, progress, "files"):
            result: Prepared | None
            try:
                result = _prepare(item, previous, models, timer, loader, max_bytes=max_bytes)
            except DocumentError as e:
                report.failed.append((e.path, e.reason))
                result = _keep_stored(item, previous, report)
            except (ConfigError, IngestError):
                raise  # the loader process cannot start: no file could be read
            except Exception as e:
                where = str(item.path) if isinstance(item, SourceFile) else item.source
                report.failed.append((where, f"unexpected {type(e).__name__}: {e}"))
                result = _keep_stored(item, previous, report)
            if isinstance(item, SourceFile) and str(item.path) in loader.stats:
                report.loading[item.source] = loader.stats[str(item.path)].to_dict()
            if result is None:
                continue
            prepared.append(result)
            setattr(report, result.status, getattr(report, result.status) + 1)
            report.notes.extend(f"{result.source}: {note}" for note in result.notes)
            _report_cleaning(result, report)
    return prepared


def _keep_stored(item: Any, previous: Previous | None, report: IngestReport) -> Prepared | None:
    """A file that fails now but is still there keeps the version stored before (nothing stored is lost)."""
    if not isinstance(item, SourceFile) or previous is None or not item.path.exists():
        return None
    old = previous.files.get(item.source)
    if old is None:
        return None
    if not previous.reusable:
        report.notes.append(f"{item.source}: could not be read and the settings changed; its stored version is dropped")
        return None
    rows = previous.rows.get(item.source, [])
    report.notes.append(f"{item.source}: could not be read; the version stored before is kept")
    return Prepared(
        item.source,
        old["sha256"],
        old["bytes"],
        "unchanged",
        [previous.index.chunks[r] for r in rows],
        rows,
        old.get("chars_loaded"),
        old.get("chars_removed"),
        ocr=old.get("ocr"),
    )


def _report_cleaning(result: Prepared, report: IngestReport) -> None:
    """Per-document cleaning counts for ``--json``; a note when cleaning took more than ``CLEANING_NOTE_SHARE``."""
    cleaning = result.cleaning
    if cleaning is None:
        return
    report.cleaning[result.source] = cleaning
    loaded, removed = cleaning["chars_loaded"], cleaning["chars_removed"]
    if result.reuse_rows is None and loaded and removed > CLEANING_NOTE_SHARE * loaded:
        report.notes.append(
            f"{result.source}: cleaning removed {removed / loaded:.0%} of its characters ({removed:,} of {loaded:,}: "
            "page numbers, running headers and footers)"
        )


def _prepare(
    item: Any, previous: Previous | None, models: _Models, timer: _Timer, loader: FileLoader, *, max_bytes: int
) -> Prepared:
    with timer("load"):
        if isinstance(item, BeirDocument):
            sha, size, data = item.content_hash, len(item.text), None
        else:
            data = read_bytes(item.path, max_bytes=max_bytes)
            sha, size = sha256_bytes(data), len(data)
    old = previous.files.get(item.source) if previous else None
    ocr = _ocr_key(item, models.config)
    same = old is not None and old["sha256"] == sha and old.get("ocr") == ocr
    if previous is not None and old is not None and previous.reusable and same:
        rows = previous.rows.get(item.source, [])
        chunks = [previous.index.chunks[r] for r in rows]
        loaded, removed = old.get("chars_loaded"), old.get("chars_removed")
        return Prepared(item.source, sha, size, "unchanged", chunks, rows, loaded, removed, ocr=ocr)
    with timer("load"):
        doc = _clean(item, data, loader)
    with timer("model"):
        chunker = models.chunker
    with timer("chunk"):
        chunks = make_chunks(item.source, doc, chunker.split(doc))
    if not chunks:
        raise DocumentError(getattr(item, "path", item.source), "no text left after cleaning")
    status: Status = "updated" if old is not None else "added"
    return Prepared(
        item.source, sha, size, status, chunks, None, doc.chars_loaded, doc.chars_removed, doc.notes, ocr=ocr
    )


def _ocr_key(item: Any, config: PipelineConfig) -> dict[str, Any] | None:
    """The OCR settings that shape a PDF's or image's text (None for other files): a file stored with other
    settings is read again, so changing ``ingest.ocr`` or ``ingest.ocr_dpi`` re-reads only those files."""
    if not isinstance(item, SourceFile) or item.path.suffix.lower() not in OCR_LOADERS:
        return None
    return ocr_settings(config.ingest)


def _clean(item: Any, data: bytes | None, loader: FileLoader) -> CleanDocument:
    if isinstance(item, BeirDocument):
        text = f"{item.title}\n\n{item.text}" if item.title.strip() else item.text
        cleaned = clean_text(text)
        loaded = visible_chars(normalize_unicode(text))
        return CleanDocument(cleaned, (), item.title or None, False, loaded, max(0, loaded - visible_chars(cleaned)))
    doc = loader.load(item.path, data or b"")  # parsed and cleaned in the worker process (ingest/isolate.py)
    if not doc.text.strip():
        raise DocumentError(item.path, "no text left after cleaning")
    return doc if doc.title else replace(doc, title=Path(item.source).stem)


def _nothing_changed(prepared: list[Prepared], previous: Previous, config: PipelineConfig) -> bool:
    manifest = previous.index.manifest
    return (
        all(p.status == "unchanged" for p in prepared)
        and {p.source for p in prepared} == set(previous.files)
        and manifest["dense_index"] == to_dict(config.dense_index)
        and manifest["bm25"].get("config") == to_dict(config.bm25)
    )


def _build_and_write(
    root: Path,
    index_root: Path,
    prepared: list[Prepared],
    previous: Previous | None,
    models: _Models,
    config: PipelineConfig,
    report: IngestReport,
    timer: _Timer,
    progress: bool,
) -> None:
    chunks = [c for p in prepared for c in p.chunks]
    with timer("embed"):
        embeddings, report.chunks_embedded = _embeddings(prepared, previous, models, config, progress)
    dimension = embeddings.shape[1]
    with timer("bm25"):
        tokenizer = BM25Tokenizer.from_config(config.bm25)
        matrix = build_matrix(tokenizer.tokenize_many(c.text for c in chunks), k1=config.bm25.k1, b=config.bm25.b)
    with timer("dense"):
        faiss_index = build_faiss(embeddings, config.dense_index)
    manifest = _manifest(root, prepared, previous, models, config, tokenizer, dimension, len(matrix.vocab), len(chunks))
    with timer("write"):
        staged = store.stage_generation(
            index_root,
            manifest=manifest,
            chunks=chunks,
            embeddings=embeddings,
            faiss_index=faiss_index,
            bm25=matrix,
        )
        store.publish(index_root, staged)


def _embeddings(
    prepared: list[Prepared], previous: Previous | None, models: _Models, config: PipelineConfig, progress: bool
) -> tuple[np.ndarray, int]:
    """All rows' vectors: stored ones for unchanged documents and for chunk texts already stored (the
    vector depends on the text alone), freshly embedded ones for the rest."""
    from ingest.embed import embed_texts

    stored_by_text = _stored_rows_by_text(previous)
    new_rows: list[int] = []
    new_texts: list[str] = []
    old_rows: list[int] = []
    stored_rows: list[int] = []
    row = 0
    for p in prepared:
        if p.reuse_rows is not None:
            old_rows.extend(range(row, row + len(p.chunks)))
            stored_rows.extend(p.reuse_rows)
        else:
            for offset, chunk in enumerate(p.chunks):
                stored = stored_by_text.get(chunk.text)
                if stored is None:
                    new_rows.append(row + offset)
                    new_texts.append(chunk.text)
                else:
                    old_rows.append(row + offset)
                    stored_rows.append(stored)
        row += len(p.chunks)
    if new_rows:
        new = embed_texts(models.embedder, new_texts, batch_size=config.embedding.batch_size, progress=progress)
        dimension = new.shape[1]
    else:
        assert previous is not None, "every row is reused, so there is a previous index"
        dimension = previous.index.dimension
    embeddings = np.zeros((row, dimension), dtype=np.float32)
    if new_rows:
        embeddings[new_rows] = new
    if old_rows and previous is not None:
        embeddings[old_rows] = previous.index.embeddings[stored_rows]
    return embeddings, len(new_rows)


def _stored_rows_by_text(previous: Previous | None) -> dict[str, int]:
    """The first stored row of each chunk text, when the stored vectors were made the way new ones would be."""
    if previous is None or not previous.reusable:
        return {}
    rows: dict[str, int] = {}
    for row, chunk in enumerate(previous.index.chunks):
        rows.setdefault(chunk.text, row)
    return rows


def _manifest(
    root: Path,
    prepared: list[Prepared],
    previous: Previous | None,
    models: _Models,
    config: PipelineConfig,
    tokenizer: BM25Tokenizer,
    dimension: int,
    vocabulary: int,
    n_chunks: int,
) -> dict[str, Any]:
    if any(p.reuse_rows is None for p in prepared) or previous is None:
        effective, max_seq = models.effective_tokens, models.embedder.max_seq_length
    else:
        effective = previous.index.manifest["chunking"]["effective_chunk_tokens"]
        max_seq = previous.index.manifest["embedding"].get("max_seq_length")
    chunking = {**chunking_params(config, effective), "reuse_key": _reuse_key(config)}
    bm25 = {
        "config": to_dict(config.bm25),
        "formula": "rank_bm25.BM25Okapi(epsilon=0)",
        "builder": "bm25s method=robertson, weights x (k1+1), float64",
        "vocabulary_size": vocabulary,
        **tokenizer.to_manifest(),
    }
    kind = "beir" if is_beir_corpus(root) else ("file" if root.is_file() else "folder")
    files = {
        p.source: {
            "sha256": p.sha256,
            "bytes": p.size,
            "chunks": len(p.chunks),
            **(p.cleaning or {}),
            **({"ocr": p.ocr} if p.ocr else {}),
        }
        for p in prepared
    }
    return build_manifest(
        format_version=FORMAT_VERSION,
        config=config,
        dimension=dimension,
        max_seq_length=max_seq,
        chunking=chunking,
        bm25=bm25,
        source={"path": str(root.resolve()), "kind": kind},
        files=files,
        chunks=n_chunks,
    )


def _progress(items: list[Any], enabled: bool, unit: str) -> Any:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="reading", unit=unit.rstrip("s"), leave=False)
