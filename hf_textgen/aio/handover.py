"""A stream's way through the threads: a pooled worker opens and iterates it until its first
:class:`~hf_textgen.types.Wait`, then hands it to the reactor and is free; the reactor hands it
back to a worker at a :class:`~hf_textgen.types.Handoff` (a blocking step ahead, such as opening
the next provider's request after a failover). An iterator that never waits keeps its worker to
the end. Standard library only."""
from __future__ import annotations

import functools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..types import Handoff, HeadersIn, Wait
from . import reactor, threads
from .channel import Channel
from .threads import close_iterator

T = TypeVar("T")


#: How many streams may be opening a request at once (connecting, sending, waiting for headers),
#: each in a worker thread; the others wait their turn in a queue, holding no thread.
SETUP_SLOTS = 8


class SetupGate:
    """Lets at most ``slots`` streams through their blocking opening at once. Under the GIL more
    would not open faster: they would only take turns with each other and with the reactor, whose
    events then wait behind them."""

    def __init__(self, slots: int) -> None:
        self._lock = threading.Lock()
        self._free = slots
        self._waiting: deque[Callable[[], None]] = deque()

    def enter(self, resume: Callable[[], None]) -> bool:
        """Take a slot (True), or queue ``resume`` to run with one once a slot is free (False)."""
        with self._lock:
            if self._free:
                self._free -= 1
                return True
            self._waiting.append(resume)
            return False

    def leave(self) -> None:
        """Give the slot back, or straight to the next waiting stream."""
        with self._lock:
            resume = self._waiting.popleft() if self._waiting else None
            if resume is None:
                self._free += 1
        if resume is not None:
            threads.pool.submit(resume)


gate = SetupGate(SETUP_SLOTS)


def work(channel: Channel[T], open_iter: Callable[[], Iterator[T]], iterator: Iterator[T] | None = None, opening: bool = False) -> None:
    """The worker thread's body: open (unless resuming ``iterator``) and iterate; at a
    :class:`Handoff` (a blocking opening ahead) pass the setup gate; at a :class:`Wait`, hand the
    iterator to the reactor and exit; otherwise close the iterator here at the end, then report.
    ``opening``: resumed by the gate, with its slot."""
    error: BaseException | None = None
    handed_over = False
    try:
        if iterator is None:
            iterator = open_iter()
        elif channel.stopped:  # the consumer left while the stream waited for a slot
            return
        put = channel.put
        for item in iterator:
            kind = item.__class__
            if kind is HeadersIn:  # the request is open: its slot is free for the next stream
                if opening:
                    opening = False
                    gate.leave()
                continue
            if kind is Wait:
                reactor.reactor.adopt(channel, iterator, hand_back)
                handed_over = True
                break
            if kind is Handoff:
                if not opening:
                    if not gate.enter(functools.partial(work, channel, _no_opening, iterator, True)):
                        handed_over = True  # it goes on in the worker the gate gives it
                        break
                    opening = True
                continue
            if not put(item):
                break
    except BaseException as exc:  # handed to the consumer, which re-raises it
        error = exc
    finally:
        if opening:
            gate.leave()
        if not handed_over:
            channel.finish(close_iterator(iterator, error))


def hand_back(channel: Channel[T], iterator: Iterator[T]) -> None:
    """Resume ``iterator`` in a pooled worker (the reactor met a Handoff)."""
    try:
        threads.pool.submit(functools.partial(work, channel, _no_opening, iterator))
    except BaseException as exc:
        channel.finish(close_iterator(iterator, exc))


def _no_opening() -> Iterator[T]:  # pragma: no cover - work() is given the iterator itself
    raise AssertionError("a resumed stream is already open")


def start_worker(channel: Channel[T], open_iter: Callable[[], Iterator[T]]) -> None:
    """Hand the stream to a pooled thread. Called on the loop through its waker, so the streams that
    a burst of tasks start in one loop iteration get their threads together, after it: started one
    by one, each new thread competed with the loop for the GIL before the next one was asked for
    (200 streams took the loop 120-190 ms to start)."""
    if channel.stopped:  # the consumer left first: nothing to run
        channel.finish(None)
        return
    try:
        threads.pool.submit(functools.partial(work, channel, open_iter))
    except BaseException as exc:  # no thread to be had: the consumer gets the error
        channel.finish(exc)


def _forget_threads_after_fork() -> None:
    """In a forked child none of the parent's threads run: without this, a stream would be handed
    to an idle worker or a reactor that does not exist there, and wait forever."""
    global gate
    gate = SetupGate(SETUP_SLOTS)
    old = reactor.reactor
    threads.working.clear()
    threads.pool, reactor.reactor = threads.Pool(), reactor.Reactor()
    for resource in (old._selector, old._wake_in, old._wake_out):  # the child's copies only
        if resource is not None:
            resource.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads_after_fork)
