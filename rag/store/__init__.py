"""Index stores: what retrieval searches, behind one Protocol, opened by name from a registry.

* :mod:`rag.store.base` — the :class:`VectorStore` / :class:`SearchIndex` Protocols and :data:`ScoredChunk`;
* :mod:`rag.store.registry` — :data:`STORES`, :func:`register_store`, :func:`open_store`;
* :mod:`rag.store.plain` — the reference store: the plain-file index ``rag ingest`` writes, read-only;
* :mod:`rag.store.layout` — that index's files, format version and generations;
* :mod:`rag.store.bm25`, :mod:`rag.store.dense` — BM25 and FAISS at query time.

Writing the plain-file index is :mod:`ingest.store`'s job; this package only reads.
"""

from __future__ import annotations

from rag.store.base import ScoredChunk, SearchIndex, VectorStore
from rag.store.layout import FORMAT_VERSION, check_manifest, current_generation, disk_usage, read_manifest
from rag.store.plain import Index, open_index
from rag.store.registry import STORES, StoreFactory, open_store, register_store

__all__ = [
    "FORMAT_VERSION",
    "STORES",
    "Index",
    "ScoredChunk",
    "SearchIndex",
    "StoreFactory",
    "VectorStore",
    "check_manifest",
    "current_generation",
    "disk_usage",
    "open_index",
    "open_store",
    "read_manifest",
    "register_store",
]
