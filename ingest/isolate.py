"""Per-file isolation: every file is loaded (parsed and cleaned) in a worker process under a time limit
and a memory cap, so a broken or hostile file costs one ``failed`` line, never the ingest.

* **One long-lived worker** (``python -I -c ...`` running :func:`main`) imports the parsers once, then
  loads file after file; it starts with the first file that needs loading and is replaced only after a
  file that timed out, ran out of memory or crashed it. Measured on 2 cores: starting it takes 0.7 s
  (importing pypdf, python-docx, python-pptx, openpyxl, BeautifulSoup), after which a small file costs ~0.1 ms
  more than loading it in-process; a fresh process per file would add ~0.9 s to every file.
* **Time**: the parent waits ``ingest.file_timeout_s`` for the answer, then kills the worker (SIGKILL)
  and reports the file as failed; the next file gets a fresh worker.
* **Memory**: the worker caps its own address space (``RLIMIT_AS``) at ``ingest.max_file_memory_mb``,
  Python and the parsers included (about 280 MB before the first file, 1.5 GB at the peak of OCR of
  a 300 dpi page). An allocation beyond it raises ``MemoryError`` (or kills the worker): the file
  fails with that reason and the worker is replaced. The parent never parses a file itself.
* **Protocol**: length-prefixed messages over two pipes (``multiprocessing.connection`` framing). In:
  the file's path, then its bytes. Out: JSON with the cleaned document or the reason it failed, the
  seconds it took and the worker's peak resident memory during that file. Nothing is unpickled: the
  worker reads untrusted files, so only plain data comes back from it.

Both limits at 0 load in-process, with neither limit (as before isolation existed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from ingest.clean import CleanDocument, clean_document
from ingest.loaders import load_document
from rag.config import IngestConfig, from_dict, to_dict
from rag.errors import ConfigError, DocumentError, IngestError

HEADROOM_MB = 64  # the memory cap must leave at least this much above the worker's size before any file
START_TIMEOUT_S = 120.0
EXIT_OUT_OF_MEMORY = 3
MAX_REASON_CHARS = 300
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
_PRELOAD = ("pypdf", "bs4", "charset_normalizer", "docx", "pptx", "openpyxl", "ingest.office", "ingest.ocr")
# allocation failures that libraries report in their own words (libxml2, errno ENOMEM, C++, OpenCV, numpy)
_OOM_MESSAGES = (
    "memory allocation failed",
    "cannot allocate memory",
    "std::bad_alloc",
    "insufficient memory",
    "failed to allocate",
    "unable to allocate",
)


@dataclass(frozen=True)
class LoadLimits:
    """``timeout_s``/``memory_mb`` None: no such limit. With neither, files load in-process."""

    timeout_s: float | None = None
    memory_mb: int | None = None

    @classmethod
    def from_config(cls, config: IngestConfig) -> LoadLimits:
        return cls(config.file_timeout_s or None, config.max_file_memory_mb or None)

    @property
    def isolated(self) -> bool:
        return self.timeout_s is not None or self.memory_mb is not None


@dataclass(frozen=True)
class LoadStats:
    """Seconds one file took to load and clean; the worker's peak resident memory meanwhile (None in-process)."""

    seconds: float
    peak_mb: float | None = None

    def to_dict(self) -> dict[str, float]:
        out = {"seconds": round(self.seconds, 4)}
        if self.peak_mb is not None:
            out["peak_mb"] = round(self.peak_mb, 1)
        return out


def load_and_clean(path: Path, data: bytes, config: IngestConfig, *, progress: bool = False) -> CleanDocument:
    """What the worker runs for one file: load (OCR included, one engine per process) and clean."""
    from ingest.ocr import ocr_reader  # lazy: numpy/OpenCV load only in the worker

    return clean_document(load_document(path, data, ocr=ocr_reader(config, progress=progress)))


