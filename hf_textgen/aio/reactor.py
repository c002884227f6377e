"""The reactor: one thread that drives every stream past its blocking part, resuming each when
its socket is readable or its wait has timed out. Standard library only."""
from __future__ import annotations

import heapq
import itertools
import logging
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..types import Handoff, HeadersIn, Wait
from .channel import Channel
from .threads import close_iterator, spawn, working

log = logging.getLogger("hf_textgen.aio")


class Parked:
    """A stream the reactor owns: its iterator, and the socket and time it waits for."""

    __slots__ = ("channel", "iterator", "hand_back", "sock", "until", "scheduled", "queued", "over")

    def __init__(self, channel: Channel[Any], iterator: Iterator[Any], hand_back: Callable[[Channel[Any], Iterator[Any]], None]) -> None:
        self.channel = channel
        self.iterator = iterator
        self.hand_back = hand_back  # resumes the iterator in a worker thread
        self.sock: Any = None  # registered with the selector while not None
        self.until = math.inf
        self.scheduled: float | None = None  # the time of its live entry in the reactor's heap
        self.queued = False  # in the reactor's ready list
        self.over = False


class Reactor:
    """One thread drives every stream that has been handed over: when a stream's socket is readable,
    or its :class:`Wait` has timed out, it resumes the stream's iterator until it waits again, ends,
    or fills its buffer. The iterators read without blocking (they yield a ``Wait`` instead), so one
    thread serves hundreds of streams with no thread switch per event, which under the GIL is what
    a thread per stream spends most of its time on. The thread exits when no stream is left.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _ready, _running and _poked
        self._ready: list[Parked] = []
        self._running = False
        self._poked = False
        self._selector: selectors.BaseSelector | None = None
        self._wake_in: socket.socket | None = None
        self._wake_out: socket.socket | None = None
        self._heap: list[tuple[float, int, Parked]] = []
        self._sequence = itertools.count()

    # -- any thread -------------------------------------------------------------------------------------
    def adopt(self, channel: Channel[Any], iterator: Iterator[Any], hand_back: Callable[[Channel[Any], Iterator[Any]], None]) -> None:
        """Take over ``iterator``, which has just yielded a :class:`Wait`. Only this thread touches
        the selector, so the stream is resumed here first: its reader tries again, then waits anew."""
        stream = Parked(channel, iterator, hand_back)
        with channel.lock:
            channel.resume_producer = lambda: self._resume(stream)
        self._resume(stream)

    def _resume(self, stream: Parked) -> None:
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
            spawn(self._run)
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
            working.pop()

    def _drain_wake_ups(self) -> None:
        try:
            while self._wake_in.recv(4096):  # type: ignore[union-attr]
                pass
        except BlockingIOError:
            pass

    def _advance(self, stream: Parked) -> None:
        """Resume the stream until it waits, ends, or must pause for its consumer."""
        if stream.over:
            return
        channel, iterator = stream.channel, stream.iterator
        error: BaseException | None = None
        try:
            offer = channel.offer
            if not channel.stopped:
                for item in iterator:
                    kind = item.__class__
                    if kind is Wait:
                        self._park(stream, item)
                        return
                    if kind is HeadersIn:
                        continue
                    if kind is Handoff:  # a blocking step ahead: not in this thread
                        self._release(stream)
                        stream.hand_back(channel, iterator)
                        return
                    if not offer(item):
                        if channel.stopped:
                            break
                        self._unregister(stream)  # paused: the consumer's next take resumes it
                        return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            error = exc
        self._release(stream)
        channel.finish(close_iterator(iterator, error))

    def _release(self, stream: Parked) -> None:
        """The stream leaves the reactor (it ended, or goes back to a worker)."""
        stream.over = True
        stream.scheduled = None  # its heap entries are stale now
        self._unregister(stream)
        stream.iterator = None  # type: ignore[assignment]
        with stream.channel.lock:
            stream.channel.resume_producer = None

    def _park(self, stream: Parked, wait: Wait) -> None:
        if stream.sock is not wait.sock:
            self._unregister(stream)
            self._selector.register(wait.sock, selectors.EVENT_READ, stream)  # type: ignore[union-attr]
            stream.sock = wait.sock
        stream.until = wait.until
        if stream.scheduled is None or wait.until < stream.scheduled:
            stream.scheduled = wait.until
            heapq.heappush(self._heap, (wait.until, next(self._sequence), stream))

    def _unregister(self, stream: Parked) -> None:
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


reactor = Reactor()
