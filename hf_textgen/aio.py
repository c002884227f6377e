"""The anyio bridge: blocking sync code presented to asyncio and trio callers.

This is the only module that imports ``anyio``; it knows nothing about Hugging Face or HTTP.

``iterate_in_thread(open_iter, interrupt)`` turns a blocking iterator into an async iterator:

    pooled worker thread                     shared, locked               event loop thread
    open_iter(); for item in it: ──put──▶ [deque] ──whole batch──▶ [batch] ──popleft──▶ __anext__()
    first Wait ─▶ the reactor thread: resumes `it` when its socket is readable ──offer──▶ [deque]

Design choices, each forced by a measurement or a backend difference:

* **Threads of our own**, not ``anyio.to_thread``: a stream may hold its thread for its whole life,
  and anyio's default limiter (40 tokens) would serialise the 41st concurrent stream. Threads start
  with ``_thread.start_new_thread``, which returns at once (``threading.Thread.start()`` waits until
  the new thread holds the GIL: with hundreds of busy threads, milliseconds per start on the event
  loop). They are pooled (:class:`_Pool`): an idle one exits after a second. :func:`live_workers`
  counts the working ones (``threading.enumerate()`` lists none of them).
* **One reactor thread for every stream past its blocking part.** An iterator may yield a
  :class:`~hf_textgen.types.Wait` (a socket and a time) instead of blocking on a read; the worker
  then hands it to :class:`_Reactor` and is free. The reactor resumes each iterator when its socket
  is readable or its time is up. A thread per stream spent most of its time switching under the
  GIL (200 streams x 200 events 5 ms apart: median latency 51-70 ms with a thread per stream, 9-42
  ms with the reactor, over three benchmark runs). Iterators that never yield a ``Wait`` keep their worker to the end.
* **Many items per hand-over.** A thread hop costs ~100 µs, so items are never hopped one by one. The
  producer appends to a deque under a lock; the consumer takes everything there in one locked swap
  and then pops from its own batch without any lock or hop.
* **Wake the loop only when the consumer sleeps, and never block the producer doing so.** The
  consumer parks a waiter in the channel when the buffer is empty (a bare future on asyncio, an
  ``anyio.Event`` on trio); the first item after that schedules ``waiter.set`` with the loop's own
  non-blocking thread-safe call (``loop.call_soon_threadsafe`` on asyncio, ``TrioToken.run_sync_soon``
  on trio), and wake-ups from all streams of one loop share one such call while it is pending.
* **Backpressure.** At most ``max_buffer`` items wait unconsumed (the consumer's current batch
  included): a worker blocks on a Condition, the reactor stops reading that stream's socket; both
  resume when the consumer comes back for more, so memory stays bounded with a slow consumer.
* **Stopping is the consumer's call, closing is the producer's.** Every early exit (``break`` then
  garbage collection, ``aclose()``, ``async with``, cancellation, a timeout, an error) sets a stop flag,
  calls the caller's thread-safe ``interrupt()`` (e.g. shutting down the socket a worker is blocked
  on) and wakes the producer, which calls the iterator's ``close()`` in its own thread (a running
  generator cannot be closed from another thread).
* **The producer never references the ``ThreadIterator``**, only the shared ``_Channel``, so dropping
  the ``ThreadIterator`` really runs ``__del__`` (a synchronous stop) even while a worker is blocked.
* **A class, not an async generator**: no task group is held across ``yield``, and finalisation is the
  same on asyncio and trio.
"""

from __future__ import annotations

import _thread
import asyncio
import functools
import heapq
import itertools
import logging
import math
import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from .types import Wait

