"""Stores by name: the ``store`` key of the configuration chooses one, :func:`open_store` opens it.

``plain`` is the plain-file index ``rag ingest`` writes (:mod:`rag.store.plain`). Another store (a served
vector database, an in-memory copy) registers a factory under its own name, from its own package, without
editing ragtrail::

    from rag.store import register_store

    def open_my_store(location: str, config: PipelineConfig) -> VectorStore: ...

    register_store("my-store", open_my_store)

and is then chosen with ``store: my-store`` in the YAML configuration. ``location`` is ``index_dir`` (or the
``--index`` option): the directory ``rag ingest`` writes, which a store may read its data from, or anything
the store understands (a URL, a collection name).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.config import PipelineConfig
from rag.errors import ConfigError, IndexVersionError
from rag.store.base import VectorStore
from rag.store.plain import open_index

StoreFactory = Callable[[str, PipelineConfig], VectorStore]


def _open_plain(location: str, config: PipelineConfig) -> VectorStore:
    return open_index(Path(location))


STORES: dict[str, StoreFactory] = {"plain": _open_plain}


def register_store(name: str, factory: StoreFactory, *, replace: bool = False) -> None:
    """Make ``factory`` the store called ``name``; registering a taken name needs ``replace=True``."""
    if not name or not isinstance(name, str):
        raise ConfigError(f"a store name must be a non-empty string, got {name!r}")
    if name in STORES and not replace and STORES[name] is not factory:
        raise ConfigError(f"store {name!r} is already registered; pass replace=True to replace it")
    STORES[name] = factory


def open_store(location: str | Path, config: PipelineConfig, *, embedding_model: str | None = None) -> VectorStore:
    """The store ``config.store`` names, opened at ``location``; with ``embedding_model``, refuse a store whose
    vectors come from another model."""
    factory = STORES.get(config.store)
    if factory is None:
        raise ConfigError(
            f"store: {config.store!r} is not a registered store; registered: {', '.join(sorted(STORES))} "
            "(a third-party store registers itself with rag.store.register_store)"
        )
    store = factory(str(location), config)
    if embedding_model is not None and store.embedding_model != embedding_model:
        raise IndexVersionError(
            f"the {config.store} store at {location} holds vectors of embedding model {store.embedding_model!r}, "
            f"but {embedding_model!r} was requested: re-run `rag ingest` with this model or use the store's model"
        )
    return store
