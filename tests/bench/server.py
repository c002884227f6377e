"""Loopback benchmark server: OpenAI-compatible ``chat.completion.chunk`` SSE streams.

Standard library only, one asyncio process, 127.0.0.1 only. Any POST path is accepted; the stream's
shape is an extra field of the JSON body (every client under test can add one)::

    {"model": ..., "messages": ..., "bench": "<events>/<gap_us>/<framing>"}     framing: chunked | close

Each content delta is the event's send time, ``time.monotonic_ns()`` as decimal text (CLOCK_MONOTONIC
is system-wide on Linux, so a client process on this machine subtracts it from its own clock to get
the latency it added). The stream ends with a ``finish_reason: "stop"`` event and ``data: [DONE]``.
With a gap, event *i* is due at ``start + i * gap`` (absolute times: no drift); how late the server
was is counted. Without a gap, events are written in batches while the socket accepts them.

Control: run as a script, it prints ``{"port": ..., "pid": ..., "scheduling": ...}`` on stdout, then answers one JSON
line per command line on stdin (``{"op": "stats", "reset": true}``), and exits when stdin closes or
after ``--max-seconds``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Optional

SHAPE = re.compile(rb'"bench"\s*:\s*"(\d+)/(\d+)/(chunked|close)"')
BATCH = 128  # events per write when there is no gap
MAX_HEAD = 65536

EVENT_HEAD = (
    b'data: {"id":"bench","object":"chat.completion.chunk","created":0,"model":"bench/model",'
    b'"choices":[{"index":0,"delta":{"content":"'
)
EVENT_TAIL = b'"},"finish_reason":null}]}\n\n'
FINAL = (
    b'data: {"id":"bench","object":"chat.completion.chunk","created":0,"model":"bench/model",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def event(stamp_ns: int) -> bytes:
    """One SSE event whose content is its send time."""
    return b"%s%d%s" % (EVENT_HEAD, stamp_ns, EVENT_TAIL)


def frame(payload: bytes, chunked: bool) -> bytes:
    """``payload`` as one HTTP/1.1 chunk, or as is when the body is close-delimited."""
    return b"%x\r\n%s\r\n" % (len(payload), payload) if chunked else payload


def response_head(chunked: bool) -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else "Connection: close"
    return f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n{framing}\r\n\r\n".encode()


@dataclass
class Stats:
    """Counters since the last reset; ``open`` is the connections open now."""

    open: int = 0
    streams: int = 0
    events: int = 0
    late_max_ms: float = 0.0
    late_over_1ms: int = 0

    def reset(self) -> None:
        self.streams = self.events = self.late_over_1ms = 0
        self.late_max_ms = 0.0

    def late(self, seconds: float) -> None:
        ms = seconds * 1000.0
        if ms > 1.0:
            self.late_over_1ms += 1
        if ms > self.late_max_ms:
            self.late_max_ms = ms

    def snapshot(self) -> dict:
        return {**asdict(self), "cpu_s": time.process_time()}


class Job:
    """One response being streamed on a connection."""

    def __init__(self, conn: "Connection", events: int, gap_s: float, chunked: bool) -> None:
        self.conn = conn
        self.events = events
        self.gap_s = gap_s
        self.chunked = chunked
        self.sent = 0
        self.start = 0.0
        self.timer: Optional[asyncio.TimerHandle] = None

    def begin(self) -> None:
        self.conn.stats.streams += 1
        self.conn.write(response_head(self.chunked))
        self.start = self.conn.loop.time()
        if self.gap_s:
            self.tick()
        else:
            self.burst()

    def burst(self) -> None:
        """Write batches of events until done or the transport asks us to pause."""
        chunked = self.chunked
        while self.sent < self.events and not self.conn.paused and not self.conn.closed:
            count = min(BATCH, self.events - self.sent)
            self.conn.write(b"".join(frame(event(time.monotonic_ns()), chunked) for _ in range(count)))
            self.sent += count
            self.conn.stats.events += count
        if self.sent >= self.events:
            self.finish()

    def tick(self) -> None:
        """Write the event due now and schedule the next at its absolute time."""
        loop = self.conn.loop
        self.conn.stats.late(loop.time() - (self.start + self.sent * self.gap_s))
        self.conn.write(frame(event(time.monotonic_ns()), self.chunked))
        self.sent += 1
        self.conn.stats.events += 1
        if self.sent >= self.events:
            self.finish()
        else:
            self.timer = loop.call_at(self.start + self.sent * self.gap_s, self.tick)

    def finish(self) -> None:
        self.timer = None
        self.conn.write(frame(FINAL, self.chunked) + (b"0\r\n\r\n" if self.chunked else b""))
        self.conn.job_done(keep_alive=self.chunked)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive connection: parses requests, runs one Job at a time."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.transport: Optional[asyncio.Transport] = None
        self.job: Optional[Job] = None
        self.paused = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats.open += 1

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        self.stats.open -= 1
        if self.job is not None:
            self.job.cancel()
            self.job = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.job is not None and not self.job.gap_s:
            self.job.burst()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.job is None:
            self.next_request()

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def job_done(self, keep_alive: bool) -> None:
        self.job = None
        if not keep_alive:
            self.close()
        elif self.buffer:
            self.next_request()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()  # flushes what is buffered first

    def next_request(self) -> None:
        """Start the job of the request in the buffer, once its head and body have arrived."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self.reply_error(431)
            return
        head = bytes(self.buffer[:end])
        total = end + 4 + content_length(head)
        if len(self.buffer) < total:
            return
        match = SHAPE.search(self.buffer, end + 4, total)
        shape = match.groups() if match else None  # before the buffer changes under the match
        del self.buffer[:total]
        if shape is None:
            self.reply_error(400)
            return
        events, gap_us, framing = shape
        self.job = Job(self, int(events), int(gap_us) / 1e6, framing == b"chunked")
        self.job.begin()

    def reply_error(self, status: int) -> None:
        body = b'{"error": "bench server: POST a JSON body with \\"bench\\": \\"<events>/<gap_us>/<chunked|close>\\""}'
        self.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, len(body), body))
        self.close()


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def raise_fd_limit() -> None:
    """Hundreds of concurrent (or leaked) connections need more than a default 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def take_priority() -> str:
    """Run ahead of the clients when allowed (a real server does not share their CPU): SCHED_FIFO,
    so a client with hundreds of threads cannot starve the schedule. Returns the policy in force."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        return "SCHED_FIFO"
    except (AttributeError, OSError):
        return "normal (no permission for SCHED_FIFO)"


