"""The LLM as one shared resource: one answer at a time, a bounded queue, cancellation and deadlines.

:class:`GenerationQueue` admits a request synchronously (so a full queue is a 429 before any streaming
starts), then runs its :class:`Job` on the queue's single worker thread when its turn comes. A job streams
its answer token by token into an asyncio queue; :meth:`Job.cancel` makes the next token raise
:class:`Cancelled` inside the worker, which closes the backend's token stream (``Pipeline._generate``) and
frees the model. The turn is held until the worker thread has really finished, so a cancelled or timed-out
request never overlaps the next one on the model.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")
EventKind = Literal["token", "done", "error", "cancelled"]


class QueueFull(Exception):
    """Every place in the queue is taken; ``retry_after`` seconds is when one is likely free."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the answer queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class Cancelled(Exception):
    """Raised inside the worker thread at the next token once the request is gone."""


class Timeout(Exception):
    """The request's deadline passed before its answer was complete."""


@dataclass(frozen=True)
class Event(Generic[T]):
    kind: EventKind
    value: Any = None


class Job(Generic[T]):
    """One answer computed by ``work(on_token)`` on the worker thread; events arrive on :meth:`next_event`."""

    def __init__(self, work: Callable[[Callable[[str], None]], T], *, loop: asyncio.AbstractEventLoop) -> None:
        self._work = work
        self._loop = loop
        self._events: asyncio.Queue[Event[T]] = asyncio.Queue()
        self._cancelled = threading.Event()
        self.started = False  # its turn came (set on the event loop)
        self.outcome: EventKind | None = None  # how the work ended: done, error or cancelled (set by run)
        self.task: asyncio.Task[None] | None = None
        self.tokens = 0

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Stop at the next token (or before starting); harmless once finished."""
        self._cancelled.set()

    def _put(self, event: Event[T]) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the event loop is closed: the server is shutting down and nobody listens
            pass

    def _on_token(self, piece: str) -> None:
        if self._cancelled.is_set():
            raise Cancelled()
        self.tokens += 1
        self._put(Event("token", piece))

    def run(self) -> None:
        """On the worker thread: the work, then exactly one final event (done, error or cancelled)."""
        if self._cancelled.is_set():
            self._finish(Event("cancelled"))
            return
        try:
            result = self._work(self._on_token)
        except Cancelled:
            self._finish(Event("cancelled"))
        except Exception as e:
            self._finish(Event("error", e))
        else:
            self._finish(Event("done", result))

    def _finish(self, event: Event[T]) -> None:
        self.outcome = event.kind  # before the event: a client that reads it and leaves cannot relabel the job
        self._put(event)

    async def next_event(self, *, deadline: float, poll_s: float | None = None) -> Event[T] | None:
        """The next event; ``None`` after ``poll_s`` without one (a chance to check on the client).
        Past ``deadline`` (event-loop time) the job is cancelled and :class:`Timeout` raised."""
        remaining = deadline - self._loop.time()
        if remaining <= 0:
            self.cancel()
            raise Timeout()
        wait = remaining if poll_s is None else min(poll_s, remaining)
        try:
            return await asyncio.wait_for(self._events.get(), timeout=wait)
        except TimeoutError:
            if self._loop.time() >= deadline:
                self.cancel()
                raise Timeout() from None
            return None


class GenerationQueue:
    """One job on the model at a time; at most ``max_waiting`` more admitted and waiting."""

    def __init__(self, max_waiting: int, *, typical_s: float = 10.0) -> None:
        if max_waiting < 0:
            raise ValueError(f"max_waiting must not be negative, got {max_waiting}")
        self.max_waiting = max_waiting
        self._typical_s = typical_s
        self._admitted = 0
        self._running = False
        self._lock = asyncio.Lock()
        self._durations: deque[float] = deque(maxlen=20)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-llm")
        self._tasks: set[asyncio.Task[None]] = set()
        self.completed = 0
        self.rejected = 0
        self.cancelled = 0

    @property
    def running(self) -> int:
        return int(self._running)

    @property
    def waiting(self) -> int:
        return self._admitted - self.running

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the mean duration of recent jobs (at least 1)."""
        recent = list(self._durations)
        mean = sum(recent) / len(recent) if recent else self._typical_s
        return max(1, math.ceil(mean))

    def stats(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "waiting": self.waiting,
            "max_waiting": self.max_waiting,
            "completed": self.completed,
            "rejected": self.rejected,
            "cancelled": self.cancelled,
            "retry_after_s": self.retry_after(),
        }

    def submit(self, work: Callable[[Callable[[str], None]], T]) -> Job[T]:
        """Admit ``work`` and start it when its turn comes; :class:`QueueFull` when there is no place."""
        if self._admitted >= 1 + self.max_waiting:
            self.rejected += 1
            raise QueueFull(self.retry_after())
        loop = asyncio.get_running_loop()
        job: Job[T] = Job(work, loop=loop)
        self._admitted += 1
        job.task = loop.create_task(self._run(job))
        self._tasks.add(job.task)
        job.task.add_done_callback(self._tasks.discard)
        return job

    def abandon(self, job: Job[Any]) -> None:
        """The client is gone or out of time: a waiting job leaves the queue now, a running one stops at its
        next token."""
        job.cancel()
        if not job.started and job.task is not None:
            job.task.cancel()

    async def _run(self, job: Job[Any]) -> None:
        try:
            async with self._lock:
                job.started = True
                if job.cancelled:
                    self.cancelled += 1
                    job.run()
                    return
                self._running = True
                start = time.monotonic()
                future = asyncio.get_running_loop().run_in_executor(self._executor, job.run)
                try:
                    await asyncio.shield(future)
                except asyncio.CancelledError:  # shutdown: the model stays ours until the thread is done
                    job.cancel()
                    await asyncio.wait([future])
                    raise
                finally:
                    self._running = False
                if job.outcome == "cancelled":
                    self.cancelled += 1
                else:  # done or failed: the model was busy for all of it (a client leaving after it is not a cancel)
                    self._durations.append(time.monotonic() - start)
                    self.completed += 1
        except asyncio.CancelledError:
            if not job.started:
                self.cancelled += 1
            raise
        finally:
            self._admitted -= 1

    async def drain(self) -> None:
        """Cancel waiting and running jobs' tokens and wait for the worker (server shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        self._executor.shutdown(wait=True, cancel_futures=True)