class FileLoader:
    """Loads files through the worker (started on first use), or in-process when both limits are off.

    :meth:`load` returns the cleaned document or raises :class:`DocumentError` with the reason;
    ``stats`` holds the :class:`LoadStats` of every file, keyed by its path. Use as a context manager.
    """

    def __init__(self, config: IngestConfig, *, progress: bool = False) -> None:
        self.config = config
        self.progress = progress
        self.limits = LoadLimits.from_config(config)
        self.stats: dict[str, LoadStats] = {}
        self._worker: _Worker | None = None

    def __enter__(self) -> FileLoader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def load(self, path: Path, data: bytes) -> CleanDocument:
        if not self.limits.isolated:
            start = time.perf_counter()
            try:
                return load_and_clean(path, data, self.config, progress=self.progress)
            finally:
                self.stats[str(path)] = LoadStats(time.perf_counter() - start)
        worker = self._running_worker()
        start = time.perf_counter()  # the worker's start-up is not the file's time
        try:
            reply = worker.load(path, data, self.limits.timeout_s)
        except _WorkerGone as gone:
            self.close()
            self.stats[str(path)] = LoadStats(time.perf_counter() - start, gone.peak_mb)
            raise DocumentError(path, gone.reason(self.limits)) from None
        self.stats[str(path)] = LoadStats(time.perf_counter() - start, reply.get("peak_mb"))
        if reply["status"] == "ok":
            return document_from_json(reply["document"])
        if reply["status"] == "memory":
            self.close()
            raise DocumentError(path, _memory_reason(self.limits))
        raise DocumentError(path, str(reply["reason"]))

    def _running_worker(self) -> _Worker:
        if self._worker is not None and not self._worker.alive:
            self.close()
        if self._worker is None:
            self._worker = _Worker(self.config, self.limits.memory_mb, progress=self.progress)
        return self._worker


def _memory_reason(limits: LoadLimits) -> str:
    if limits.memory_mb is None:
        return "ran out of memory while loading (ingest.max_file_memory_mb is 0: no cap of its own)"
    return f"needs more memory than ingest.max_file_memory_mb ({limits.memory_mb:,} MB) to load"


# --- the parent's side of the worker --------------------------------------------------------------


