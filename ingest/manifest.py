"""What ``manifest.json`` records: everything that shaped the index, so a load can check it."""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

import rag
from rag.config import PipelineConfig, to_dict

PACKAGES = (
    "numpy",
    "faiss-cpu",
    "bm25s",
    "rank-bm25",
    "PyStemmer",
    "sentence-transformers",
    "transformers",
    "torch",
    "pypdf",
    "langchain-text-splitters",
    "beautifulsoup4",
    "charset-normalizer",
    "python-docx",
    "python-pptx",
    "openpyxl",
    "rapidocr-onnxruntime",
    "onnxruntime",
    "pypdfium2",
    "pillow",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"ragtrail": rag.__version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def chunking_params(config: PipelineConfig, effective_tokens: int) -> dict[str, Any]:
    """The parameters that decide chunk boundaries; a change means every document is re-chunked."""
    return {
        **to_dict(config.chunking),
        "effective_chunk_tokens": effective_tokens,
        "tokenizer": config.embedding.model,
    }


def build_manifest(
    *,
    format_version: int,
    config: PipelineConfig,
    dimension: int,
    max_seq_length: int | None,
    chunking: dict[str, Any],
    bm25: dict[str, Any],
    source: dict[str, Any],
    files: dict[str, dict[str, Any]],
    chunks: int,
) -> dict[str, Any]:
    return {
        "format_version": format_version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "packages": package_versions(),
        "embedding": {
            "model": config.embedding.model,
            "dimension": dimension,
            "max_seq_length": max_seq_length,
            "normalized": True,
            "dtype": "float32",
        },
        "chunking": chunking,
        "bm25": bm25,
        "dense_index": to_dict(config.dense_index),
        "source": source,
        "counts": {"documents": len(files), "chunks": chunks},
        "files": files,
    }
