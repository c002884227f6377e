"""The event loop's side of the bridge, and the only module that imports anyio: waking the loop
from other threads, :class:`ThreadIterator` (the async iterator a consumer holds) and
:func:`run_sync` for one-shot blocking calls."""
from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from .channel import Channel
from .handover import start_worker

log = logging.getLogger("hf_textgen.aio")

T = TypeVar("T")
R = TypeVar("R")

#: Items handed over without suspending before ``__anext__`` yields to the loop once (a checkpoint), so
#: a producer that is always ahead cannot starve other tasks or delay cancellation.
_CHECKPOINT_EVERY = 256
#: How long ``aclose()`` waits for the worker to close its iterator.
_CLOSE_TIMEOUT = 2.0
#: Tokens of the limiter behind ``run_sync`` (anyio's default is 40).
_RUN_SYNC_TOKENS = 1000


class FutureWaiter:
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


def backend_hooks() -> "tuple[Callable[[Callable[[], object]], object], Callable[[], Any]]":
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
    return loop.call_soon_threadsafe, lambda: FutureWaiter(loop)


class LoopWaker:
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


_waker: anyio.lowlevel.RunVar[LoopWaker] = anyio.lowlevel.RunVar("hf_textgen_waker")


def loop_waker() -> LoopWaker:
    """This event loop's waker (created on first use; must be called on the loop)."""
    try:
        return _waker.get()
    except LookupError:
        waker = LoopWaker(*backend_hooks())
        _waker.set(waker)
        return waker


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
        self._channel: Channel[T] = Channel(max_buffer)
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
        waker = self._channel.waker = loop_waker()
        waker.wake(functools.partial(start_worker, self._channel, self._open_iter))
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
