"""One writer per index: ``rag ingest`` holds ``ingest.lock`` (filelock) while it runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import IndexLockedError

LOCK_NAME = "ingest.lock"


@contextmanager
def index_lock(root: Path, *, timeout: float = 0.0) -> Iterator[None]:
    """Hold the index's write lock, or raise :class:`IndexLockedError` if another ingest holds it."""
    from filelock import FileLock, Timeout

    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK_NAME), timeout=timeout)
    try:
        lock.acquire()
    except Timeout as e:
        raise IndexLockedError(
            f"index {root} is locked by another `rag ingest` ({root / LOCK_NAME}); wait for it to finish and run again"
        ) from e
    try:
        yield
    finally:
        lock.release()