class _WorkerGone(Exception):
    """The worker did not answer: it ran past the time limit (and was killed) or it died."""

    def __init__(self, *, timed_out: bool, returncode: int | None = None, peak_mb: float | None = None) -> None:
        super().__init__("timed out" if timed_out else f"exit {returncode}")
        self.timed_out = timed_out
        self.returncode = returncode
        self.peak_mb = peak_mb

    def reason(self, limits: LoadLimits) -> str:
        if self.timed_out:
            return f"took longer than ingest.file_timeout_s ({limits.timeout_s:g} s) to load; stopped"
        if self.returncode == EXIT_OUT_OF_MEMORY:
            return _memory_reason(limits)
        return f"the loader process crashed while reading it ({_describe_exit(self.returncode)})"


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "no answer"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class _Worker:
    """One worker process and the two pipes to it; started and ready when the constructor returns."""

    def __init__(self, config: IngestConfig, memory_mb: int | None, *, progress: bool) -> None:
        child_in, to_child = os.pipe()
        from_child, child_out = os.pipe()
        bootstrap = f"import sys; sys.path.insert(0, {str(_PACKAGE_ROOT)!r}); from ingest.isolate import main; main()"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-c",
                bootstrap,
                str(child_in),
                str(child_out),
                str(memory_mb or 0),
                json.dumps(to_dict(config)),
                "progress" if progress else "quiet",
            ],
            pass_fds=(child_in, child_out),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        os.close(child_in)
        os.close(child_out)
        self.inbox = Connection(from_child, writable=False)
        self.outbox = Connection(to_child, readable=False)
        self._handshake(memory_mb)

    def _handshake(self, memory_mb: int | None) -> None:
        try:
            hello = self._receive(START_TIMEOUT_S)
        except _WorkerGone as gone:
            self.stop()
            what = "did not start in time" if gone.timed_out else _describe_exit(gone.returncode)
            raise IngestError(f"the file loader process could not start ({what})") from None
        if hello["status"] == "too_small":
            self.stop()
            raise ConfigError(
                f"ingest.max_file_memory_mb ({memory_mb:,} MB) is too small: the loader process takes "
                f"{hello['vm_mb']:,.0f} MB before reading any file; allow at least {hello['vm_mb'] + HEADROOM_MB:,.0f} "
                "MB (or 0 for no cap)"
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def load(self, path: Path, data: bytes, timeout_s: float | None) -> dict[str, Any]:
        try:
            self.outbox.send_bytes(str(path).encode("utf-8", "surrogateescape"))
            self.outbox.send_bytes(data)
        except OSError:
            raise _WorkerGone(timed_out=False, returncode=self._exit_code()) from None
        return self._receive(timeout_s)

    def _receive(self, timeout_s: float | None) -> dict[str, Any]:
        try:
            ready = self.inbox.poll(timeout_s)
            if not ready:
                peak = _peak_mb(self.process.pid)
                self.stop()
                raise _WorkerGone(timed_out=True, peak_mb=peak)
            message = self.inbox.recv_bytes()
        except (EOFError, OSError):
            raise _WorkerGone(timed_out=False, returncode=self._exit_code()) from None
        reply: dict[str, Any] = json.loads(message.decode("utf-8", "surrogatepass"))
        return reply

    def _exit_code(self) -> int | None:
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.stop()
            return None

    def stop(self) -> None:
        """Kill the worker (it holds no state worth saving) and close the pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.inbox.close()
        self.outbox.close()


def _peak_mb(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process in MB, or None where /proc does not say."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _size_mb() -> float:
    """This process's address space (VmSize) in MB: what ``RLIMIT_AS`` counts."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- the worker -----------------------------------------------------------------------------------


def main() -> None:
    """The worker: ``argv`` = input fd, output fd, memory cap in MB (0: none), the ingest config as JSON,
    ``progress`` or ``quiet`` (OCR progress bars on stderr)."""
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the worker
    inbox = Connection(int(sys.argv[1]), writable=False)
    outbox = Connection(int(sys.argv[2]), readable=False)
    memory_mb = int(sys.argv[3])
    config = from_dict(IngestConfig, json.loads(sys.argv[4]))
    progress = sys.argv[5] == "progress"
    for module in _PRELOAD:
        __import__(module)
    _watch_parent(os.getppid())
    if memory_mb:
        size = _size_mb()
        if size + HEADROOM_MB > memory_mb:
            _send(outbox, {"status": "too_small", "vm_mb": size})
            return
        cap = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    _send(outbox, {"status": "ready"})
    while True:
        try:
            path = Path(inbox.recv_bytes().decode("utf-8", "surrogateescape"))
            data = inbox.recv_bytes()
        except EOFError:
            return
        except MemoryError:
            sys.exit(EXIT_OUT_OF_MEMORY)
        _reset_peak()
        reply = _answer(path, data, config, progress=progress)
        del data
        reply["peak_mb"] = _peak_mb()
        _send(outbox, reply)
        if reply["status"] == "memory":
            sys.exit(EXIT_OUT_OF_MEMORY)  # a worker that ran out of memory may be in a bad state


def _answer(path: Path, data: bytes, config: IngestConfig, *, progress: bool) -> dict[str, Any]:
    try:
        doc = load_and_clean(path, data, config, progress=progress)
    except DocumentError as e:
        return {"status": "memory"} if _out_of_memory(e) else {"status": "failed", "reason": one_line(e.reason)}
    except Exception as e:
        if _out_of_memory(e):
            return {"status": "memory"}
        return {"status": "failed", "reason": one_line(f"unexpected {type(e).__name__}: {e}")}  # the pipeline's words
    return {"status": "ok", "document": document_to_json(doc)}


def one_line(reason: str, *, limit: int = MAX_REASON_CHARS) -> str:
    """A reason as one line of at most ``limit`` characters (library messages can span lines or pages)."""
    text = " ".join(reason.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _out_of_memory(error: BaseException) -> bool:
    """True when ``error`` or an exception it was raised from is an allocation failure (loaders wrap them)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, MemoryError) or any(m in str(seen).lower() for m in _OOM_MESSAGES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _send(outbox: Connection, message: dict[str, Any]) -> None:
    outbox.send_bytes(json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _reset_peak() -> None:
    """Reset VmHWM so the next reading is this file's peak (Linux 4.0+; elsewhere it stays the lifetime peak)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone, even in the middle of a file (no orphan left parsing forever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


# --- CleanDocument <-> JSON -------------------------------------------------------------------------


def document_to_json(doc: CleanDocument) -> dict[str, Any]:
    return {f.name: getattr(doc, f.name) for f in fields(doc)}


def document_from_json(data: dict[str, Any]) -> CleanDocument:
    """Lists become tuples again (the dataclass holds tuples)."""
    return CleanDocument(**{name: _tuples(value) for name, value in data.items()})


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
