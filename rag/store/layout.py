"""The plain-file index on disk: file names, the format version, and finding and checking a generation.

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

:mod:`rag.store.plain` reads it; :mod:`ingest.store` writes it (a new generation beside the live one,
published by replacing ``CURRENT``). Nothing is ever pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.errors import IndexNotFoundError, IndexVersionError

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
MANIFEST_KEYS = ("embedding", "bm25", "dense_index", "counts", "files")


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
    for key in MANIFEST_KEYS:
        if key not in manifest:
            raise IndexVersionError(f"{where / MANIFEST}: missing {key!r}; rebuild the index with `rag ingest`")


def disk_usage(path: Path) -> dict[str, int]:
    """Bytes per file of a generation directory (and ``total``)."""
    sizes = {child.name: child.stat().st_size for child in sorted(path.iterdir()) if child.is_file()}
    sizes["total"] = sum(sizes.values())
    return sizes
