"""``rag ingest FOLDER --watch``: adds, edits, renames and deletes reach search; readers never see a
partial index; a locked index is retried; a change made during an ingest is not lost; Ctrl-C (or an
interrupt in the middle of a write) leaves a consistent index and releases the lock.

One watcher thread serves the module (``live``); each test changes its own files and waits, polling
with a timeout, until the index shows the change.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

import ingest.store as store
import ingest.watch as watch_module
from ingest.lock import index_lock
from ingest.pipeline import ingest
from ingest.report import IngestReport
from ingest.watch import UP_TO_DATE_NOTE, ChangeSet, WatchFilter, watch
from rag.config import ChunkingConfig, PipelineConfig
from rag.store import open_index

REPO = Path(__file__).resolve().parents[2]
RAG = str(Path(sys.executable).with_name("rag"))
SMALL = PipelineConfig(chunking=ChunkingConfig(chunk_tokens=64, overlap_tokens=8))
TIMEOUT = 120.0  # seconds for a change to reach the index: 2 shared cores, and the CLI loads the model first
DOCS = {
    "guide.md": "# Greenhouse guide\n\nTomatoes need eight hours of sun.\n\n## Pests\n\n"
    "Aphids are removed with a soap solution.\n",
    "notes.txt": "Orchard notes\n\nThe pear trees were pruned in February; the quince harvest is in October.\n",
    "sub/bees.md": "# Beekeeping\n\nThe hives stand at the south wall. Honey is extracted in July.\n",
}
T = TypeVar("T")


def write_docs(root: Path) -> Path:
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def wait_until(condition: Callable[[], T], what: str, timeout: float = TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def stored_sources(index_dir: Path) -> set[str]:
    return set(open_index(index_dir).manifest["files"])


def stored_text(index_dir: Path, source: str) -> str:
    return "\n".join(c.text for c in open_index(index_dir).chunks if c.source == source)


class OwnEncoder:
    """Query vectors from a second copy of the model: the watcher thread encodes with the cached one,
    and a Hugging Face fast tokenizer must not be used by two threads at once."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        from rag.models import resolve_embedding_model

        self.model = SentenceTransformer(resolve_embedding_model(SMALL.embedding.model), device="cpu")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)


@dataclass
class Live:
    folder: Path
    index: Path
    changes: list[ChangeSet]
    encoder: OwnEncoder

    def sources(self) -> set[str]:
        return stored_sources(self.index)

    def search(self, query: str) -> list[str]:
        """Sources of the hybrid (BM25 + dense) hits, best first, through the library's search path."""
        from rag.pipeline import Pipeline

        pipeline = Pipeline(SMALL, open_index(self.index), reranker=None, encoder=self.encoder)
        return [hit.chunk.source for hit in pipeline.search(query, k=3, mode="hybrid").hits]

    def since(self, n: int) -> list[ChangeSet]:
        return list(self.changes[n:])

    def written(self, n: int, count: int) -> list[IngestReport]:
        """The reports of the change sets since ``n`` that wrote a generation, once there are ``count``
        (a change set is reported just after its generation is published)."""

        def reports() -> list[IngestReport]:
            return [c.report for c in self.since(n) if c.report is not None and c.report.written]

        wait_until(lambda: len(reports()) >= count, f"{count} change sets that wrote the index")
        return reports()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("watch")
    folder, index = write_docs(base / "docs"), base / "index"
    changes: list[ChangeSet] = []
    crashed: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            watch(
                folder,
                index_dir=index,
                config=SMALL,
                debounce_ms=150,
                retry_s=0.3,
                on_change=changes.append,
                stop_event=stop,
            )
        except BaseException as e:
            crashed.append(e)

    thread = threading.Thread(target=run, name="watcher", daemon=True)
    thread.start()
    wait_until(lambda: changes or crashed, "the first ingest")
    assert not crashed, "".join(traceback.format_exception(crashed[0]))
    yield Live(folder, index, changes, OwnEncoder())
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the watcher did not stop on its stop event"
    assert not crashed, "".join(traceback.format_exception(crashed[0]))


def test_first_ingest(live: Live) -> None:
    first = live.changes[0]
    assert first.initial and first.status == "ingested" and first.report is not None
    assert (first.report.added, first.report.failed) == (3, [])
    assert "first ingest: +3 added" in first.line()


