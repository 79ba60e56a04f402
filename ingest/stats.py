"""``rag index stats``: what an index holds and what it costs on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.store import Index, disk_usage, open_index


def index_stats(path: str | Path) -> dict[str, Any]:
    """Documents, chunks, vocabulary, dimension, bytes on disk and the models that built the index."""
    return stats_of(open_index(path))


def stats_of(index: Index) -> dict[str, Any]:
    """:func:`index_stats` of an index already loaded (``rag serve`` holds one)."""
    manifest = index.manifest
    return {
        "index": str(index.path),
        "generation": index.generation.name,
        "format_version": manifest["format_version"],
        "created_at": manifest.get("created_at"),
        "source": manifest.get("source", {}),
        "documents": manifest["counts"]["documents"],
        "chunks": len(index.chunks),
        "vocabulary": index.vocabulary_size,
        "dimension": index.dimension,
        "embedding_model": index.embedding_model,
        "dense_index": manifest["dense_index"]["kind"],
        "bm25": {k: manifest["bm25"]["config"][k] for k in ("k1", "b", "lowercase", "stopwords", "stemmer")},
        "chunking": {k: manifest["chunking"][k] for k in ("chunk_tokens", "overlap_tokens", "effective_chunk_tokens")},
        "bytes": disk_usage(index.generation),
        "packages": manifest.get("packages", {}),
    }


def format_stats(stats: dict[str, Any]) -> str:
    sizes = stats["bytes"]
    lines = [
        f"index        {stats['index']} ({stats['generation']}, format {stats['format_version']})",
        f"source       {stats['source'].get('path', '?')} ({stats['source'].get('kind', '?')})",
        f"documents    {stats['documents']}",
        f"chunks       {stats['chunks']}",
        f"vocabulary   {stats['vocabulary']} BM25 terms",
        f"dimension    {stats['dimension']}",
        f"models       embedding {stats['embedding_model']}; dense index {stats['dense_index']}",
        "bm25         " + ", ".join(f"{k}={v}" for k, v in stats["bm25"].items()),
        f"on disk      {_mb(sizes['total'])} in total",
    ]
    lines += [f"  {name:<22} {_mb(size)}" for name, size in sizes.items() if name != "total"]
    return "\n".join(lines)


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"