def serve_commands(stats: Stats, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Answer JSON-line commands from stdin (in this thread); stop the server when stdin closes."""
    for line in sys.stdin:
        command = json.loads(line)
        snapshot = stats.snapshot()
        if command.get("reset"):
            stats.reset()
        print(json.dumps(snapshot), flush=True)
    loop.call_soon_threadsafe(stop.set)


async def serve(port: int, max_seconds: float, priority: str) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    server = await loop.create_server(lambda: Connection(stats), "127.0.0.1", port, backlog=4096)
    hello = {"port": server.sockets[0].getsockname()[1], "pid": os.getpid(), "scheduling": priority}
    print(json.dumps(hello), flush=True)
    stop = asyncio.Event()
    threading.Thread(target=serve_commands, args=(stats, loop, stop), daemon=True).start()
    try:
        await asyncio.wait_for(stop.wait(), max_seconds)
    except asyncio.TimeoutError:
        print("bench server: --max-seconds reached, exiting", file=sys.stderr)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--realtime", action="store_true", help="try SCHED_FIFO (see take_priority)")
    args = parser.parse_args()
    raise_fd_limit()
    priority = take_priority() if args.realtime else "normal"
    asyncio.run(serve(args.port, args.max_seconds, priority))


if __name__ == "__main__":
    main()
