"""The anyio bridge: blocking sync code presented to asyncio and trio callers.

This is the only module that imports ``anyio``; it knows nothing about Hugging Face or HTTP.

``iterate_in_thread(open_iter, interrupt)`` turns a blocking iterator into an async iterator:

    worker thread                          shared, locked               event loop thread
    open_iter(); for item in it: ──put──▶ [deque] ──whole batch──▶ [batch] ──popleft──▶ __anext__()
                 (blocks when full)                 (one swap)      (no lock, no hop per item)

Design choices, each forced by a measurement or a backend difference:

* **One dedicated thread per iterator**, not ``anyio.to_thread``: a stream holds its thread for its
  whole life, and anyio's default limiter (40 tokens) would serialise the 41st concurrent stream. It is
  started with ``_thread.start_new_thread``, which returns at once: ``threading.Thread.start()`` waits
  until the new thread holds the GIL, which with hundreds of busy threads took milliseconds per start
  and, on the event loop, delayed the 200th of 200 concurrent streams by over a second.
  :func:`live_workers` counts them (``threading.enumerate()`` does not list them).
* **Many items per hand-over.** A thread hop costs ~100 µs, so items are never hopped one by one. The
  worker appends to a deque under a lock; the consumer takes everything there in one locked swap and
  then pops from its own batch without any lock or hop.
* **Wake the loop only when the consumer sleeps, and never block the worker doing so.** The consumer
  parks a waiter in the channel when the buffer is empty (a bare future on asyncio, an ``anyio.Event``
  on trio); the first item after that schedules ``waiter.set`` with the loop's own non-blocking
  thread-safe call (``loop.call_soon_threadsafe`` on asyncio, ``TrioToken.run_sync_soon`` on trio),
  and wake-ups from all streams of one loop share one such call while it is pending. Items arriving
  meanwhile ride along. ``from_thread.run_sync`` would make the worker wait for the loop every time.
* **Backpressure.** The worker blocks on a Condition while ``max_buffer`` items are unconsumed (the
  consumer's current batch included) and resumes when the consumer comes back for more, so memory
  stays bounded with a slow consumer.
* **Stopping is the consumer's call, closing is the worker's.** Every early exit (``break`` then
  garbage collection, ``aclose()``, ``async with``, cancellation, a timeout, an error) sets a stop flag,
  calls the caller's thread-safe ``interrupt()`` (e.g. shutting down the socket the worker is blocked
  on) and notifies the Condition. The worker then calls the iterator's ``close()`` in its own thread,
  because a running generator cannot be closed from another thread, and exits.
* **The worker never references the iterator object**, only the shared ``_Channel``, so dropping the
  ``ThreadIterator`` really runs ``__del__`` (a synchronous stop) even while the worker is blocked.
* **A class, not an async generator**: no task group is held across ``yield``, and finalisation is the
  same on asyncio and trio.
"""

from __future__ import annotations

import _thread
import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

__all__ = ["ThreadIterator", "iterate_in_thread", "run_sync", "live_workers"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Items handed over without suspending before ``__anext__`` yields to the loop once (a checkpoint), so
#: a producer that is always ahead cannot starve other tasks or delay cancellation.
_CHECKPOINT_EVERY = 256
#: How long ``aclose()`` waits for the worker to close its iterator.
_CLOSE_TIMEOUT = 2.0
#: Tokens of the limiter behind ``run_sync`` (anyio's default is 40).
_RUN_SYNC_TOKENS = 1000

_live = 0  # worker threads running now (see live_workers)
_live_lock = threading.Lock()


def live_workers() -> int:
    """How many worker threads of this module are running now."""
    return _live


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

    def _wake(self, waiter: Any) -> None:
        """Schedule ``waiter.set()`` on the loop without waiting for the loop (any thread)."""
        if waiter is not None and self.waker is not None:
            self.waker.wake(waiter.set)

    # -- worker thread --------------------------------------------------------------------------------
    def put(self, item: T) -> bool:
        """Append one item, blocking while the batch is full. ``False``: the consumer has stopped."""
        with self.lock:
            while len(self.items) + self.taken >= self.max_buffer and not self.stopped:
                self.producer_waiting = True
                self.cond.wait()
            if self.stopped:
                return False
            self.items.append(item)
            waiter = self.waiter
            if waiter is None:  # the common case: the consumer is busy, nothing to wake
                return True
            self.waiter = None
        self._wake(waiter)
        return True

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
        self._wake(waiter)
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
            self.cond.notify()
        return batch


def _work(channel: _Channel[T], open_iter: Callable[[], Iterator[T]]) -> None:
    """The worker thread's body: open, iterate, always close the iterator here, then report."""
    global _live
    iterator: Iterator[T] | None = None
    error: BaseException | None = None
    try:
        iterator = open_iter()
        put = channel.put
        for item in iterator:
            if not put(item):
                break
    except BaseException as exc:  # handed to the consumer, which re-raises it
        error = exc
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            try:
                close()
            except BaseException as exc:
                if error is None:
                    error = exc
        iterator = None
        with _live_lock:
            _live -= 1
        channel.finish(error)


def _spawn(channel: _Channel[T], open_iter: Callable[[], Iterator[T]]) -> None:
    global _live
    with _live_lock:
        _live += 1
    try:
        _thread.start_new_thread(_work, (channel, open_iter))
    except BaseException:
        with _live_lock:
            _live -= 1
        raise


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
        self._channel.waker = _loop_waker()
        _spawn(self._channel, self._open_iter)
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