def test_add_edit_delete_reach_search(live: Live) -> None:
    from rag.models import load_embedder

    loads = load_embedder.cache_info().misses
    n = len(live.changes)
    kiwi = live.folder / "kiwi.md"
    kiwi.write_text("# Kiwi\n\nKiwi vines need one male plant for every eight female plants.\n", encoding="utf-8")
    wait_until(lambda: "kiwi.md" in live.sources(), "the added file")
    assert live.search("how many male kiwi plants")[0] == "kiwi.md"

    kiwi.write_text("# Kiwi\n\nThe kiwi harvest starts in November, after the first frost.\n", encoding="utf-8")
    wait_until(lambda: "November" in stored_text(live.index, "kiwi.md"), "the edit")
    assert "male plant" not in stored_text(live.index, "kiwi.md")
    assert live.search("when does the kiwi harvest start")[0] == "kiwi.md"

    kiwi.unlink()
    wait_until(lambda: "kiwi.md" not in live.sources(), "the delete")
    assert "kiwi.md" not in live.search("kiwi harvest November male plant")
    assert not any(c.source == "kiwi.md" for c in open_index(live.index).chunks)

    reports = live.written(n, 3)
    assert [(r.added, r.updated, r.removed) for r in reports] == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
    assert all("kiwi.md" in c.changed for c in live.since(n) if c.report is not None and c.report.written)
    assert load_embedder.cache_info().misses == loads, "the embedding model was loaded again"


def test_renames_move_documents_without_reembedding(live: Live) -> None:
    (live.folder / "plans").mkdir()
    (live.folder / "plans" / "pond.txt").write_text("The pond holds six goldfish and a water lily.\n", "utf-8")
    wait_until(lambda: "plans/pond.txt" in live.sources(), "the new file")
    n = len(live.changes)
    (live.folder / "plans" / "pond.txt").rename(live.folder / "plans" / "garden-pond.txt")
    wait_until(lambda: "plans/garden-pond.txt" in live.sources(), "the renamed file")
    assert "plans/pond.txt" not in live.sources()
    # a moved folder reports only its own path, no event per file inside it
    (live.folder / "plans").rename(live.folder / "water")
    wait_until(lambda: "water/garden-pond.txt" in live.sources(), "the moved folder")
    assert not any(s.startswith("plans/") for s in live.sources())
    assert live.search("goldfish in the pond")[0] == "water/garden-pond.txt"
    moves = live.written(n, 2)
    assert [(r.added, r.removed, r.chunks_embedded) for r in moves] == [(1, 1, 0), (1, 1, 0)]


def test_readers_never_see_a_partial_index(live: Live) -> None:
    errors: list[str] = []
    reads = 0
    done = threading.Event()

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                index = open_index(live.index)
                n_rows = len(index.chunks)
                assert n_rows == index.embeddings.shape[0] == index.bm25.num_docs == index.manifest["counts"]["chunks"]
                assert {c.source for c in index.chunks} == set(index.manifest["files"])
                assert index.bm25_search(["aphids soap"], 1)[0], "a document that never changes went missing"
                assert index.dense_search(np.asarray(index.embeddings[:1]), 1)[0][0][0] == 0
            except Exception as e:
                errors.append(repr(e))
            reads += 1
            time.sleep(0.01)

    reader = threading.Thread(target=read, name="reader")
    reader.start()
    n = len(live.changes)
    names = [f"burst/file{i}.txt" for i in range(5)]
    crops = ["leeks", "parsnips", "shallots", "turnips", "chard"]
    (live.folder / "burst").mkdir()
    for name, crop in zip(names, crops, strict=True):  # in a few milliseconds: one change set, not five
        (live.folder / name).write_text(f"The {crop} grow in the north bed.\n", encoding="utf-8")
    wait_until(lambda: set(names) <= live.sources(), "the burst of new files")
    for name in names:
        (live.folder / name).unlink()
    wait_until(lambda: not set(names) & live.sources(), "the burst of deletes")
    done.set()
    reader.join(timeout=30)
    assert errors == []
    assert reads > 10
    added = [c.report.added for c in live.since(n) if c.report is not None]
    assert sum(added) == 5 and max(added) >= 2, f"not debounced: {added}"


def test_a_locked_index_is_retried(live: Live) -> None:
    n = len(live.changes)
    with index_lock(live.index):
        (live.folder / "shed.txt").write_text("The shed key hangs behind the blue door.\n", encoding="utf-8")
        locked = wait_until(lambda: [c for c in live.since(n) if c.status == "locked"], "a locked change set")
        assert "shed.txt" not in live.sources()
    wait_until(lambda: "shed.txt" in live.sources(), "the retried change set")
    assert locked[0].changed == ("shed.txt",)
    assert locked[0].line().endswith("is locked by another writer; retrying in 0.3 s")
    (retried,) = live.written(n, 1)
    assert retried.added == 1
    assert [c.changed for c in live.since(n) if c.report is retried] == [("shed.txt",)]


