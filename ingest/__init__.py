"""Ingestion: a document folder (or a BEIR ``corpus.jsonl``) becomes a persistent FAISS + BM25 index.

One module per stage: ``sources`` (find files, read bytes), ``loaders`` (bytes to pages of text),
``clean``, ``chunking``, ``embed``, ``bm25``, ``dense``, ``store`` (the on-disk index and
:func:`~ingest.store.open_index`), ``lock`` and ``pipeline`` (:func:`~ingest.pipeline.ingest`).
Importing this package is cheap: torch, sentence-transformers, faiss and bm25s load on first use.
"""

from __future__ import annotations
