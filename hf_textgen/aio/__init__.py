"""The anyio bridge: blocking sync code presented to asyncio and trio callers. It knows nothing
about Hugging Face or HTTP; only :mod:`~hf_textgen.aio.loop` imports anyio.

    loop.py      the event loop's side: waking it, ThreadIterator, run_sync (imports anyio)
    channel.py   what a producer shares with its consumer: batches, backpressure, stop
    handover.py  a stream's way through the threads: worker, then reactor
    threads.py   the pooled worker threads and their count
    reactor.py   the one thread that resumes every waiting stream

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

from .loop import ThreadIterator, iterate_in_thread, run_sync
from .threads import idle_workers, live_workers

__all__ = ["ThreadIterator", "iterate_in_thread", "run_sync", "live_workers", "idle_workers"]
