"""The bridge's threads: a pool of workers kept for a second after their job, started with
``_thread.start_new_thread`` (``threading.Thread.start()`` waits until the new thread holds the GIL:
with hundreds of busy threads, milliseconds per start on the event loop), and counted in
:func:`live_workers` (``threading.enumerate()`` lists none of them). Standard library only."""
from __future__ import annotations

import _thread
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("hf_textgen.aio")

#: How long a pooled worker thread waits for another stream before it exits.
_IDLE_SECONDS = 1.0

# One entry per thread at work now (see live_workers). A list, not a counter under a lock: append and
# pop are atomic under the GIL, and a contended lock made the event loop wait behind the workers.
working: list[None] = []


def live_workers() -> int:
    """How many threads of this module are working now (on a stream, or the reactor)."""
    return len(working)


def idle_workers() -> int:
    """How many pooled threads are waiting for work (each exits after a second without any)."""
    return pool.idle()


def spawn(function: Callable[..., None], *args: Any) -> None:
    working.append(None)
    try:
        _thread.start_new_thread(function, args)
    except BaseException:
        working.pop()
        raise


def close_iterator(iterator: Iterator[Any] | None, error: BaseException | None) -> BaseException | None:
    """Close ``iterator`` (in the calling thread); return what ended it: ``error``, else close's."""
    close = getattr(iterator, "close", None)
    if close is not None:
        try:
            close()
        except BaseException as exc:
            if error is None:
                error = exc
    return error


class Slot:
    """An idle pooled thread, waiting on ``ready`` for its next job."""

    __slots__ = ("ready", "job")

    def __init__(self) -> None:
        self.ready = _thread.allocate_lock()
        self.ready.acquire()
        self.job: Callable[[], None] | None = None


class Pool:
    """Threads for the streams' blocking parts, kept for a second after their job. Starting and
    ending a thread for every stream cost about 0.3 ms of CPU each under load (its stack is mapped
    and unmapped), a third of what opening a stream costs; 200 streams opened at once took 270 ms
    on fresh threads and 175 ms on warm ones. The pool is unbounded, like the streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[Slot] = []  # most recently idle last: it is the warmest

    def idle(self) -> int:
        return len(self._idle)

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` in an idle thread, or in a new one."""
        with self._lock:
            slot = self._idle.pop() if self._idle else None
        if slot is None:
            spawn(self._serve, job)
            return
        working.append(None)
        slot.job = job
        slot.ready.release()

    def _serve(self, job: Callable[[], None]) -> None:
        while True:
            try:
                job()
            except BaseException:  # jobs report their own errors; this is a bug
                log.exception("a hf_textgen worker job failed")
            working.pop()
            slot = Slot()
            with self._lock:
                self._idle.append(slot)
            if not slot.ready.acquire(timeout=_IDLE_SECONDS):
                with self._lock:
                    if slot in self._idle:  # else a job was given to it meanwhile: take it
                        self._idle.remove(slot)
                        return
                slot.ready.acquire()
            job, slot.job = slot.job, None  # type: ignore[assignment]


pool = Pool()
