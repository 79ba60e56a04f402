"""The pipeline over the index's live generation, reloaded when ``rag ingest`` publishes a new one.

Each request asks :meth:`LivePipeline.current`, which reads the index's ``CURRENT`` file (one small read:
the store's own commit point, replaced atomically by ``rag ingest``). When it names a generation other than
the loaded one, that generation is opened in a worker thread with the store's reader (:func:`open_index`,
which retries when an ingest swaps generations under it), fully read, FAISS included, so a later ingest
that deletes its files cannot pull them from under it, and only then swapped in. Requests already running
keep the pipeline they started with; no lock is held while answering. A generation that fails to load is
reported (``/v1/index``) and the previous one keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import RagError
from rag.store import current_generation, open_index

if TYPE_CHECKING:
    from rag.pipeline import Pipeline

log = logging.getLogger("rag.serve")


class LivePipeline:
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        root = getattr(pipeline.index, "path", None)
        self.root: Path | None = Path(root) if root is not None and hasattr(pipeline.index, "generation") else None
        self._lock = asyncio.Lock()
        self.failed: dict[str, str] = {}
        self.reloads = 0

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    @property
    def generation(self) -> str | None:
        generation = getattr(self._pipeline.index, "generation", None)
        return Path(generation).name if generation is not None else None

    def published(self) -> str | None:
        """The generation ``CURRENT`` names now (``None``: not an on-disk index, or unreadable right now)."""
        if self.root is None:
            return None
        try:
            return current_generation(self.root).name
        except RagError:
            return None

    async def current(self) -> Pipeline:
        """The pipeline over the newest published generation (loading it first if it is new)."""
        name = self.published()
        if name is None or name == self.generation or name in self.failed:
            return self._pipeline
        async with self._lock:
            name = self.published()
            if name is not None and name != self.generation and name not in self.failed:
                try:
                    self._pipeline = await asyncio.to_thread(self._load)
                    self.reloads += 1
                    log.info("rag serve: now answering from %s (%s)", self.root, self.generation)
                except (RagError, OSError) as e:
                    self.failed[name] = str(e)
                    log.warning("rag serve: keeping %s; %s could not be loaded: %s", self.generation, name, e)
        return self._pipeline

    def _load(self) -> Pipeline:
        assert self.root is not None
        index = open_index(self.root)
        _ = index.faiss_index  # read now, while the generation's files are certainly there
        return self._pipeline.with_index(index)
