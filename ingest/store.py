"""The on-disk index: a directory of plain files, swapped in atomically, loaded read-only.

Layout of an index directory (default ``.ragtrail/``)::

    CURRENT              name of the live generation (replaced atomically with os.replace)
    ingest.lock          held by the one ``rag ingest`` writing to this index
    gen-<stamp>/         one complete generation:
        manifest.json        format version, package versions, models, parameters, file hashes
        chunks.jsonl         one Chunk per line; line i is row i of every array below
        embeddings.npy       float32 (n, d), L2-normalised (allow_pickle=False)
        dense.faiss          FAISS index over the embeddings (flat inner product or HNSW)
        bm25.data.npy  bm25.indices.npy  bm25.indptr.npy   CSC BM25 weights, one column per term
        bm25.vocab.json      the terms, in column order

A new generation is written to ``.tmp-gen-*`` beside the live one, fsynced, renamed to ``gen-*``
and only then published by replacing ``CURRENT``. A crash at any moment leaves ``CURRENT`` naming a
complete generation. After the swap, generations older than the previous one are deleted (the
previous one stays for readers that opened it just before). Nothing is ever pickled.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ingest.bm25 import BM25Matrix, BM25Tokenizer, top_k
from rag.config import DenseIndexConfig, from_dict
from rag.errors import IndexNotFoundError, IndexVersionError
from rag.types import Chunk

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
EMBEDDINGS = "embeddings.npy"
FAISS = "dense.faiss"
BM25_ARRAYS = ("data", "indices", "indptr")
BM25_VOCAB = "bm25.vocab.json"
GEN_PREFIX = "gen-"
TMP_PREFIX = ".tmp-gen-"


class Index:
    """A loaded, read-only index. Row ``i`` of every structure is ``chunks[i]``."""

    def __init__(self, path: Path, generation: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.generation = generation
        self.manifest = manifest
        self.embedding_model: str = manifest["embedding"]["model"]
        self.dimension: int = int(manifest["embedding"]["dimension"])
        self.chunks: list[Chunk] = _read_chunks(generation / CHUNKS)
        self.ids: list[str] = [c.id for c in self.chunks]
        self.bm25_tokenizer = BM25Tokenizer.from_manifest(manifest["bm25"])
        self.bm25 = _read_bm25(generation, len(self.chunks))
        self.embeddings: np.ndarray = np.load(generation / EMBEDDINGS, mmap_mode="r", allow_pickle=False)
        if int(manifest["counts"]["chunks"]) != len(self.chunks):
            expected = manifest["counts"]["chunks"]
            raise IndexVersionError(
                f"{generation}: manifest lists {expected} chunks, chunks.jsonl has {len(self.chunks)}; "
                "re-run `rag ingest`"
            )

    def __len__(self) -> int:
        return len(self.chunks)

    def __repr__(self) -> str:
        return f"Index({str(self.path)!r}, chunks={len(self.chunks)}, model={self.embedding_model!r})"

    @cached_property
    def faiss_index(self) -> Any:
        """The FAISS index, read on first use (the previous generation is kept for such late readers)."""
        from ingest.dense import read_faiss

        path = self.generation / FAISS
        if not path.is_file():
            raise IndexNotFoundError(f"{path} is gone (replaced by a newer `rag ingest`): open the index again")
        return read_faiss(path, from_dict(DenseIndexConfig, self.manifest["dense_index"]))

    @property
    def vocabulary_size(self) -> int:
        return len(self.bm25.vocab)

    def dense_search(
        self, query_vectors: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Per query ``[(row, inner product)]`` best first, ties by row; queries must be normalised."""
        from ingest.dense import search

        query_vectors = np.atleast_2d(np.asarray(query_vectors, dtype=np.float32))
        if query_vectors.shape[1] != self.dimension:
            raise ValueError(
                f"query vectors have dimension {query_vectors.shape[1]}, the index {self.dimension} "
                f"(encode queries with {self.embedding_model!r})"
            )
        return search(self.faiss_index, query_vectors, k, allowed=_mask(allowed, len(self)))

    def bm25_scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (rank-bm25 ``BM25Okapi(epsilon=0)`` formula)."""
        return self.bm25.scores(self.bm25_tokenizer(query))

    def bm25_search(
        self, queries: Sequence[str], k: int, *, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Per query ``[(row, score)]`` for rows with score > 0, best first, ties by chunk id."""
        if isinstance(queries, str):
            raise TypeError("bm25_search takes a sequence of queries, not a single string")
        mask = _mask(allowed, len(self))
        return [top_k(self.bm25_scores(q), k, self.ids, mask) for q in queries]

    def check_embedding_model(self, name: str) -> None:
        """Refuse a query-side model that differs from the one the index was built with."""
        if name != self.embedding_model:
            raise IndexVersionError(
                f"index {self.path} was built with embedding model {self.embedding_model!r}, "
                f"but {name!r} was requested: re-run `rag ingest` with this model or use the index's model"
            )


def _mask(allowed: np.ndarray | None, n: int) -> np.ndarray | None:
    if allowed is None:
        return None
    mask = np.asarray(allowed, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"allowed must be a boolean mask of length {n}, got shape {mask.shape}")
    return mask


def open_index(path: str | Path, *, embedding_model: str | None = None) -> Index:
    """Load the index at ``path``; refuse a missing index, another format version or model."""
    root = Path(path)
    for attempt in range(3):
        generation = current_generation(root)
        try:
            manifest = read_manifest(generation)
            check_manifest(manifest, generation)
            index = Index(root, generation, manifest)
        except FileNotFoundError:
            if attempt == 2 or generation == current_generation(root):
                raise IndexNotFoundError(f"{generation}: index files are missing; re-run `rag ingest`") from None
            continue  # a concurrent ingest replaced the generation while we read it
        if embedding_model is not None:
            index.check_embedding_model(embedding_model)
        return index
    raise AssertionError("unreachable")


