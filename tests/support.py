"""Test helpers: a scripted HTTP/1.1 server on 127.0.0.1 that sends exactly the bytes a test asks
for (chunked, close-delimited, stalled, cut), and SSE body builders. Standard library only."""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional


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


@dataclass
class Exchange:
    """One connection as the server sees it."""

    conn: socket.socket
    method: str = ""
    path: str = ""
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    closed_by_client: threading.Event = field(default_factory=threading.Event)

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def start(self, status: int = 200, content_type: str = "text/event-stream", framing: str = "chunked", extra: str = "") -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{extra}"
        head += "Transfer-Encoding: chunked\r\n" if framing == "chunked" else "Connection: close\r\n"
        self.send((head + "\r\n").encode())

    def chunk(self, data: bytes, framing: str = "chunked") -> None:
        self.send(b"%x\r\n%s\r\n" % (len(data), data) if framing == "chunked" else data)

    def end(self, framing: str = "chunked") -> None:
        if framing == "chunked":
            self.send(b"0\r\n\r\n")
        else:
            self.close()

    def close(self) -> None:
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()

    def wait_client_close(self, timeout: float) -> bool:
        """Block until the client closes its side (recv returns b'' or the socket errors)."""
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

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.exchanges: List[Exchange] = []
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: List[threading.Thread] = []
        self._stopping = False

    def __enter__(self) -> "ScriptedServer":
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        self._sock.close()
        for exchange in self.exchanges:
            try:
                exchange.conn.close()
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
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
            try:
                conn.close()
            except OSError:
                pass


def stream_handler(events: List[bytes], framing: str = "chunked") -> Handler:
    """A handler that answers each request with ``events`` in the given framing."""

    def handle(exchange: Exchange) -> None:
        exchange.start(framing=framing)
        for event in events:
            exchange.chunk(event, framing)
        exchange.end(framing)

    return handle
