"""The measurements, run inside a worker process against one client adapter.

Each operation returns a flat dict of numbers (milliseconds unless named otherwise). Operations are
written once; a driver supplies the only part that differs between sync and async clients: how a
stream is iterated.
"""
from __future__ import annotations

import gc
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine, Dict, Iterable, List, Optional

from clients import Client, stream_spec

Result = Dict[str, Any]
PRIMING = stream_spec(1)
SETTLE_S = 2.0  # how long abandoned streams get to release their threads and sockets


# --------------------------------------------------------------------------------------------------
# Summaries


def percentile(sorted_values: List[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def spread_ms(values_ns: Iterable[int], fractions: Iterable[float] = (0.5, 0.99)) -> Result:
    """``p50_ms``, ``p99_ms`` (the ``fractions``) and ``max_ms`` of nanosecond values."""
    ordered = sorted(values_ns)
    out = {f"p{round(f * 100)}_ms": percentile(ordered, f) / 1e6 for f in fractions}
    out["max_ms"] = (ordered[-1] if ordered else float("nan")) / 1e6
    return out


@dataclass
class Record:
    """One stream as a client saw it (``time.monotonic_ns`` times)."""

    ask: int
    first: int = 0
    end: int = 0
    latencies: List[int] = field(default_factory=list)


def most_overlapping(records: List[Record]) -> int:
    """The most streams receiving at once: between their first event and their end."""
    edges = sorted([(r.first, 1) for r in records] + [(r.end, -1) for r in records])
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best


def check_count(record: Record, expected: int) -> None:
    if len(record.latencies) != expected:
        raise AssertionError(f"expected {expected} content events, got {len(record.latencies)}")


def resources() -> Dict[str, int]:
    """Threads of this process and its open sockets (Linux /proc)."""
    sockets = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return {"threads": len(os.listdir("/proc/self/task")), "sockets": sockets}


# --------------------------------------------------------------------------------------------------
# Drivers: the only code that differs between sync and async clients. The operations below are
# written once as coroutines; a sync driver never suspends, so they run to completion in one step.


class Driver:
    """Iterates a client's streams: blocking (sync clients) or awaited (async clients)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def record(self, spec: str, record: Optional[Record] = None) -> Record:
        """Iterate one stream; each content delta is its send time (ns): keep the latency added."""
        raise NotImplementedError

    async def abandon(self, spec: str) -> None:
        """Open a stream and stop iterating after its first content delta (``break``)."""
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError


def taker(record: Record, text: Callable[[Any], Optional[str]]) -> Callable[[Any], None]:
    """What a driver does with each chunk: a content delta is its send time, keep the latency."""
    latencies = record.latencies

    def take(chunk: Any) -> None:
        content = text(chunk)
        if content is not None:
            now = time.monotonic_ns()
            if not latencies:
                record.first = now
            latencies.append(now - int(content))

    return take


class SyncDriver(Driver):
    async def record(self, spec: str, record: Optional[Record] = None) -> Record:
        record = record or Record(time.monotonic_ns())
        take = taker(record, self.client.text)
        for chunk in self.client.open(spec):
            take(chunk)
        record.end = time.monotonic_ns()
        return record

    async def abandon(self, spec: str) -> None:
        for chunk in self.client.open(spec):
            if self.client.text(chunk) is not None:
                break

    async def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class AsyncDriver(Driver):
    async def record(self, spec: str, record: Optional[Record] = None) -> Record:
        record = record or Record(time.monotonic_ns())
        take = taker(record, self.client.text)
        async for chunk in await self.client.open(spec):
            take(chunk)
        record.end = time.monotonic_ns()
        return record

    async def abandon(self, spec: str) -> None:
        async for chunk in await self.client.open(spec):
            if self.client.text(chunk) is not None:
                break

    async def sleep(self, seconds: float) -> None:
        import anyio

        await anyio.sleep(seconds)


# --------------------------------------------------------------------------------------------------
# Operations


async def throughput(driver: Driver, spec: str, events: int) -> Result:
    """One long stream without gaps: events/s and the client's CPU per event."""
    cpu, wall = time.process_time(), time.perf_counter()
    record = await driver.record(spec)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    check_count(record, events)
    return {"events_per_s": events / wall, "cpu_us_per_event": cpu / events * 1e6, "wall_s": wall}


async def fixed(driver: Driver, spec: str, streams: int, events: int) -> Result:
    """Sequential short streams: the time of each, whole."""
    durations = []
    for _ in range(streams):
        record = await driver.record(spec)
        check_count(record, events)
        durations.append(record.end - record.ask)
    return spread_ms(durations, (0.5, 0.9))


async def latency(driver: Driver, spec: str, events: int) -> Result:
    """One stream with gaps: the latency added to each event, and the time to the first."""
    record = await driver.record(spec)
    check_count(record, events)
    return {"ttfe_ms": (record.first - record.ask) / 1e6, **spread_ms(record.latencies)}


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def concurrency(driver: Driver, spec: str, streams: int, events: int) -> Result:
    """``streams`` streams started together on one event loop (async clients only); meanwhile the
    process's threads and resident memory are sampled every 20 ms, and its sockets counted before
    and once the streams are over (after gc and up to 2 s to settle)."""
    import anyio

    gc.collect()
    before, rss_before = resources(), rss_mb()
    peak = {"threads": before["threads"], "rss": rss_before}
    start = time.monotonic_ns()
    records = [Record(start) for _ in range(streams)]

    async def sample() -> None:
        while True:
            peak["threads"] = max(peak["threads"], resources()["threads"])
            peak["rss"] = max(peak["rss"], rss_mb())
            await anyio.sleep(0.02)

    async with anyio.create_task_group() as outer:
        outer.start_soon(sample)
        async with anyio.create_task_group() as group:
            for record in records:
                group.start_soon(driver.record, spec, record)
        wall = time.monotonic_ns() - start
        outer.cancel_scope.cancel()
    for record in records:
        check_count(record, events)
    gc.collect()
    deadline = time.monotonic() + SETTLE_S
    while resources()["sockets"] > before["sockets"] and time.monotonic() < deadline:
        await driver.sleep(0.05)
    return {
        "wall_s": wall / 1e9,
        **spread_ms(lat for r in records for lat in r.latencies),
        "start_max_ms": max(r.first - start for r in records) / 1e6,
        "max_overlap": most_overlapping(records),
        "threads_before": before["threads"],
        "threads_peak": peak["threads"],
        "rss_added_mb": peak["rss"] - rss_before,
        "sockets_before": before["sockets"],
        "sockets_after": resources()["sockets"],
    }


async def abandon(driver: Driver, spec: str, streams: int) -> Result:
    """Streams left after their first event: threads and sockets left once they had time to close."""
    gc.collect()
    await driver.sleep(0.2)  # what earlier streams (the priming one) leave is not counted
    before = resources()
    for _ in range(streams):
        await driver.abandon(spec)
    gc.collect()
    deadline = time.monotonic() + SETTLE_S
    while not back_to(before) and time.monotonic() < deadline:
        await driver.sleep(0.05)
    after = resources()
    return {
        "streams": streams,
        "threads_before": before["threads"],
        "threads_after": after["threads"],
        "sockets_before": before["sockets"],
        "sockets_after": after["sockets"],
    }


def back_to(before: Dict[str, int]) -> bool:
    now = resources()
    return now["threads"] <= before["threads"] and now["sockets"] <= before["sockets"]


async def rss(driver: Driver, spec: str, events: int) -> Result:
    """Peak resident memory of this (fresh) process around one long stream."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    await throughput(driver, spec, events)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mb": after / 1024, "stream_mb": (after - before) / 1024}


OPS: Dict[str, Callable[..., Coroutine[Any, Any, Result]]] = {
    "throughput": throughput,
    "fixed": fixed,
    "latency": latency,
    "concurrency": concurrency,
    "abandon": abandon,
    "rss": rss,
}


def run(client: Client, op: str, args: Dict[str, Any], limit_s: float) -> Result:
    """Run one operation: a sync client's at once, an async client's in a fresh event loop on its
    backend, bounded by ``limit_s`` (the orchestrator also kills a worker that does not answer)."""
    if client.kind == "sync":
        return run_blocking(OPS[op](SyncDriver(client), **args))
    import anyio

    async def bounded() -> Result:
        await client.start()
        try:
            with anyio.fail_after(limit_s):
                driver = AsyncDriver(client)
                await driver.record(PRIMING)  # the first stream of a loop sets up what a long-lived app keeps
                return await OPS[op](driver, **args)
        finally:
            with anyio.move_on_after(5, shield=True):
                await client.stop()

    return anyio.run(bounded, backend=client.backend)


def run_blocking(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """Finish a coroutine that never suspends (one driven by a SyncDriver)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise RuntimeError("a sync operation tried to suspend")
