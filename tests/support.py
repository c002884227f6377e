"""Test helpers: a scripted HTTP/1.1 server on 127.0.0.1 that sends exactly the bytes a test asks
for (chunked, close-delimited, stalled, cut), and SSE body builders. Standard library only.

A handler runs once per request, on the server's thread for that connection, and scripts the
answer through its :class:`Exchange`. Handlers that stall wait on gates (``threading.Event``)
given to ``ScriptedServer(handler, gates=...)``: leaving the ``with`` block opens every gate, so a
failing test never hangs on a stalled handler.
"""
from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

FRAMINGS = ("chunked", "close")
WAIT = 5.0  # seconds any handler or test waits for the other side before giving up


def sse_event(payload: object) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def delta(content: Optional[str] = None, finish: Optional[str] = None, **fields: object) -> dict:
    d = dict(fields)
    if content is not None:
        d["content"] = content
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def chat_stream(*texts: str, finish: str = "stop", usage: Optional[dict] = None, done: bool = True) -> List[bytes]:
    """Events of a complete streamed answer, one bytes object per event."""
    events = [sse_event(delta(t)) for t in texts] + [sse_event(delta(finish=finish))]
    if usage:
        events.append(sse_event({"choices": [], "usage": usage}))
    if done:
        events.append(b"data: [DONE]\n\n")
    return events


def completion(content: str, finish: str = "stop", usage: Optional[dict] = None) -> dict:
    """A non-streamed ``chat.completion`` answer."""
    answer: Dict[str, Any] = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
    }
    if usage:
        answer["usage"] = usage
    return answer


