"""Ingestion: a document folder (or a BEIR ``corpus.jsonl``) becomes a persistent FAISS + BM25 index.

One module per stage: ``sources`` (find files, read bytes), ``loaders`` (bytes to pages of text),
``clean``, ``chunking``, ``embed``, ``bm25`` and ``dense`` (building the BM25 matrix and the FAISS index),
``store`` (writing a generation of the on-disk index and publishing it), ``lock`` and ``pipeline``
(:func:`~ingest.pipeline.ingest`). Reading the index is :mod:`rag.store`'s job: ``ingest`` imports only
``rag`` core (config, errors, types, the store's reader), never ``eval`` or the application layer.
Importing this package is cheap: torch, sentence-transformers, faiss and bm25s load on first use.
"""

from __future__ import annotations
