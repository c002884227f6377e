"""The anyio bridge (``hf_textgen.aio``) on asyncio and trio.

Early exits are checked against a real loopback TCP server that stalls between items: the server must
see the client hang up, and the worker thread must be gone, whichever way the consumer leaves.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import anyio
import anyio.to_thread
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_textgen import aio
from hf_textgen.aio import ThreadIterator, iterate_in_thread, run_sync
from hf_textgen.types import Wait

pytestmark = pytest.mark.anyio

WAIT = 5.0  # bounded waits, failing the test when exceeded; the design makes them ~immediate


def os_threads(idle_too: bool = False) -> int:
    """Threads of this process as the kernel counts them (the bridge's workers are not in threading),
    without the bridge's idle pooled threads unless ``idle_too``."""
    with open("/proc/self/status") as status:
        threads = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    return threads if idle_too else threads - aio.idle_workers()


def no_workers() -> bool:
    return aio.live_workers() == 0


async def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll without blocking the loop (the bridge must not need the loop to stop its worker)."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)


async def collect(iterator: AsyncIterator[object]) -> list[object]:
    return [item async for item in iterator]


# -- parity ---------------------------------------------------------------------------------------------


async def test_items_and_order_match_the_sync_iterator() -> None:
    assert await collect(iterate_in_thread(lambda: iter(range(20_000)))) == list(range(20_000))
    assert await collect(iterate_in_thread(lambda: iter([]))) == []


@settings(max_examples=30, deadline=None)
@given(items=st.lists(st.integers()), max_buffer=st.integers(1, 8), fail=st.booleans())
async def test_parity_with_any_buffer_size(items: list[int], max_buffer: int, fail: bool) -> None:
    def produce() -> Iterator[int]:
        yield from items
        if fail:
            raise KeyError("after the items")

    received: list[int] = []
    with pytest.raises(KeyError) if fail else contextlib.nullcontext():
        async for item in iterate_in_thread(produce, max_buffer=max_buffer):
            received.append(item)
    assert received == items


async def test_worker_error_keeps_type_and_message_after_the_items() -> None:
    class StreamBroke(Exception):
        pass

    def produce() -> Iterator[str]:
        yield "a"
        yield "b"
        raise StreamBroke("connection reset by peer")

    iterator = iterate_in_thread(produce)
    received = []
    with pytest.raises(StreamBroke, match="^connection reset by peer$"):
        async for item in iterator:
            received.append(item)
    assert received == ["a", "b"]
    assert await collect(iterator) == []  # finished, not raising twice
    await wait_until(no_workers)


async def test_open_error_is_raised_in_the_consumer() -> None:
    def refuse() -> Iterator[str]:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(ConnectionRefusedError, match="Connection refused"):
        await collect(iterate_in_thread(refuse))


def test_rejects_an_empty_buffer() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        iterate_in_thread(lambda: iter([]), max_buffer=0)


async def test_nothing_runs_before_the_first_item_and_after_aclose() -> None:
    opened = []

    def produce() -> Iterator[int]:
        opened.append(True)
        yield 1

    iterate_in_thread(produce)  # dropped unused: no thread, nothing opened
    iterator = iterate_in_thread(produce)
    await iterator.aclose()
    assert await collect(iterator) == []
    assert opened == []


# -- early exits against a stalled loopback server -------------------------------------------------------


class StallingServer:
    """Accepts one connection, sends ``lines`` lines, then stalls until the client hangs up."""

    def __init__(self, lines: int = 2) -> None:
        self.threads_before = os_threads()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = self.listener.getsockname()[1]
        self.lines = lines
        self.hung_up = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            conn.sendall(b"".join(b"line %d\n" % i for i in range(self.lines)))
            try:
                while conn.recv(1024):
                    pass
            except socket.timeout:
                return  # the client never hung up
            except OSError:
                pass  # reset: hung up too
            self.hung_up.set()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(6)


class LineClient:
    """What an HTTP stream looks like to the bridge: blocking reads, and a thread-safe interrupt."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.interrupted = False
        self.closed = threading.Event()

    def iterate(self) -> ThreadIterator[bytes]:
        return iterate_in_thread(self.open, self.interrupt)

    def open(self) -> Iterator[bytes]:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        with self.lock:
            self.sock = sock
            if self.interrupted:
                sock.shutdown(socket.SHUT_RDWR)
        return self._lines(sock)

    def _lines(self, sock: socket.socket) -> Iterator[bytes]:
        try:
            with sock:
                buffer = b""
                while chunk := sock.recv(4096):
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    yield from lines
        finally:
            self.closed.set()

    def interrupt(self) -> None:
        with self.lock:
            self.interrupted = True
            if self.sock is not None:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
async def server() -> AsyncIterator[StallingServer]:
    # Async, so the thread baseline includes the event loop's own threads (trio's guest-mode I/O thread).
    server = StallingServer()
    yield server
    server.close()


def stream(server: StallingServer) -> ThreadIterator[bytes]:
    return LineClient(server.port).iterate()


async def by_break(server: StallingServer) -> None:
    async for _ in stream(server):
        break  # the iterator is dropped here: __del__ stops it


async def by_aclose(server: StallingServer) -> None:
    client = LineClient(server.port)
    iterator = client.iterate()
    assert await iterator.__anext__() == b"line 0"
    await iterator.aclose()
    assert client.closed.is_set()  # aclose waited for the worker to close the stream


async def by_async_with(server: StallingServer) -> None:
    async with stream(server) as iterator:
        async for _ in iterator:
            break


async def by_consumer_error(server: StallingServer) -> None:
    with pytest.raises(LookupError):
        async for _ in stream(server):
            raise LookupError


async def by_cancellation(server: StallingServer) -> None:
    started = anyio.Event()

    async def consume() -> None:
        async for _ in stream(server):
            started.set()  # then waits in __anext__ for a line that never comes

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await started.wait()
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()


async def by_timeout(server: StallingServer) -> None:
    iterator = stream(server)
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.2):
            async for _ in iterator:
                pass


@pytest.mark.parametrize(
    "leave", [by_break, by_aclose, by_async_with, by_consumer_error, by_cancellation, by_timeout]
)
async def test_early_exit_hangs_up_and_ends_the_worker(
    server: StallingServer, leave: Callable[[StallingServer], Awaitable[None]]
) -> None:
    await leave(server)
    await wait_until(server.hung_up.is_set)
    await wait_until(lambda: no_workers() and os_threads() <= server.threads_before)


async def test_aclose_waits_even_when_cancelled(server: StallingServer) -> None:
    client = LineClient(server.port)
    iterator = client.iterate()
    await iterator.__anext__()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await iterator.aclose()  # shielded
    assert client.closed.is_set()
    await wait_until(server.hung_up.is_set)


async def test_a_failing_interrupt_does_not_break_aclose(server: StallingServer) -> None:
    client = LineClient(server.port)

    def interrupt() -> None:
        client.interrupt()
        raise OSError("already closed")

    iterator = iterate_in_thread(client.open, interrupt)
    await iterator.__anext__()
    await iterator.aclose()
    assert client.closed.is_set()


async def test_a_fast_endless_producer_can_be_cancelled() -> None:
    received = 0
    with anyio.CancelScope() as scope:
        async for _ in iterate_in_thread(itertools.count):
            received += 1
            if received == 1000:  # the worker runs ahead meanwhile, as fast as it can
                scope.cancel()
    assert scope.cancelled_caught and received >= 1000
    await wait_until(no_workers)


# -- backpressure, responsiveness, concurrency -----------------------------------------------------------


async def test_a_slow_consumer_bounds_the_buffer() -> None:
    max_buffer = 64
    produced = 0

    def produce() -> Iterator[int]:
        nonlocal produced
        for i in range(100_000):
            produced += 1
            yield i

    consumed = worst_lead = 0
    async for _ in iterate_in_thread(produce, max_buffer=max_buffer):
        consumed += 1
        worst_lead = max(worst_lead, produced - consumed)
        if consumed % 997 == 0:  # a prime: pauses land at every position within a batch
            await anyio.sleep(0.005)  # let the worker run as far ahead as it can
    assert consumed == 100_000
    assert 0 < worst_lead <= max_buffer + 1  # + the item waiting in the worker's hand


async def test_the_loop_keeps_running_while_the_worker_blocks() -> None:
    release = threading.Event()
    ticks = 0

    def produce() -> Iterator[str]:
        release.wait(10)  # blocked until the ticker has ticked: impossible if the loop were blocked
        yield "done"

    async def ticker() -> None:
        nonlocal ticks
        while ticks < 20:
            await anyio.sleep(0.001)
            ticks += 1
        release.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            assert await collect(iterate_in_thread(produce)) == ["done"]
    assert ticks == 20


async def test_200_blocked_workers_run_at_once_each_in_its_own_thread() -> None:
    streams = 200
    first_items = 0
    finished = 0
    all_started = threading.Event()
    lock = threading.Lock()

    def produce() -> Iterator[str]:
        nonlocal finished
        yield "first"
        all_started.wait(10)  # a 40-thread cap would leave 160 streams unstarted: no release
        with lock:
            finished += 1
        yield "last"

    async def consume() -> None:
        nonlocal first_items
        async with iterate_in_thread(produce) as iterator:
            assert await iterator.__anext__() == "first"
            first_items += 1
            if first_items == streams:
                assert finished == 0
                all_started.set()
            assert await collect(iterator) == ["last"]

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(streams):
                tg.start_soon(consume)
    assert first_items == finished == streams
    await wait_until(no_workers)


async def test_run_sync_is_not_capped_at_40_threads() -> None:
    barrier = threading.Barrier(60, timeout=5)  # breaks unless all 60 calls run at once
    results = []

    async def call() -> None:
        results.append(await run_sync(barrier.wait))

    async with anyio.create_task_group() as tg:
        for _ in range(60):
            tg.start_soon(call)
    assert sorted(results) == list(range(60))


async def test_run_sync_returns_and_raises() -> None:
    assert await run_sync(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        await run_sync(divmod, 1, 0)


# -- the reactor: iterators that yield a Wait instead of blocking ---------------------------------------


def socket_lines(sock: socket.socket, patience: float = WAIT, closed: threading.Event | None = None) -> Iterator[object]:
    """Lines received on ``sock``, read without blocking as the HTTP body reader does: a ``Wait``
    when nothing has arrived, and TimeoutError once nothing came for ``patience`` seconds."""
    sock.setblocking(False)
    pending = b""
    try:
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                until = time.monotonic() + patience
                while True:
                    yield Wait(sock, until)
                    try:
                        data = sock.recv(65536)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= until:
                            raise TimeoutError(f"nothing for {patience} s") from None
            if not data:
                return
            *lines, pending = (pending + data).split(b"\n")
            yield from lines
    finally:
        sock.close()
        if closed is not None:
            closed.set()


@contextlib.contextmanager
def socket_pairs(count: int) -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    pairs = [socket.socketpair() for _ in range(count)]
    try:
        yield pairs
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


async def test_streams_waiting_for_data_share_one_reactor_thread() -> None:
    streams = 50
    threads_before = os_threads()
    with socket_pairs(streams) as pairs:
        for _, sender in pairs:
            sender.sendall(b"first\n")
        iterators = [iterate_in_thread(functools.partial(socket_lines, ours)) for ours, _ in pairs]
        for iterator in iterators:
            assert await iterator.__anext__() == b"first"
        # every worker handed its iterator to the reactor and went back to the pool
        await wait_until(lambda: aio.live_workers() == 1 and os_threads() <= threads_before + 1)
        for _, sender in pairs:
            sender.sendall(b"second\nlast\n")
            sender.shutdown(socket.SHUT_WR)
        for iterator in iterators:
            assert await collect(iterator) == [b"second", b"last"]
    await wait_until(no_workers)


async def test_a_wait_that_times_out_ends_in_the_iterators_own_error() -> None:
    with socket_pairs(1) as [(ours, sender)]:
        sender.sendall(b"first\n")
        iterator = iterate_in_thread(lambda: socket_lines(ours, patience=0.2))
        assert await iterator.__anext__() == b"first"
        with pytest.raises(TimeoutError, match="nothing for 0.2 s"):
            await iterator.__anext__()
    await wait_until(no_workers)


async def test_the_reactor_stops_reading_for_a_slow_consumer() -> None:
    max_buffer = 64
    lines = 20_000
    produced = 0

    def counted(sock: socket.socket) -> Iterator[object]:
        nonlocal produced
        for item in socket_lines(sock):
            if type(item) is bytes:
                produced += 1
            yield item

    with socket_pairs(1) as [(ours, sender)]:
        sender.sendall(b"first\n")
        writer = threading.Thread(target=lambda: (sender.sendall(b"x\n" * lines), sender.shutdown(socket.SHUT_WR)))
        worst_lead = 0
        async with iterate_in_thread(lambda: counted(ours), max_buffer=max_buffer) as iterator:
            assert await iterator.__anext__() == b"first"
            consumed = 1  # ``produced`` counted it too (not counting it here made the lead one too many)
            await wait_until(lambda: aio.live_workers() == 1)  # only the reactor reads it now
            writer.start()
            async for _ in iterator:
                consumed += 1
                worst_lead = max(worst_lead, produced - consumed)
                if consumed % 997 == 0:  # a prime: pauses land at every position within a batch
                    await anyio.sleep(0.005)  # let the reactor run as far ahead as it can
        writer.join(WAIT)
    assert consumed == 1 + lines
    # ``produced`` counts an item when the generator yields it, a step before the reactor offers it
    assert 0 < worst_lead <= max_buffer + 1
    await wait_until(no_workers)


@pytest.mark.parametrize("leave", ["break", "aclose", "cancel"])
async def test_leaving_a_parked_stream_closes_its_iterator_without_an_interrupt(leave: str) -> None:
    closed = threading.Event()
    with socket_pairs(1) as [(ours, sender)]:
        sender.sendall(b"first\n")
        iterator = iterate_in_thread(lambda: socket_lines(ours, patience=60, closed=closed))  # no interrupt()
        assert await iterator.__anext__() == b"first"
        await wait_until(lambda: aio.live_workers() == 1)  # parked in the reactor: nothing to read
        if leave == "break":
            del iterator
        elif leave == "aclose":
            await iterator.aclose()
            assert closed.is_set()  # aclose waits for the close
        else:
            with anyio.move_on_after(0.05):
                await iterator.__anext__()
        await wait_until(closed.is_set)
    await wait_until(no_workers)


@pytest.mark.slow
async def test_idle_pooled_threads_exit_on_their_own() -> None:
    threads_before = os_threads(idle_too=True) - aio.idle_workers()
    assert await collect(iterate_in_thread(lambda: iter(range(3)))) == [0, 1, 2]
    await wait_until(no_workers)
    assert aio.idle_workers() >= 1  # kept for the next stream...
    await wait_until(lambda: aio.idle_workers() == 0 and os_threads(idle_too=True) <= threads_before, timeout=3.0)


def test_a_forked_child_starts_its_own_threads() -> None:
    """The parent has idle pooled threads and a reactor with a parked stream when it forks; the
    child has neither thread, and its streams must still run (multiprocessing's fork, gunicorn)."""
    parked = threading.Event()
    release = threading.Event()

    async def park_one(ours: socket.socket) -> None:
        iterator = iterate_in_thread(lambda: socket_lines(ours))
        assert await iterator.__anext__() == b"first"
        await wait_until(lambda: aio.live_workers() == 1 and aio.idle_workers() >= 1)  # the reactor holds it
        parked.set()
        await anyio.to_thread.run_sync(release.wait)
        await iterator.aclose()

    async def child_stream() -> list[object]:
        with socket_pairs(1) as [(ours, sender)], anyio.fail_after(WAIT):
            sender.sendall(b"a\n")
            iterator = iterate_in_thread(lambda: socket_lines(ours))
            got = [await iterator.__anext__()]  # needs a worker thread of the child's own
            await wait_until(lambda: aio.live_workers() == 1)  # the child's own reactor
            sender.sendall(b"b\n")
            sender.shutdown(socket.SHUT_WR)
            return got + await collect(iterator)

    with socket_pairs(1) as [(ours, sender)]:
        sender.sendall(b"first\n")
        parent = threading.Thread(target=anyio.run, args=(park_one, ours))
        parent.start()
        assert parked.wait(WAIT) and aio.idle_workers() >= 1
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only
            try:
                os._exit(0 if anyio.run(child_stream) == [b"a", b"b"] else 1)
            except BaseException:
                os._exit(2)
        release.set()
        parent.join(WAIT)
        status = child_status(pid, timeout=3 * WAIT)
    assert status == 0, f"the child exited with {status}"


def child_status(pid: int, timeout: float) -> int | None:
    """The exit status of child ``pid``, or None (and the child killed) if it runs past ``timeout``."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


def test_event_loops_in_two_threads_share_the_reactor() -> None:
    """An asyncio loop and a trio loop, each in its own thread, with streams parked in one reactor."""
    streams = 10
    both_parked = threading.Barrier(2, timeout=WAIT)
    results: dict[str, object] = {}

    async def run_streams(backend: str) -> None:
        with socket_pairs(streams) as pairs:
            for _, sender in pairs:
                sender.sendall(b"first\n")
            iterators = [iterate_in_thread(functools.partial(socket_lines, ours)) for ours, _ in pairs]
            firsts = [await iterator.__anext__() for iterator in iterators]
            await wait_until(lambda: aio.live_workers() <= 2)  # parked: the reactor, maybe a worker of the other loop
            await anyio.to_thread.run_sync(both_parked.wait)  # both loops' streams are in the reactor now
            for _, sender in pairs:
                sender.sendall(b"last\n")
                sender.shutdown(socket.SHUT_WR)
            rests = [await collect(iterator) for iterator in iterators]
        results[backend] = (firsts, rests)

    threads = [threading.Thread(target=anyio.run, args=(run_streams, backend), kwargs={"backend": backend}) for backend in ("asyncio", "trio")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3 * WAIT)
    expected = ([b"first"] * streams, [[b"last"]] * streams)
    assert results == {"asyncio": expected, "trio": expected}