def current_generation(root: Path) -> Path:
    """The live generation directory of the index at ``root`` (or ``root`` itself if it is one)."""
    if (root / MANIFEST).is_file():
        return root
    try:
        name = (root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexNotFoundError(f"no index at {root}: run `rag ingest FOLDER --index {root}` first") from None
    except NotADirectoryError:
        raise IndexNotFoundError(f"{root} is a file, not an index directory") from None
    if not name.startswith(GEN_PREFIX) or "/" in name or not (root / name).is_dir():
        raise IndexNotFoundError(f"{root}/{CURRENT} names {name!r}, which is not a generation of this index")
    return root / name


def read_manifest(generation: Path) -> dict[str, Any]:
    try:
        with open(generation / MANIFEST, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except json.JSONDecodeError as e:
        raise IndexVersionError(f"{generation / MANIFEST}: not valid JSON ({e.msg}); re-run `rag ingest`") from e
    if not isinstance(manifest, dict):
        raise IndexVersionError(f"{generation / MANIFEST}: not a ragtrail manifest")
    return manifest


def check_manifest(manifest: dict[str, Any], where: Path) -> None:
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexVersionError(
            f"index at {where} has format version {version!r}, but this ragtrail reads version "
            f"{FORMAT_VERSION}: rebuild it with `rag ingest` (or use the ragtrail version that wrote it)"
        )
    for key in ("embedding", "bm25", "dense_index", "counts", "files"):
        if key not in manifest:
            raise IndexVersionError(f"{where / MANIFEST}: missing {key!r}; rebuild the index with `rag ingest`")


def _read_chunks(path: Path) -> list[Chunk]:
    with open(path, encoding="utf-8") as fh:
        return [Chunk.from_dict(json.loads(line)) for line in fh if line.strip()]


def _read_bm25(generation: Path, n: int) -> BM25Matrix:
    arrays = {name: np.load(generation / f"bm25.{name}.npy", allow_pickle=False) for name in BM25_ARRAYS}
    with open(generation / BM25_VOCAB, encoding="utf-8") as fh:
        terms = json.load(fh)
    vocab = {term: i for i, term in enumerate(terms)}
    return BM25Matrix(arrays["data"], arrays["indices"], arrays["indptr"], n, vocab)


# --- writing --------------------------------------------------------------------------------------


def stage_generation(
    root: Path,
    *,
    manifest: dict[str, Any],
    chunks: Sequence[Chunk],
    embeddings: np.ndarray,
    faiss_index: Any,
    bm25: BM25Matrix,
) -> Path:
    """Write a complete generation into a fresh ``.tmp-gen-*`` directory and fsync it."""
    from ingest.dense import write_faiss

    tmp = root / f"{TMP_PREFIX}{_stamp()}"
    tmp.mkdir(parents=True)
    with open(tmp / CHUNKS, "w", encoding="utf-8") as fh:
        for chunk in chunks:
            fh.write(json.dumps(chunk.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
    np.save(tmp / EMBEDDINGS, np.ascontiguousarray(embeddings, dtype=np.float32), allow_pickle=False)
    write_faiss(faiss_index, tmp / FAISS)
    for name in BM25_ARRAYS:
        np.save(tmp / f"bm25.{name}.npy", getattr(bm25, name), allow_pickle=False)
    terms = sorted(bm25.vocab, key=bm25.vocab.__getitem__)
    _write_json(tmp / BM25_VOCAB, terms)
    _write_json(tmp / MANIFEST, manifest)
    for child in tmp.iterdir():
        _fsync_file(child)
    _fsync_dir(tmp)
    return tmp


def publish(root: Path, staged: Path) -> Path:
    """Rename the staged directory to ``gen-*`` and point ``CURRENT`` at it; then drop old ones."""
    generation = root / (GEN_PREFIX + staged.name.removeprefix(TMP_PREFIX))
    os.rename(staged, generation)
    _fsync_dir(root)
    previous = _current_name(root)
    swap_current(root, generation.name)
    remove_stale(root, keep={generation.name, previous})
    return generation


def _current_name(root: Path) -> str | None:
    try:
        return (root / CURRENT).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def swap_current(root: Path, name: str) -> None:
    """Atomically replace ``CURRENT`` (the single commit point of an ingest)."""
    tmp = root / f".{CURRENT}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CURRENT)
    _fsync_dir(root)


def remove_stale(root: Path, *, keep: set[str | None]) -> None:
    """Delete generations not in ``keep`` (the new and the one before, which open readers may still
    use) and leftovers of interrupted ingests."""
    for child in root.iterdir():
        stale_gen = child.name.startswith(GEN_PREFIX) and child.name not in keep
        if (stale_gen or child.name.startswith(TMP_PREFIX)) and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        elif child.name.startswith(f".{CURRENT}.") and child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)


def _stamp() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


def _write_json(path: Path, value: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(value, fh, ensure_ascii=False, indent=1, sort_keys=True)
        fh.write("\n")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def disk_usage(path: Path) -> dict[str, int]:
    """Bytes per file of a generation directory (and ``total``)."""
    sizes = {child.name: child.stat().st_size for child in sorted(path.iterdir()) if child.is_file()}
    sizes["total"] = sum(sizes.values())
    return sizes
