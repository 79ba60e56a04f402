"""``rag ingest FOLDER --watch``: keep an index in step with a folder.

After a first ingest, file events (watchfiles) are grouped into change sets: a change set closes when
no new file has changed for ``debounce_ms`` (or ``10 x debounce_ms`` after its first event, for long
copies). Each change set re-runs the incremental :func:`ingest.pipeline.ingest`, so adds, edits,
renames and deletes all go through its locked, atomic generation swap: readers see the generation
before or the one after, never a half-written one. Events under the index directory, in hidden files
or folders and in files of other types are ignored; a change set whose files look the same as before
(size, times, inode) is dropped without an ingest.

A change set that finds the index locked by another writer is retried every ``retry_s`` seconds. A
file that changes while an ingest runs is picked up by the next change set (watchfiles keeps
collecting events meanwhile). The embedding model is loaded once, right after the first ingest, and
reused by every change set (:func:`rag.models.load_embedder` is cached for the process).

Stopping: ``stop_event`` (any object with ``is_set()``) or Ctrl-C while waiting ends :func:`watch`
normally. Ctrl-C during an ingest raises :class:`KeyboardInterrupt` out of it; the index lock is
released on the way out and ``CURRENT`` still names a complete generation (an interrupted write
leaves only a ``.tmp-gen-*`` or unnamed ``gen-*`` folder, removed by the next ingest).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ingest.pipeline import ingest, load_models
from ingest.report import IngestReport
from ingest.sources import SKIPPED_PREFIXES, discover
from rag.config import PipelineConfig
from rag.errors import IndexLockedError, IngestError, RagError

__all__ = ["DEBOUNCE_MS", "RETRY_S", "ChangeSet", "WatchFilter", "watch"]

DEBOUNCE_MS = 500
RETRY_S = 2.0
MAX_DEBOUNCE_FACTOR = 10  # a change set closes at the latest this many debounce periods after its first event
TICK_MS = 500  # how often the watcher wakes without events (to retry a locked change set)
UP_TO_DATE_NOTE = "index is up to date; nothing written"

ChangeStatus = Literal["ingested", "failed", "locked"]
Snapshot = dict[str, tuple[int, int, int, int]]


class StopEvent(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class ChangeSet:
    """What one change set did to the index.

    ``status``: ``ingested`` (``report`` says what changed; ``report.written`` is false when the
    index was already up to date), ``failed`` (nothing written; ``error`` says why, e.g. every file
    was deleted or ``strict`` refused a failure) or ``locked`` (another writer holds the index; retried).
    ``changed``: the paths, relative to the watched folder, whose events made up the change set
    (empty for the first ingest).
    """

    at: float
    status: ChangeStatus
    changed: tuple[str, ...] = ()
    initial: bool = False
    report: IngestReport | None = None
    error: str | None = None
    retry_s: float | None = None

    def line(self) -> str:
        """The change set as one line: ``12:03:04 +1 added, ~2 updated, -1 removed, ...``."""
        clock = time.strftime("%H:%M:%S", time.localtime(self.at))
        if self.status == "locked":
            return f"{clock} {self.error}; retrying in {self.retry_s:g} s"
        if self.status == "failed" or self.report is None:
            return f"{clock} not ingested, the index is unchanged: {self.error}"
        r = self.report
        state = "" if r.written else " (index already up to date)"
        first = "first ingest: " if self.initial else ""
        return (
            f"{clock} {first}+{r.added} added, ~{r.updated} updated, -{r.removed} removed, {r.unchanged} unchanged, "
            f"{len(r.failed)} failed; {r.chunks_total} chunks ({r.chunks_embedded} embedded) in {r.seconds:.1f} s"
            f"{state}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.at)),
            "status": self.status,
            "initial": self.initial,
            "changed": list(self.changed),
            "error": self.error,
            "retry_s": self.retry_s,
            "report": self.report.to_dict() if self.report is not None else None,
        }


class WatchFilter:
    """Which file events can matter to the index of ``root`` (a folder, or a single file).

    Kept: files with an ingested extension, folders, and paths that no longer exist (a deleted or
    moved-away folder reports only its own path). Dropped: anything under the index directory,
    hidden files and folders, Office owner files (``~$x.docx``), existing files of other types.
    """

    def __init__(self, root: Path, index_root: Path, extensions: Iterable[str]) -> None:
        self.root = root.resolve()
        self.single = self.root.is_file()
        self.index_root = index_root.resolve()
        self.extensions = {e.lower() for e in extensions}

    def __call__(self, change: Any, path: str) -> bool:
        p = Path(path)
        if self.single:
            return p == self.root
        if p == self.index_root or self.index_root in p.parents:
            return False
        try:
            relative = p.relative_to(self.root)
        except ValueError:
            return False
        if not relative.parts or any(part.startswith(".") for part in relative.parts[:-1]):
            return False
        if relative.name.startswith(SKIPPED_PREFIXES):
            return False
        return p.suffix.lower() in self.extensions or not p.is_file()

    def relative(self, path: str) -> str:
        p = Path(path)
        base = self.root.parent if self.single else self.root
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            return path


@dataclass
class _State:
    root: Path
    index_root: Path
    config: PipelineConfig
    strict: bool
    progress: bool
    retry_s: float
    on_change: Callable[[ChangeSet], None]
    snapshot: Snapshot | None = None
    pending: set[str] = field(default_factory=set)
    retry_at: float | None = None

    def run(self, *, initial: bool = False) -> None:
        """Ingest now (the snapshot is taken first, so a file changed during the ingest differs next time)."""
        self.snapshot = _snapshot(self.root, self.index_root, self.config)
        changed = tuple(sorted(self.pending))
        change = self._ingest(changed, initial)
        if change.status == "locked":
            self.retry_at = time.monotonic() + self.retry_s
        else:
            self.pending.clear()
            self.retry_at = None
        self.on_change(change)

    def _ingest(self, changed: tuple[str, ...], initial: bool) -> ChangeSet:
        try:
            report = ingest(
                self.root, index_dir=self.index_root, config=self.config, strict=self.strict, progress=self.progress
            )
        except IndexLockedError:
            reason = f"index {self.index_root} is locked by another writer"
            return ChangeSet(time.time(), "locked", changed, initial, error=reason, retry_s=self.retry_s)
        except (RagError, OSError) as e:
            return ChangeSet(time.time(), "failed", changed, initial, error=str(e))
        return ChangeSet(time.time(), "ingested", changed, initial, report=report)

    def handle(self, batch: set[tuple[Any, str]], relative: Callable[[str], str]) -> None:
        if batch:
            if self.retry_at is None and _snapshot(self.root, self.index_root, self.config) == self.snapshot:
                return  # events, but nothing an ingest would see differently (folders, temporary files)
            self.pending.update(relative(path) for _, path in batch)
            self.run()
        elif self.retry_at is not None and time.monotonic() >= self.retry_at:
            self.run()


def _snapshot(root: Path, index_root: Path, config: PipelineConfig) -> Snapshot:
    """Size, modification and change times and inode of every file an ingest would read."""
    if not root.exists():
        raise IngestError(f"{root}: the watched path is gone; stopped watching")
    if root.is_file():
        paths = {root.name: root}
    else:
        paths = {f.source: f.path for f in discover(root, extensions=config.ingest.extensions, exclude=index_root)}
    out: Snapshot = {}
    for source, path in paths.items():
        try:
            st = os.stat(path)
        except OSError:
            out[source] = (-1, -1, -1, -1)
        else:
            out[source] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return out


def watch(
    path: str | Path,
    *,
    index_dir: str | Path,
    config: PipelineConfig,
    strict: bool = False,
    debounce_ms: int = DEBOUNCE_MS,
    retry_s: float = RETRY_S,
    on_change: Callable[[ChangeSet], None] | None = None,
    stop_event: StopEvent | None = None,
    progress: bool = False,
) -> None:
    """Ingest ``path`` into ``index_dir``, then once per change set until stopped; see the module docstring.

    ``on_change`` is called (in this thread) with every :class:`ChangeSet`, the first ingest included.
    """
    import watchfiles

    root, index_root = Path(path), Path(index_dir)
    if not root.exists():
        raise IngestError(f"{root}: no such file or folder")
    if debounce_ms < 1:
        raise ValueError(f"debounce_ms must be at least 1, got {debounce_ms}")
    if retry_s <= 0:
        raise ValueError(f"retry_s must be positive, got {retry_s}")
    watch_filter = WatchFilter(root, index_root, config.ingest.extensions)
    state = _State(root, index_root, config, strict, progress, retry_s, on_change or _ignore)
    target = watch_filter.root if not watch_filter.single else watch_filter.root.parent
    events = watchfiles.watch(
        target,
        watch_filter=watch_filter,
        debounce=debounce_ms * MAX_DEBOUNCE_FACTOR,
        step=debounce_ms,
        stop_event=stop_event,
        rust_timeout=TICK_MS,
        yield_on_timeout=True,
    )
    try:
        # the first (empty, on timeout) yield means the watcher runs: nothing after it is missed
        if _next(events) is None:
            return
        state.run(initial=True)
        _load_models(config, progress)
        while not (stop_event is not None and stop_event.is_set()):
            batch = _next(events)
            if batch is None:
                return
            state.handle(batch, watch_filter.relative)
    finally:
        events.close()


def _next(events: Any) -> set[tuple[Any, str]] | None:
    """The next batch of events; None once stopped (``stop_event``, or Ctrl-C while waiting)."""
    try:
        batch: set[tuple[Any, str]] = next(events)
    except (StopIteration, KeyboardInterrupt):
        return None
    return batch


def _load_models(config: PipelineConfig, progress: bool) -> None:
    """The embedding model, loaded while nothing happens rather than at the first change set."""
    try:
        load_models(config, progress=progress)
    except RagError:
        pass  # the same error ends the next change set that needs the model, and is reported there


def _ignore(change: ChangeSet) -> None:
    return None