def test_a_change_made_during_an_ingest_is_not_lost(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    real = watch_module.ingest
    late = live.folder / "late.md"

    def ingest_then_write(*args: Any, **kwargs: Any) -> IngestReport:
        report = real(*args, **kwargs)
        if not late.exists():  # after this ingest has read the folder, before the watcher looks again
            late.write_text("# Late\n\nThe late file is about the rhubarb patch.\n", encoding="utf-8")
        return report

    monkeypatch.setattr(watch_module, "ingest", ingest_then_write)
    (live.folder / "early.md").write_text("# Early\n\nThe early file is about the asparagus bed.\n", "utf-8")
    wait_until(lambda: {"early.md", "late.md"} <= live.sources(), "the file written during an ingest")


def test_touching_a_file_is_an_up_to_date_change_set(live: Live) -> None:
    n = len(live.changes)
    os.utime(live.folder / "notes.txt")  # new times, same bytes
    change = wait_until(lambda: [c for c in live.since(n) if c.status == "ingested"], "the change set")[0]
    assert change.changed == ("notes.txt",) and change.report is not None
    assert not change.report.written and UP_TO_DATE_NOTE in change.report.notes
    assert change.line().endswith("(index already up to date)")


def test_filter_keeps_what_the_index_reads(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "photo.bmp").write_bytes(b"BM")
    (root / "notes.txt").write_text("x", encoding="utf-8")
    keep = WatchFilter(root, root / "idx", SMALL.ingest.extensions)
    assert keep(None, str(root / "notes.txt")) and keep(None, str(root / "sub" / "new.PDF"))
    assert keep(None, str(root / "sub")), "a folder (its files may have moved with it)"
    assert keep(None, str(root / "gone")), "a path that no longer exists may have been a folder"
    for ignored in ("photo.bmp", ".hidden.md", ".git/x.md", "sub/.cache/a.txt", "~$report.docx", "idx/CURRENT", "idx"):
        assert not keep(None, str(root / ignored)), ignored
    assert not keep(None, str(tmp_path / "elsewhere.md"))
    single = WatchFilter(root / "notes.txt", tmp_path / "idx", SMALL.ingest.extensions)
    assert single(None, str(root / "notes.txt")) and not single(None, str(root / "other.txt"))


def test_watch_refuses_bad_arguments(tmp_path: Path) -> None:
    from rag.errors import IngestError

    with pytest.raises(IngestError, match="no such file or folder"):
        watch(tmp_path / "missing", index_dir=tmp_path / "idx", config=SMALL)
    with pytest.raises(ValueError, match="debounce_ms"):
        watch(tmp_path, index_dir=tmp_path / "idx", config=SMALL, debounce_ms=0)


@pytest.mark.parametrize("where", ["publish", "swap_current"])
def test_an_interrupted_write_leaves_the_index_consistent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Any, where: str
) -> None:
    folder, index = write_docs(tmp_path / "docs"), tmp_path / "index"
    ingest(folder, index_dir=index, config=SMALL)
    before = open_index(index)
    (folder / "notes.txt").write_text("Orchard notes\n\nThe plum trees were planted in 2024.\n", encoding="utf-8")

    def ctrl_c(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    # publish: the new generation is staged, not yet renamed; swap_current: renamed, CURRENT not yet replaced
    monkeypatch.setattr(store, where, ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        watch(folder, index_dir=index, config=SMALL, debounce_ms=50)
    monkeypatch.undo()
    with index_lock(index):  # released on the way out
        pass
    after = open_index(index)
    assert after.generation == before.generation and "plum" not in stored_text(index, "notes.txt")
    half_done = {p.name for p in index.iterdir() if p.is_dir()} - {before.generation.name}
    assert len(half_done) == 1, half_done
    report = ingest(folder, index_dir=index, config=SMALL)  # the next ingest removes what was left
    assert report.updated == 1 and "plum" in stored_text(index, "notes.txt")
    generations = {p.name for p in index.iterdir() if p.is_dir()}
    assert generations == {before.generation.name, open_index(index).generation.name}


def test_printer_writes_one_line_per_change_set_and_new_failures_once(capsys: pytest.CaptureFixture[str]) -> None:
    from rag.commands.ingest import ChangePrinter

    at = time.mktime((2026, 1, 2, 12, 3, 4, 0, 0, -1))
    report = IngestReport(added=1, updated=2, removed=1, unchanged=4, failed=[("bad.pdf", "corrupt PDF")])
    report.chunks_total, report.chunks_embedded, report.seconds, report.written = 14, 3, 0.84, True
    printer = ChangePrinter(json_lines=False)
    printer(ChangeSet(at, "ingested", ("a.md", "bad.pdf"), report=report))
    printer(ChangeSet(at, "ingested", ("b.md",), report=report))
    printer(ChangeSet(at, "locked", ("c.md",), error="index idx is locked by another writer", retry_s=2.0))
    printer(ChangeSet(at, "failed", ("d.md",), error="docs: no documents to ingest"))
    out, err = capsys.readouterr()
    line = "12:03:04 +1 added, ~2 updated, -1 removed, 4 unchanged, 1 failed; 14 chunks (3 embedded) in 0.8 s"
    assert out.splitlines() == [
        line,
        line,
        "12:03:04 index idx is locked by another writer; retrying in 2 s",
        "12:03:04 not ingested, the index is unchanged: docs: no documents to ingest",
    ]
    assert err.splitlines() == ["bad.pdf: corrupt PDF"]
    ChangePrinter(json_lines=True)(ChangeSet(at, "ingested", ("a.md",), report=report))
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "ingested" and record["changed"] == ["a.md"] and record["report"]["added"] == 1
    assert record["time"].startswith("2026-01-02T12:03:04")


def _default_sigint() -> None:
    # a test runner started as a background job inherits SIGINT ignored; Ctrl-C must reach the watcher
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_cli_watch_follows_the_folder_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    folder = write_docs(tmp_path / "docs")
    index = folder / "idx"  # inside the watched folder: its own writes must not make change sets
    config = tmp_path / "small.yaml"
    config.write_text("chunking:\n  chunk_tokens: 64\n  overlap_tokens: 8\n", encoding="utf-8")
    common = ["--index", str(index), "--config", str(config)]
    env = {**os.environ, "CI": "1", "HF_HUB_OFFLINE": "1"}
    argv = [RAG, "ingest", str(folder), "--watch", "--json", "--debounce", "150", *common]
    with open(tmp_path / "stderr.txt", "w+", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=tmp_path, preexec_fn=_default_sigint
        )
        lines: queue.Queue[dict[str, Any]] = queue.Queue()

        def read_stdout() -> None:
            for line in proc.stdout or ():
                lines.put(json.loads(line))

        threading.Thread(target=read_stdout, daemon=True).start()

        def next_change() -> dict[str, Any]:
            try:
                return lines.get(timeout=TIMEOUT)
            except queue.Empty:
                stderr.seek(0)
                raise AssertionError(f"no change set within {TIMEOUT:.0f} s; stderr:\n{stderr.read()}") from None

        def search(query: str) -> list[str]:
            run = subprocess.run(
                [RAG, "search", query, "--json", "--mode", "bm25", "--no-rerank", *common],
                capture_output=True,
                text=True,
                env=env,
                timeout=TIMEOUT,
            )
            assert run.returncode == 0, run.stderr
            return [hit["source"] for hit in json.loads(run.stdout)["hits"]]

        try:
            first = next_change()
            assert first["initial"] and first["status"] == "ingested" and first["report"]["added"] == 3
            (folder / "kiwi.md").write_text("# Kiwi\n\nKiwi vines need one male plant for every eight.\n", "utf-8")
            added = next_change()
            assert (added["changed"], added["report"]["added"], added["report"]["written"]) == (["kiwi.md"], 1, True)
            assert search("kiwi vines male plant")[0] == "kiwi.md"
            (folder / "notes.txt").unlink()
            removed = next_change()
            assert (removed["changed"], removed["report"]["removed"]) == (["notes.txt"], 1)
            assert search("kiwi vines") == ["kiwi.md"] and search("pear trees pruned") == []
        finally:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
        stderr.seek(0)
        err = stderr.read()
    assert code == 0, err
    assert lines.empty(), "a change set was reported for the index's own writes"
    assert "stopped watching" in err and "Traceback" not in err
    with index_lock(index):
        assert stored_sources(index) == {"guide.md", "sub/bees.md", "kiwi.md"}


def test_sigterm_stops_the_watcher_like_ctrl_c() -> None:
    from rag.commands.ingest import _stop_on_sigterm

    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert _stop_on_sigterm() == signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler

        def own(signum: int, frame: Any) -> None:
            return None

        signal.signal(signal.SIGTERM, own)  # a SIGTERM handler installed by someone else is left alone
        assert _stop_on_sigterm() is None and signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, original)


def test_debounce_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    (tmp_path / "a.txt").write_text("The gate is green.", encoding="utf-8")
    assert main(["ingest", str(tmp_path), "--index", str(tmp_path / "idx"), "--debounce", "100"]) == 2
    assert "--debounce only applies with --watch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["ingest", str(tmp_path), "--watch", "--debounce", "0"])
    assert exit_.value.code == 2 and "positive integer, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "idx").exists()