__all__ = ["ThreadIterator", "iterate_in_thread", "run_sync", "live_workers", "idle_workers"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Items handed over without suspending before ``__anext__`` yields to the loop once (a checkpoint), so
#: a producer that is always ahead cannot starve other tasks or delay cancellation.
_CHECKPOINT_EVERY = 256
#: How long ``aclose()`` waits for the worker to close its iterator.
_CLOSE_TIMEOUT = 2.0
#: How long a pooled worker thread waits for another stream before it exits.
_IDLE_SECONDS = 1.0
#: Tokens of the limiter behind ``run_sync`` (anyio's default is 40).
_RUN_SYNC_TOKENS = 1000

# One entry per thread at work now (see live_workers). A list, not a counter under a lock: append and
# pop are atomic under the GIL, and a contended lock made the event loop wait behind the workers.
_working: list[None] = []


def live_workers() -> int:
    """How many threads of this module are working now (on a stream, or the reactor)."""
    return len(_working)


def idle_workers() -> int:
    """How many pooled threads are waiting for work (each exits after a second without any)."""
    return _pool.idle()


class _FutureWaiter:
    """What a sleeping consumer waits on under asyncio: a bare future, a fraction of the cost of an
    ``anyio.Event`` (which wraps an ``asyncio.Event`` and its own future) on a path taken per event."""

    __slots__ = ("_future",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._future = loop.create_future()

    def set(self) -> None:
        if not self._future.done():  # a cancelled wait leaves a cancelled future behind
            self._future.set_result(None)

    async def wait(self) -> None:
        await self._future


def _backend_hooks() -> "tuple[Callable[[Callable[[], object]], object], Callable[[], Any]]":
    """The running loop's non-blocking "run this callback on the loop soon" function, and a factory
    of waiters (``set()`` on the loop, ``await wait()``). Must be called on the event loop.

    The callback functions may be called from any thread and return at once; once the loop has
    finished they raise ``RuntimeError`` (``trio.RunFinishedError`` is one).
    """
    try:
        import sniffio  # trio depends on it; without it only asyncio can be running

        library = sniffio.current_async_library()
    except ImportError:
        library = "asyncio"
    if library == "trio":
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon, anyio.Event
    loop = asyncio.get_running_loop()
    return loop.call_soon_threadsafe, lambda: _FutureWaiter(loop)


class _LoopWaker:
    """One per event loop: coalesces wake-ups from all worker threads into one loop callback.

    Hundreds of streams each waking the loop once per event would cost a self-pipe write, a loop
    iteration and a handle each; while a drain is pending, further wake-ups only join its list.
    """

    def __init__(self, call_soon: Callable[[Callable[[], object]], object], new_waiter: Callable[[], Any]) -> None:
        self._call_soon = call_soon
        self.new_waiter = new_waiter
        self._lock = threading.Lock()
        self._pending: list[Callable[[], object]] = []

    def wake(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the loop soon (any thread; never blocks on the loop)."""
        with self._lock:
            self._pending.append(callback)
            if len(self._pending) > 1:  # a drain is already scheduled
                return
        try:
            self._call_soon(self._drain)
        except RuntimeError:  # the loop has finished: nobody is waiting any more
            with self._lock:
                self._pending.clear()

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for callback in pending:
            callback()


_waker: anyio.lowlevel.RunVar[_LoopWaker] = anyio.lowlevel.RunVar("hf_textgen_waker")


def _loop_waker() -> _LoopWaker:
    """This event loop's waker (created on first use; must be called on the loop)."""
    try:
        return _waker.get()
    except LookupError:
        waker = _LoopWaker(*_backend_hooks())
        _waker.set(waker)
        return waker


class _Channel(Generic[T]):
    """The state shared by the worker thread and the consumer; every field is guarded by ``lock``.

    The worker appends to ``items``; the consumer takes all of them in one locked swap and drains that
    batch without the lock. ``taken`` counts the swapped-out batch as unconsumed until the consumer
    comes back for more, so ``len(items) + taken <= max_buffer`` bounds memory. With a fast producer
    the two threads pass whole batches back and forth: two thread switches per ``max_buffer`` items.
    """

    def __init__(self, max_buffer: int) -> None:
        # Reentrant: the garbage collector may run ``ThreadIterator.__del__`` (which stops the channel)
        # on the worker thread while it holds the lock. ``with lock`` is cheaper than ``with cond``.
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.items: deque[T] = deque()
        self.max_buffer = max_buffer
        self.taken = 0  # size of the consumer's current batch
        self.stopped = False  # the consumer gave up: the worker must stop producing
        self.done = False  # the worker has closed its iterator and is exiting
        self.error: BaseException | None = None  # what ended the worker, for the consumer
        self.waiter: Any = None  # set when the consumer sleeps, woken by the worker
        self.producer_waiting = False
        self.waker: _LoopWaker | None = None
        self.resume_producer: Callable[[], None] | None = None  # set by the reactor when it owns the producer

    def _wake(self, waiter: Any) -> None:
        """Schedule ``waiter.set()`` on the loop without waiting for the loop (any thread)."""
        if waiter is not None and self.waker is not None:
            self.waker.wake(waiter.set)

    def _append(self, item: T) -> Any:
        """Append ``item`` (``lock`` held); return the sleeping consumer's waiter, to wake after."""
        self.items.append(item)
        waiter, self.waiter = self.waiter, None
        return waiter

    # -- worker thread --------------------------------------------------------------------------------
    def put(self, item: T) -> bool:
        """Append one item, blocking while the batch is full. ``False``: the consumer has stopped."""
        with self.lock:
            while len(self.items) + self.taken >= self.max_buffer and not self.stopped:
                self.producer_waiting = True
                self.cond.wait()
            if self.stopped:
                return False
            waiter = self._append(item)
        self._wake(waiter)
        return True

    # -- the reactor thread ---------------------------------------------------------------------------
    def offer(self, item: T) -> bool:
        """Append one item without blocking. ``False``: stop producing, because the consumer has
        stopped or the buffer is now full; ``resume_producer`` is called once it has room again."""
        with self.lock:
            if self.stopped:
                return False
            waiter = self._append(item)
            room = len(self.items) + self.taken < self.max_buffer
            if not room:
                self.producer_waiting = True
        self._wake(waiter)
        return room

    def finish(self, error: BaseException | None) -> None:
        """Record the end of the stream (and what ended it) and wake the consumer if it sleeps."""
        with self.lock:
            self.done = True
            if not self.stopped:  # after a stop, errors are usually the interrupt's doing
                self.error = error
            waiter, self.waiter = self.waiter, None
        self._wake(waiter)

    # -- any thread -----------------------------------------------------------------------------------
    def stop(self) -> bool:
        """Tell the worker to stop; drop buffered items. ``True`` if the worker may still be running."""
        with self.lock:
            if self.stopped:
                return False
            self.stopped = True
            self.items.clear()
            self.error = None
            waiter, self.waiter = self.waiter, None
            self.cond.notify_all()
            running = not self.done
            resume = self.resume_producer
        self._wake(waiter)
        if resume is not None and running:
            resume()  # the reactor closes the iterator at once, also while it is paused
        return running

    # -- consumer (event loop thread), with ``lock`` held ---------------------------------------------
    def take_batch(self) -> deque[T] | None:
        """The consumer has used up its batch: take the next one, if any, and unblock the worker."""
        batch = None
        if self.items:
            batch, self.items = self.items, deque()
        self.taken = len(batch) if batch else 0
        if self.producer_waiting and self.taken < self.max_buffer:
            self.producer_waiting = False
            if self.resume_producer is not None:
                self.resume_producer()
            else:
                self.cond.notify()
        return batch


def _work(channel: _Channel[T], open_iter: Callable[[], Iterator[T]]) -> None:
    """The worker thread's body: open and iterate; at the first :class:`Wait`, hand the iterator to
    the reactor and exit; otherwise close the iterator here at the end, then report."""
    iterator: Iterator[T] | None = None
    error: BaseException | None = None
    handed_over = False
    try:
        iterator = open_iter()
        put = channel.put
        for item in iterator:
            if item.__class__ is Wait:
                _reactor.adopt(channel, iterator)
                handed_over = True
                break
            if not put(item):
                break
    except BaseException as exc:  # handed to the consumer, which re-raises it
        error = exc
    finally:
        if not handed_over:
            channel.finish(_close(iterator, error))


def _close(iterator: Iterator[Any] | None, error: BaseException | None) -> BaseException | None:
    """Close ``iterator`` (in the calling thread); return what ended it: ``error``, else close's."""
    close = getattr(iterator, "close", None)
    if close is not None:
        try:
            close()
        except BaseException as exc:
            if error is None:
                error = exc
    return error


def _spawn(function: Callable[..., None], *args: Any) -> None:
    _working.append(None)
    try:
        _thread.start_new_thread(function, args)
    except BaseException:
        _working.pop()
        raise


def _start_worker(channel: _Channel[T], open_iter: Callable[[], Iterator[T]]) -> None:
    """Hand the stream to a pooled thread. Called on the loop through its waker, so the streams that
    a burst of tasks start in one loop iteration get their threads together, after it: started one
    by one, each new thread competed with the loop for the GIL before the next one was asked for
    (200 streams took the loop 120-190 ms to start)."""
    if channel.stopped:  # the consumer left first: nothing to run
        channel.finish(None)
        return
    try:
        _pool.submit(functools.partial(_work, channel, open_iter))
    except BaseException as exc:  # no thread to be had: the consumer gets the error
        channel.finish(exc)


class _Slot:
    """An idle pooled thread, waiting on ``ready`` for its next job."""

    __slots__ = ("ready", "job")

    def __init__(self) -> None:
        self.ready = _thread.allocate_lock()
        self.ready.acquire()
        self.job: Callable[[], None] | None = None


class _Pool:
    """Threads for the streams' blocking parts, kept for a second after their job. Starting and
    ending a thread for every stream cost about 0.3 ms of CPU each under load (its stack is mapped
    and unmapped), a third of what opening a stream costs; 200 streams opened at once took 270 ms
    on fresh threads and 175 ms on warm ones. The pool is unbounded, like the streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Slot] = []  # most recently idle last: it is the warmest

    def idle(self) -> int:
        return len(self._idle)

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` in an idle thread, or in a new one."""
        with self._lock:
            slot = self._idle.pop() if self._idle else None
        if slot is None:
            _spawn(self._serve, job)
            return
        _working.append(None)
        slot.job = job
        slot.ready.release()

    def _serve(self, job: Callable[[], None]) -> None:
        while True:
            try:
                job()
            except BaseException:  # jobs report their own errors; this is a bug
                log.exception("a hf_textgen worker job failed")
            _working.pop()
            slot = _Slot()
            with self._lock:
                self._idle.append(slot)
            if not slot.ready.acquire(timeout=_IDLE_SECONDS):
                with self._lock:
                    if slot in self._idle:  # else a job was given to it meanwhile: take it
                        self._idle.remove(slot)
                        return
                slot.ready.acquire()
            job, slot.job = slot.job, None  # type: ignore[assignment]


_pool = _Pool()


class _Parked:
    """A stream the reactor owns: its iterator, and the socket and time it waits for."""

    __slots__ = ("channel", "iterator", "sock", "until", "scheduled", "queued", "over")

    def __init__(self, channel: _Channel[Any], iterator: Iterator[Any]) -> None:
        self.channel = channel
        self.iterator = iterator
        self.sock: Any = None  # registered with the selector while not None
        self.until = math.inf
        self.scheduled: float | None = None  # the time of its live entry in the reactor's heap
        self.queued = False  # in the reactor's ready list
        self.over = False


class _Reactor:
    """One thread drives every stream that has been handed over: when a stream's socket is readable,
    or its :class:`Wait` has timed out, it resumes the stream's iterator until it waits again, ends,
    or fills its buffer. The iterators read without blocking (they yield a ``Wait`` instead), so one
    thread serves hundreds of streams with no thread switch per event, which under the GIL is what
    a thread per stream spends most of its time on. The thread exits when no stream is left.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _ready, _running and _poked
        self._ready: list[_Parked] = []
        self._running = False
        self._poked = False
        self._selector: selectors.BaseSelector | None = None
        self._wake_in: socket.socket | None = None
        self._wake_out: socket.socket | None = None
        self._heap: list[tuple[float, int, _Parked]] = []
        self._sequence = itertools.count()

    # -- any thread -------------------------------------------------------------------------------------
    def adopt(self, channel: _Channel[Any], iterator: Iterator[Any]) -> None:
        """Take over ``iterator``, which has just yielded a :class:`Wait`. Only this thread touches
        the selector, so the stream is resumed here first: its reader tries again, then waits anew."""
        stream = _Parked(channel, iterator)
        with channel.lock:
            channel.resume_producer = lambda: self._resume(stream)
        self._resume(stream)

    def _resume(self, stream: _Parked) -> None:
        with self._lock:
            if stream.queued:
                return
            stream.queued = True
            self._ready.append(stream)
            if not self._running:
                self._running = True
                self._start()
                return
            if not self._poked:
                self._poked = True
                self._wake_out.send(b"x")  # type: ignore[union-attr]

    def _start(self) -> None:
        """Start the thread, with a new selector and wake-up socket pair (``_lock`` held)."""
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._selector.register(self._wake_in, selectors.EVENT_READ, None)
        try:
            _spawn(self._run)
        except BaseException:
            self._stopped()
            raise

    def _stopped(self) -> None:
        """The thread is gone: release what it used (``_lock`` held)."""
        self._running = False
        for resource in (self._selector, self._wake_in, self._wake_out):
            if resource is not None:
                resource.close()
        self._selector = self._wake_in = self._wake_out = None

    # -- the reactor thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            selector = self._selector
            assert selector is not None
            while True:
                with self._lock:
                    ready, self._ready = self._ready, []
                    self._poked = False
                    if not ready and len(selector.get_map()) <= 1:  # only the wake-up socket: all done
                        self._stopped()
                        return
                for stream in ready:
                    stream.queued = False
                    self._advance(stream)
                if len(selector.get_map()) <= 1:  # nothing to wait for: exit, unless a stream came meanwhile
                    continue
                for key, _ in selector.select(self._timeout()):
                    if key.data is None:
                        self._drain_wake_ups()
                    else:
                        self._advance(key.data)
                self._expire()
        except BaseException as exc:  # a bug here must not leave consumers waiting forever
            log.exception("the hf_textgen reactor thread failed")
            with self._lock:
                owned = [key.data for key in self._selector.get_map().values() if key.data is not None] + self._ready  # type: ignore[union-attr]
                self._ready = []
                self._stopped()
            for stream in owned:
                stream.over = True
                stream.channel.finish(RuntimeError(f"the hf_textgen reactor thread failed: {exc!r}"))
            raise
        finally:
            _working.pop()

    def _drain_wake_ups(self) -> None:
        try:
            while self._wake_in.recv(4096):  # type: ignore[union-attr]
                pass
        except BlockingIOError:
            pass

    def _advance(self, stream: _Parked) -> None:
        """Resume the stream until it waits, ends, or must pause for its consumer."""
        if stream.over:
            return
        channel, iterator = stream.channel, stream.iterator
        error: BaseException | None = None
        try:
            offer = channel.offer
            if not channel.stopped:
                for item in iterator:
                    if item.__class__ is Wait:
                        self._park(stream, item)
                        return
                    if not offer(item):
                        if channel.stopped:
                            break
                        self._unregister(stream)  # paused: the consumer's next take resumes it
                        return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            error = exc
        stream.over = True
        stream.scheduled = None  # its heap entries are stale now
        self._unregister(stream)
        error = _close(iterator, error)
        stream.iterator = None  # type: ignore[assignment]
        with channel.lock:
            channel.resume_producer = None
        channel.finish(error)

    def _park(self, stream: _Parked, wait: Wait) -> None:
        if stream.sock is not wait.sock:
            self._unregister(stream)
            self._selector.register(wait.sock, selectors.EVENT_READ, stream)  # type: ignore[union-attr]
            stream.sock = wait.sock
        stream.until = wait.until
        if stream.scheduled is None or wait.until < stream.scheduled:
            stream.scheduled = wait.until
            heapq.heappush(self._heap, (wait.until, next(self._sequence), stream))

    def _unregister(self, stream: _Parked) -> None:
        if stream.sock is not None:
            try:
                self._selector.unregister(stream.sock)  # type: ignore[union-attr]
            except (KeyError, ValueError, OSError):
                pass
            stream.sock = None

    def _timeout(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].scheduled != heap[0][0]:  # stale: superseded, or the stream is over
            heapq.heappop(heap)
        return None if not heap else max(0.0, heap[0][0] - time.monotonic())

    def _expire(self) -> None:
        """Resume streams whose wait has timed out (their reader raises); reschedule the others."""
        heap, now = self._heap, time.monotonic()
        while heap and heap[0][0] <= now:
            when, _, stream = heapq.heappop(heap)
            if stream.scheduled != when:
                continue
            stream.scheduled = None
            if stream.over or stream.sock is None:  # over, or paused: no server timeout meanwhile
                continue
            if stream.until <= now:
                self._advance(stream)
            else:
                stream.scheduled = stream.until
                heapq.heappush(heap, (stream.until, next(self._sequence), stream))


_reactor = _Reactor()


def _forget_threads_after_fork() -> None:
    """In a forked child none of the parent's threads run: without this, a stream would be handed
    to an idle worker or a reactor that does not exist there, and wait forever."""
    global _pool, _reactor
    old = _reactor
    _working.clear()
    _pool, _reactor = _Pool(), _Reactor()
    for resource in (old._selector, old._wake_in, old._wake_out):  # the child's copies only
        if resource is not None:
            resource.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads_after_fork)


class ThreadIterator(Generic[T]):
    """An async iterator over items produced by a blocking iterator in a dedicated thread.

    Use it with ``async for``, optionally inside ``async with`` (which closes it on exit). The thread
    starts at the first ``__anext__``. An exception raised in the worker is re-raised here, after the
    items produced before it. ``aclose()`` stops the worker and waits (up to 2 s, shielded) until it has
    closed its iterator; dropping the object unclosed stops the worker without waiting.

    ``__anext__`` returns buffered items without suspending; it yields to the loop when it has to wait,
    and otherwise once per 256 items, so a fast producer cannot starve other tasks or delay cancellation.
    """

    def __init__(
        self,
        open_iter: Callable[[], Iterator[T]],
        interrupt: Callable[[], None] | None = None,
        *,
        max_buffer: int = 256,
    ) -> None:
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be at least 1, got {max_buffer}")
        self._open_iter = open_iter
        self._interrupt = interrupt
        self._channel: _Channel[T] = _Channel(max_buffer)
        self._batch: deque[T] = deque()  # taken from the worker, drained without the lock
        self._started = False
        self._unyielded = 0  # items returned since the last suspension

    def __aiter__(self) -> ThreadIterator[T]:
        return self

    async def __aenter__(self) -> ThreadIterator[T]:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def _start(self) -> None:
        waker = self._channel.waker = _loop_waker()
        waker.wake(functools.partial(_start_worker, self._channel, self._open_iter))
        self._started = True

    async def __anext__(self) -> T:
        if self._batch:
            return self._batch.popleft()
        return await self._next_batch()

    async def _next_batch(self) -> T:
        """Swap in the worker's batch, sleeping until there is one; return its first item."""
        channel = self._channel
        if not self._started:
            if channel.stopped:
                raise StopAsyncIteration
            self._start()
        try:
            if self._unyielded >= _CHECKPOINT_EVERY:
                self._unyielded = 0
                await anyio.lowlevel.checkpoint()
            while True:
                with channel.lock:
                    batch = channel.take_batch()
                    if batch:
                        self._batch = batch
                        break
                    if channel.done or channel.stopped:
                        error, channel.error = channel.error, None
                        if error is not None:
                            raise error
                        raise StopAsyncIteration
                    waiter = channel.waiter = channel.waker.new_waiter()  # type: ignore[union-attr]
                self._unyielded = 0
                await waiter.wait()
        except StopAsyncIteration:
            raise
        except BaseException:  # the worker's error, a cancellation, a timeout: the stream is over
            self._stop()
            raise
        self._unyielded += len(batch)
        return batch.popleft()

    def _stop(self) -> None:
        """Synchronous stop: flag, wake the worker, and interrupt its blocking call if it still runs."""
        self._batch.clear()
        if self._channel.stop() and self._started and self._interrupt is not None:
            try:
                self._interrupt()
            except Exception:  # best effort: the resource may already be closed
                log.debug("interrupt() failed while stopping a thread iterator", exc_info=True)

    async def aclose(self) -> None:
        """Stop the worker and wait (shielded, at most 2 s) until it has closed its iterator."""
        self._stop()
        if not self._started:
            return
        channel = self._channel
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            while True:
                with channel.lock:
                    if channel.done:
                        return
                    waiter = channel.waiter = channel.waker.new_waiter()  # type: ignore[union-attr]
                await waiter.wait()

    def __del__(self) -> None:
        # The safety net after ``break``: it cannot wait, but the worker stops and closes on its own.
        if getattr(self, "_started", False):
            self._stop()


def iterate_in_thread(
    open_iter: Callable[[], Iterator[T]],
    interrupt: Callable[[], None] | None = None,
    *,
    max_buffer: int = 256,
) -> ThreadIterator[T]:
    """Iterate ``open_iter()`` in a dedicated thread and present it as an async iterator.

    ``open_iter`` is called in the worker thread (it may block, e.g. to open an HTTP stream).
    ``interrupt`` must be thread-safe; it is called when the consumer stops early, to unblock the
    worker (e.g. shut down the socket it reads). At most ``max_buffer`` items wait unconsumed.
    """
    return ThreadIterator(open_iter, interrupt, max_buffer=max_buffer)


_limiter: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar("hf_textgen_limiter")


async def run_sync(func: Callable[..., R], *args: Any) -> R:
    """Run a one-shot blocking call in anyio's thread pool, with room for many concurrent calls.

    The limiter is per event loop (a ``RunVar``) and created lazily, with 1000 tokens instead of
    anyio's default 40, so many concurrent requests are not queued behind each other.
    """
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(_RUN_SYNC_TOKENS)
        _limiter.set(limiter)
    return await anyio.to_thread.run_sync(func, *args, limiter=limiter)
