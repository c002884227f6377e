"""A hostile HTTP/1.1 server for fault injection: 127.0.0.1 only, standard library, its own threads.

Each request is handed to a script, ``script(conn)``, which answers with exactly the bytes and the
timing it wants (drip, stall, cut inside a chunk, reset, never end) through :class:`Conn`. The server
also watches the client: ``conn.client_closed`` is set as soon as the client closes its socket, whether
the script is sending (EPIPE / reset), waiting (``conn.wait``) or the connection is idle between
requests, so tests can assert that every socket was closed and how fast.

    with HostileServer(script) as server:
        ...                                  # point the client at server.url
        assert server.all_closed(2.0)        # every connection closed by the client
"""
from __future__ import annotations

import json
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

LOOPBACK = "127.0.0.1"


class ClientGone(Exception):
    """The client closed (or reset) its end while the script was sending or waiting."""


@dataclass
class Request:
    method: str
    path: str
    headers: Dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Conn:
    """One connection as the server sees it, and the script's tools to answer on it."""

    sock: socket.socket
    requests: List[Request] = field(default_factory=list)
    framing: str = "chunked"
    client_closed: threading.Event = field(default_factory=threading.Event)
    closed_at: Optional[float] = None  # time.monotonic() when the client's close was seen
    reset: bool = False  # the server reset the connection: the client's close cannot be observed
    over: bool = False  # the script ended the connection (cut or reset): no further request
    server_stopping: bool = False  # the server is shutting the socket down itself: not the client

    @property
    def request(self) -> Request:
        return self.requests[-1]

    def gone(self) -> None:
        if not self.client_closed.is_set() and not self.server_stopping:
            self.closed_at = time.monotonic()
            self.client_closed.set()

    # -- sending ----------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.gone()
            raise ClientGone from None

    def head(self, status: int = 200, content_type: str = "text/event-stream", framing: str = "chunked", headers: Optional[Dict[str, str]] = None, length: Optional[int] = None) -> None:
        """The status line and headers. ``framing``: ``chunked``, ``close`` (until EOF) or ``length``."""
        self.framing = framing
        lines = [f"HTTP/1.1 {status} Hostile", f"Content-Type: {content_type}"] if content_type else [f"HTTP/1.1 {status} Hostile"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
        elif framing == "close":
            lines.append("Connection: close")
        else:
            lines.append(f"Content-Length: {length}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def body(self, data: bytes) -> None:
        """Part of the body in the current framing (one chunk when chunked)."""
        if data:
            self.send(b"%x\r\n%s\r\n" % (len(data), data) if self.framing == "chunked" else data)

    def end(self) -> None:
        """A clean end of the body: the last chunk, or a close for close-delimited framing."""
        if self.framing == "chunked":
            self.send(b"0\r\n\r\n")
        elif self.framing == "close":
            self.cut()

    def reply(self, status: int, body: bytes = b"", content_type: str = "application/json", headers: Optional[Dict[str, str]] = None) -> None:
        """A whole response with a Content-Length."""
        self.head(status, content_type, "length", headers, len(body))
        self.send(body)

    def reply_json(self, status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> None:
        self.reply(status, json.dumps(payload).encode(), "application/json", headers)

    # -- waiting and closing ----------------------------------------------------------------------
    def wait(self, seconds: float) -> None:
        """Sleep while watching the socket: raise ClientGone as soon as the client closes."""
        until = time.monotonic() + seconds
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([self.sock], [], [], left)
            if readable:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.gone()
                    raise ClientGone

    def wait_for(self, event: threading.Event, timeout: float = 5.0) -> None:
        """Wait (watching the socket) until the test sets ``event``."""
        until = time.monotonic() + timeout
        while not event.is_set() and time.monotonic() < until:
            self.wait(0.01)

    def hold(self, seconds: float = 10.0) -> None:
        """Say nothing more; return when the client closes (or after ``seconds``)."""
        try:
            self.wait(seconds)
        except ClientGone:
            pass

    def cut(self) -> None:
        """Half-close (FIN) without finishing the body; the server then waits for the client's close."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.over = True

    def reset_now(self) -> None:
        """Close with a TCP reset (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.reset = self.over = True
        self.client_closed.set()


Script = Callable[[Conn], None]


class HostileServer:
    """``with HostileServer(script) as server:``; ``server.conns`` lists every connection."""

    def __init__(self, script: Script, name: str = "hostile") -> None:
        self.script = script
        self.conns: List[Conn] = []
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._threads: List[threading.Thread] = []
        self._name = name
        self._lock = threading.Lock()

    @property
    def requests(self) -> List[Request]:
        with self._lock:
            return [request for conn in self.conns for request in conn.requests]

    def __enter__(self) -> "HostileServer":
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        try:  # wakes the thread blocked in accept() (close() alone does not, on Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns = list(self.conns)
        for conn in conns:
            conn.server_stopping = True
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in list(self._threads):
            thread.join(5)

    def all_closed(self, timeout: float) -> bool:
        """Whether the client has closed every connection, waiting up to ``timeout`` seconds."""
        until = time.monotonic() + timeout
        with self._lock:
            conns = list(self.conns)
        return all(conn.client_closed.wait(max(0.0, until - time.monotonic())) for conn in conns)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"{self._name}-{self.port}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            conn = Conn(sock)
            with self._lock:
                self.conns.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: Conn) -> None:
        reader = conn.sock.makefile("rb")
        try:
            while not conn.over:
                request = _read_request(reader)
                if request is None:
                    conn.gone()
                    return
                with self._lock:
                    conn.requests.append(request)
                self.script(conn)
                if conn.framing == "close" and not conn.over:
                    conn.cut()
            if not conn.reset:
                conn.hold()
        except ClientGone:
            pass
        except (OSError, ValueError):
            conn.gone()
        finally:
            reader.close()
            if not conn.reset:
                conn.sock.close()


def _read_request(reader: Any) -> Optional[Request]:
    line = reader.readline(65536)
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: Dict[str, str] = {}
    while True:
        header = reader.readline(65536).decode("latin-1").rstrip("\r\n")
        if not header:
            break
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


# -- what a client looks like from inside the test process ------------------------------------------


def native_threads() -> int:
    """How many OS threads of this process are at work (Linux), including those ``threading`` does
    not list (the async bridge starts its workers with ``_thread.start_new_thread``). The bridge's
    idle pooled threads are not counted: they hold nothing and exit after a second (test_aio)."""
    from hf_textgen import aio

    try:
        return len(os.listdir("/proc/self/task")) - aio.idle_workers()
    except OSError:
        return threading.active_count()


def open_sockets() -> Set[str]:
    """The inodes of every socket this process holds open (Linux; empty elsewhere)."""
    found = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


# -- SSE bodies --------------------------------------------------------------------------------------


def event(payload: Any, name: Optional[str] = None) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()


def delta(content: Optional[str] = None, finish: Optional[str] = None) -> Dict[str, Any]:
    chunk_delta = {} if content is None else {"content": content}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": chunk_delta, "finish_reason": finish}]}


def text_events(*texts: str) -> List[bytes]:
    return [event(delta(text)) for text in texts]


def full_stream(*texts: str) -> List[bytes]:
    return text_events(*texts) + [event(delta(finish="stop")), b"data: [DONE]\n\n"]


def stream(events: Iterable[bytes], framing: str = "chunked", gap: float = 0.0) -> Script:
    """A script that streams ``events`` (``gap`` seconds apart) and ends cleanly."""
    events = list(events)

    def script(conn: Conn) -> None:
        conn.head(framing=framing)
        for index, data in enumerate(events):
            if gap and index:
                conn.wait(gap)
            conn.body(data)
        conn.end()

    return script
