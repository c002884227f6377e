"""The state a stream's producer (a worker thread or the reactor) shares with its consumer on the
event loop: a deque of items handed over in whole batches, backpressure, stop and end. Standard
library only; the loop side is woken through the waker it is given (:mod:`hf_textgen.aio.loop`)."""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .loop import LoopWaker

T = TypeVar("T")


class Channel(Generic[T]):
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
        self.waker: LoopWaker | None = None
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
