"""Writing the on-disk index: a directory of plain files (layout: :mod:`rag.store.layout`), swapped in
atomically. Reading it is :mod:`rag.store.plain`.

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
from pathlib import Path
from typing import Any

import numpy as np

from ingest import dense
from rag.store.bm25 import BM25Matrix
from rag.store.layout import (
    BM25_ARRAYS,
    BM25_VOCAB,
    CHUNKS,
    CURRENT,
    EMBEDDINGS,
    FAISS,
    GEN_PREFIX,
    MANIFEST,
    TMP_PREFIX,
)
from rag.types import Chunk


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
    tmp = root / f"{TMP_PREFIX}{_stamp()}"
    tmp.mkdir(parents=True)
    with open(tmp / CHUNKS, "w", encoding="utf-8") as fh:
        for chunk in chunks:
            fh.write(json.dumps(chunk.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
    np.save(tmp / EMBEDDINGS, np.ascontiguousarray(embeddings, dtype=np.float32), allow_pickle=False)
    dense.write_faiss(faiss_index, tmp / FAISS)
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