@dataclass
class Exchange:
    """One request as the server sees it, and the means to script its answer."""

    conn: socket.socket
    method: str = ""
    path: str = ""
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    framing: str = "chunked"
    closed_by_client: threading.Event = field(default_factory=threading.Event)

    def json(self) -> Any:
        return json.loads(self.body)

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def start(self, status: int = 200, content_type: str = "text/event-stream", framing: str = "chunked", extra: str = "") -> None:
        """Send the status line and headers; ``extra`` is more header lines, each ending in CRLF."""
        self.framing = framing
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{extra}"
        head += "Transfer-Encoding: chunked\r\n" if framing == "chunked" else "Connection: close\r\n"
        self.send((head + "\r\n").encode())

    def stream(self, events: Iterable[bytes], framing: str = "chunked") -> None:
        """Send the head and then ``events``; the body is left open."""
        self.start(framing=framing)
        for event in events:
            self.chunk(event)

    def chunk(self, data: bytes) -> None:
        """Send body bytes: one HTTP chunk when chunked, the bytes as they are otherwise."""
        self.send(b"%x\r\n%s\r\n" % (len(data), data) if self.framing == "chunked" else data)

    def end(self) -> None:
        """End the body properly: the last chunk, or closing the connection."""
        if self.framing == "chunked":
            self.send(b"0\r\n\r\n")
        else:
            self.close()

    def respond(self, status: int, body: bytes = b"", content_type: str = "application/json", extra: str = "") -> None:
        """A whole answer with Content-Length (the connection stays open for the next request)."""
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        self.send(head.encode() + body)

    def respond_json(self, status: int, payload: object, extra: str = "") -> None:
        self.respond(status, json.dumps(payload).encode(), extra=extra)

    def close(self) -> None:
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()

    def hold(self, gate: threading.Event, timeout: float = WAIT) -> bool:
        """Send nothing until the client closes the connection (True) or ``gate`` opens or
        ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while not gate.is_set() and time.monotonic() < deadline:
            if self.wait_client_close(0.02):
                return True
        return False

    def wait_client_close(self, timeout: float = WAIT) -> bool:
        """Block until the client closes its side (recv returns b'' or the socket errors); the
        result is also left in ``closed_by_client``."""
        self.conn.settimeout(timeout)
        try:
            while self.conn.recv(65536):
                pass
        except socket.timeout:
            return False
        except OSError:
            pass
        self.closed_by_client.set()
        return True


Handler = Callable[[Exchange], None]


class ScriptedServer:
    """``with ScriptedServer(handler) as server:`` runs ``handler(exchange)`` per request."""

    def __init__(self, handler: Handler, gates: Iterable[threading.Event] = (), tls: Optional[ssl.SSLContext] = None) -> None:
        self.handler = handler
        self.exchanges: List[Exchange] = []
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._threads: List[threading.Thread] = []
        self._conns: List[socket.socket] = []
        self._gates: List[threading.Event] = list(gates)
        self._stopping = False

    def requests(self, method: str = "POST") -> List[Exchange]:
        return [exchange for exchange in self.exchanges if exchange.method == method]

    def __enter__(self) -> "ScriptedServer":
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        for gate in self._gates:
            gate.set()
        for sock in [self._sock, *self._conns]:
            try:  # shutdown, not only close: it wakes a thread blocked in accept or recv
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(WAIT)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each send leaves at once
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        if self._tls is not None:
            try:
                conn = self._tls.wrap_socket(conn, server_side=True)
            except OSError:
                return
            self._conns.append(conn)
        reader = conn.makefile("rb")
        try:
            while True:  # keep-alive: several requests per connection
                request_line = reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode().split(" ", 2)
                headers: Dict[str, str] = {}
                while True:
                    line = reader.readline().decode().rstrip("\r\n")
                    if not line:
                        break
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0")))
                exchange = Exchange(conn, method, path, headers, body)
                self.exchanges.append(exchange)
                self.handler(exchange)
        except (OSError, ValueError):
            pass
        finally:
            reader.close()
            conn.close()


def stream_handler(events: Iterable[bytes], framing: str = "chunked") -> Handler:
    """A handler that answers each request with ``events`` in the given framing."""
    events = list(events)

    def handle(exchange: Exchange) -> None:
        exchange.stream(events, framing)
        exchange.end()

    return handle


def stalling_handler(events: Iterable[bytes], gate: threading.Event, framing: str = "chunked") -> Handler:
    """Send ``events``, then hold the stream open (sending nothing) until the client closes it
    or ``gate`` opens; then end the body properly."""
    events = list(events)

    def handle(exchange: Exchange) -> None:
        exchange.stream(events, framing)
        if not exchange.hold(gate):
            exchange.end()

    return handle


def lockstep_handler(events: Iterable[bytes], acks: List[threading.Event], framing: str = "chunked") -> Handler:
    """Send ``events`` one at a time: after event ``i`` wait for ``acks[i]`` (while there are
    acks), which the test sets once that event reached it. An ack that never comes cuts the
    stream, so the client fails loudly instead of passing late."""
    events = list(events)

    def handle(exchange: Exchange) -> None:
        exchange.start(framing=framing)
        for index, event in enumerate(events):
            exchange.chunk(event)
            if index < len(acks) and not acks[index].wait(WAIT):
                exchange.close()
                return
        exchange.end()

    return handle


def keepalive_handler(events: Iterable[bytes] = (), every: float = 0.05, framing: str = "chunked") -> Handler:
    """Send ``events``, then an SSE comment every ``every`` seconds until the client closes."""
    events = list(events)

    def handle(exchange: Exchange) -> None:
        exchange.stream(events, framing)
        for _ in range(int(WAIT / every)):
            exchange.chunk(b": keep-alive\n\n")
            if exchange.wait_client_close(every):
                return

    return handle


def cut_handler(events: Iterable[bytes], framing: str = "chunked", inside_chunk: bool = False) -> Handler:
    """Send ``events``, then close the connection without ending the body properly; with
    ``inside_chunk``, in the middle of a chunk (64 bytes announced, 10 sent)."""
    events = list(events)

    def handle(exchange: Exchange) -> None:
        exchange.stream(events, framing)
        if inside_chunk:
            exchange.send(b"40\r\n" + sse_event(delta("lost"))[:10])
        exchange.close()

    return handle


def silent_handler(exchange: Exchange) -> None:
    """Read the request, never answer; return when the client gives up."""
    exchange.wait_client_close(WAIT)


def routes(table: Dict[str, Handler]) -> Handler:
    """Dispatch on ``METHOD /path-prefix`` (the longest matching prefix wins); 404 otherwise."""

    def handle(exchange: Exchange) -> None:
        key = f"{exchange.method} {exchange.path}"
        matches = [prefix for prefix in table if key.startswith(prefix)]
        if not matches:
            exchange.respond_json(404, {"error": f"no route for {key}"})
            return
        table[max(matches, key=len)](exchange)

    return handle


def mapping_handler(providers: Dict[str, str]) -> Handler:
    """The Hub's model answer: ``{"inferenceProviderMapping": ...}`` in the list shape, in order."""
    entries = [{"provider": name, "providerId": pid, "status": "live", "task": "conversational"} for name, pid in providers.items()]

    def handle(exchange: Exchange) -> None:
        exchange.respond_json(200, {"id": "x", "inferenceProviderMapping": entries})

    return handle


def status_handler(status: int, message: str = "no") -> Handler:
    def handle(exchange: Exchange) -> None:
        exchange.respond_json(status, {"error": message})

    return handle


def self_signed_certificate(folder: Path) -> Tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command: (cert, key) paths."""
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
