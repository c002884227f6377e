"""The test suite's one scripted HTTP/1.1 server, its scripts, SSE builders, leak checks and the
driver that runs a case sync, on asyncio and on trio. 127.0.0.1 only; the server is standard library.

``ScriptedServer(script)`` hands each request to ``script(conn)``, which answers with exactly the
bytes and timing it wants through :class:`Conn`: chunked, close-delimited or with a length; drip,
stall, cut inside a chunk, half-close, reset, never end. A script is written straight through: a
send or a wait raises :class:`ClientGone` as soon as the client has closed (the server ends the
script quietly). The server watches every connection, also while it is idle between requests:
``conn.client_closed`` is set when the client closes its socket, so tests can say the client
closed it, and ``server.requests()`` lists what arrived.

Leaving the ``with`` block opens every gate (``gates=`` or ``server.gate()``: events a script
waits on) and shuts down every socket, which wakes any waiting script: a failing test never hangs.
``tls=`` serves HTTPS (:func:`self_signed_certificate`, made with the ``openssl`` command).

    with ScriptedServer(stream(chat_stream("Hi"))) as server:
        ...                                   # point the client at server.url
        assert server.all_closed()            # every connection closed by the client
"""
from __future__ import annotations

import json
import os
import re
import select
import socket
import ssl
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from time import sleep as _sleep  # not the attribute: tests patch ``time.sleep`` to record backoffs
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple, Union

import anyio
import pytest

LOOPBACK = "127.0.0.1"
FRAMINGS = ("chunked", "close")
WAIT = 5.0  # seconds a bounded wait gives the other side before the test fails (never reached when all is well)
TOKEN = "hf_test-token"  # matches no token pattern: only exact-value redaction of what was sent can hide it
MODEL = "org/model"
MESSAGES = [{"role": "user", "content": "Hi"}]


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
    reset: bool = False  # the server reset the connection: the client's close cannot be observed
    over: bool = False  # the script ended the connection (cut or reset): no further request
    server_stopping: bool = False  # the server is shutting the socket down itself: not the client

    @property
    def request(self) -> Request:
        return self.requests[-1]

    def gone(self) -> None:
        if not self.server_stopping:
            self.client_closed.set()

    # -- sending ----------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.gone()
            raise ClientGone from None

    def head(self, status: int = 200, content_type: str = "text/event-stream", framing: str = "chunked", headers: Optional[Dict[str, str]] = None, length: Optional[int] = None) -> None:
        """The status line and headers. ``framing``: ``chunked``, ``close`` (until EOF) or ``length``;
        an empty ``content_type`` sends no Content-Type."""
        self.framing = framing
        lines = [f"HTTP/1.1 {status} Scripted"] + ([f"Content-Type: {content_type}"] if content_type else [])
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
        """A whole response with a Content-Length (the connection stays open for the next request)."""
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
                except ssl.SSLWantReadError:  # part of a TLS record: nothing to read yet
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.gone()
                    raise ClientGone

    def wait_for(self, event: threading.Event, timeout: float = WAIT, every: float = 0.01) -> bool:
        """Wait (watching the socket, looking at ``event`` every ``every`` s) until the test sets
        ``event``: True, or False after ``timeout``."""
        until = time.monotonic() + timeout
        while not event.is_set():
            if time.monotonic() >= until:
                return False
            self.wait(every)
        return True

    def hold(self, seconds: float = 2 * WAIT) -> None:
        """Say nothing more; return when the client closes (or after ``seconds``)."""
        try:
            self.wait(seconds)
        except ClientGone:
            pass

    def cut(self) -> None:
        """Half-close (FIN) without finishing the body; the server then waits for the client's close."""
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_WR)  # the plain call: no TLS close_notify
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


class ScriptedServer:
    """``with ScriptedServer(script) as server:``; ``server.conns`` lists every connection."""

    def __init__(self, script: Script, gates: Iterable[threading.Event] = (), tls: Optional[ssl.SSLContext] = None) -> None:
        self.script = script
        self.conns: List[Conn] = []
        self._tls = tls
        self._gates = list(gates)
        self._listener = socket.create_server((LOOPBACK, 0), backlog=256)
        self.port = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://{LOOPBACK}:{self.port}"
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()

    def requests(self, method: Optional[str] = None) -> List[Request]:
        """Every request received (of ``method`` only, if given), in order per connection."""
        with self._lock:
            return [request for conn in self.conns for request in conn.requests if method in (None, request.method)]

    @property
    def connections(self) -> int:
        return len(self.conns)

    def gate(self) -> threading.Event:
        """A new gate: an event a script waits on, opened when the server stops."""
        gate = threading.Event()
        self._gates.append(gate)
        return gate

    def __enter__(self) -> "ScriptedServer":
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for gate in self._gates:
            gate.set()
        try:  # wakes the thread blocked in accept() (close() alone does not, on Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns = list(self.conns)
        for conn in conns:
            conn.server_stopping = True
            try:  # the plain call, also under TLS: it wakes a script blocked in select or recv
                socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in list(self._threads):
            thread.join(WAIT)

    def all_closed(self, timeout: float = WAIT) -> bool:
        """Whether the client has closed every connection, waiting up to ``timeout`` seconds."""
        until = time.monotonic() + timeout
        with self._lock:
            conns = list(self.conns)
        return all(conn.client_closed.wait(max(0.0, until - time.monotonic())) for conn in conns)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"scripted-{self.port}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each send leaves at once
            conn = Conn(sock)
            with self._lock:
                self.conns.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: Conn) -> None:
        if self._tls is not None:
            try:
                conn.sock = self._tls.wrap_socket(conn.sock, server_side=True)
            except OSError:
                conn.gone()
                conn.sock.close()
                return
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


# -- SSE bodies and JSON answers ---------------------------------------------------------------------


def event(payload: Any, name: Optional[str] = None) -> bytes:
    """One server-sent event: ``data:`` the payload (JSON unless a str), after ``event: name``."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()


def delta(content: Optional[str] = None, finish: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice whose delta has ``content`` and ``fields``."""
    chunk_delta = dict(fields)
    if content is not None:
        chunk_delta["content"] = content
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": chunk_delta, "finish_reason": finish}]}


def text_events(*texts: str) -> List[bytes]:
    return [event(delta(text)) for text in texts]


def chat_stream(*texts: str, finish: str = "stop", usage: Optional[Dict[str, int]] = None, done: bool = True) -> List[bytes]:
    """The events of a whole streamed answer, one bytes object per event."""
    events = text_events(*texts) + [event(delta(finish=finish))]
    if usage:
        events.append(event({"choices": [], "usage": usage}))
    if done:
        events.append(b"data: [DONE]\n\n")
    return events


def completion(content: str, finish: str = "stop", usage: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    """A non-streamed ``chat.completion`` answer."""
    answer: Dict[str, Any] = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
    }
    if usage:
        answer["usage"] = usage
    return answer


# -- scripts ---------------------------------------------------------------------------------------------


def stream(events: Iterable[bytes], framing: str = "chunked", headers: Optional[Dict[str, str]] = None) -> Script:
    """Stream ``events`` and end cleanly."""
    events = list(events)

    def script(conn: Conn) -> None:
        conn.head(framing=framing, headers=headers)
        for data in events:
            conn.body(data)
        conn.end()

    return script


def stall(events: Iterable[bytes] = (), framing: str = "chunked") -> Script:
    """Send ``events``, then nothing more, keeping the body open until the client closes it."""
    events = list(events)

    def script(conn: Conn) -> None:
        conn.head(framing=framing)
        for data in events:
            conn.body(data)
        conn.hold()

    return script


def pings(events: Iterable[bytes] = (), framing: str = "chunked", every: float = 0.1) -> Script:
    """Send ``events``, then a keep-alive comment every ``every`` seconds and never a token; after
    ``WAIT`` the body ends (which is then a cut stream: a client that waited that long fails)."""
    events = list(events)

    def script(conn: Conn) -> None:
        conn.head(framing=framing)
        for data in events:
            conn.body(data)
        for _ in range(int(WAIT / every)):
            conn.body(b": ping\n\n")
            conn.wait(every)
        conn.end()

    return script


def drip(framing: str = "chunked") -> Script:
    """Slowloris: headers, then one byte of a never-finished event every 0.2 s (for ``WAIT`` at most)."""

    def script(conn: Conn) -> None:
        conn.head(framing=framing)
        for _ in range(int(WAIT / 0.2)):
            conn.body(b"d")
            conn.wait(0.2)
        conn.end()

    return script


def endless(framing: str = "chunked") -> Script:
    """A text delta every 0.05 s, for ever (until the client closes or the server stops)."""

    def script(conn: Conn) -> None:
        conn.head(framing=framing)
        count = 0
        while True:
            conn.body(event(delta(f"{count} ")))
            count += 1
            conn.wait(0.05)

    return script


def lockstep(events: Iterable[bytes], acks: List[threading.Event], framing: str = "chunked") -> Script:
    """Send ``events`` one at a time: after event ``i`` wait for ``acks[i]`` (while there are acks),
    which the test sets once that event reached the caller. An ack that never comes cuts the stream,
    so a client that buffers fails loudly instead of passing late."""
    events = list(events)

    def script(conn: Conn) -> None:
        conn.head(framing=framing)
        for index, data in enumerate(events):
            conn.body(data)
            if index < len(acks) and not conn.wait_for(acks[index]):
                conn.cut()
                return
        conn.end()

    return script


def silent(conn: Conn) -> None:
    """Read the request, never answer; return when the client gives up."""
    conn.hold()




def answer(status: int, body: Any, content_type: str = "application/json", headers: Optional[Dict[str, str]] = None) -> Script:
    """A whole answer with a Content-Length; ``body`` is bytes, or JSON."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda conn: conn.reply(status, data, content_type, headers)


def mapping(*names: str, **ids: str) -> Dict[str, Any]:
    """A dict-shaped Hub mapping: each name live and conversational, providerId ``<name>-id``
    unless ``ids`` says otherwise."""
    return {name: {"status": "live", "task": "conversational", "providerId": ids.get(name, f"{name}-id")} for name in names}


def hub(provider_mapping: Any, chat: Union[Script, Dict[str, Script]]) -> Script:
    """The Hub (GET: the model's mapping) and the router (POST: ``chat``, or ``chat[provider]``
    for ``POST /{provider}/...``)."""

    def script(conn: Conn) -> None:
        if conn.request.method == "GET":
            conn.reply_json(200, {"id": MODEL, "inferenceProviderMapping": provider_mapping})
        elif isinstance(chat, dict):
            chat[conn.request.path.split("/")[1]](conn)
        else:
            chat(conn)

    return script


def posts(server: ScriptedServer) -> List[str]:
    """The paths of the chat POSTs the server received."""
    return [request.path for request in server.requests("POST")]


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


def close_idle_connections() -> None:
    """Close the connections idle in the shared pool (urllib3 2 only drops them on ``clear()``)."""
    from hf_textgen import transport

    manager = transport.session().get_adapter("http://").poolmanager
    for key in list(manager.pools.keys()):
        pool = manager.pools.get(key)
        if pool is not None:
            pool.close()
    manager.clear()


class Lab:
    """The servers of one test, and the leak checks it ends with (the ``lab`` fixture)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.servers: List[ScriptedServer] = []
        close_idle_connections()  # of earlier tests: not ours
        self.threads = native_threads()
        self.sockets = open_sockets()

    def serve(self, script: Script, **options: Any) -> ScriptedServer:
        server = ScriptedServer(script, **options).__enter__()
        self.servers.append(server)
        return server

    def hub_and_router(self, script: Script) -> ScriptedServer:
        """One server playing the Hub and the router (HF_ENDPOINT and HF_TEXTGEN_ROUTER_URL)."""
        server = self.serve(script)
        self.monkeypatch.setenv("HF_ENDPOINT", server.url)
        self.monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", server.url)
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def assert_clean(self, closed: bool = True) -> None:
        """No thread and no socket left behind (an idle connection back in the pool is not a leak),
        and with ``closed`` (an answer cut or left unfinished) the server saw the client close every
        connection. Servers are stopped only after that check: stopping opens the gates."""
        if closed:
            for server in self.servers:
                assert server.all_closed(), "the client left a connection open"
        self.stop()
        until = time.monotonic() + WAIT
        while native_threads() > self.threads and time.monotonic() < until:
            _sleep(0.01)
        assert native_threads() <= self.threads, f"{native_threads()} threads, {self.threads} before"
        close_idle_connections()
        assert open_sockets() - self.sockets == set(), "a socket was left open"


# -- drivers: a case is written once and run sync, on asyncio and on trio --------------------------------

RELAXED = {"connect": 5, "read": 10}  # the default timeouts of a driven call: far from any test's timing


@dataclass
class Outcome:
    chunks: List[Any]
    error: Optional[BaseException]

    @property
    def text(self) -> str:
        return "".join(chunk for chunk in self.chunks if isinstance(chunk, str))

    def raised(self, kind: "type[BaseException]", pattern: str = "") -> BaseException:
        assert isinstance(self.error, kind), f"expected {kind.__name__}, got {self.error!r} after {self.chunks!r}"
        assert re.search(pattern, str(self.error)), f"{pattern!r} not in {self.error}"
        return self.error


SYNC_LEAVES = ("close", "break", "raise")
ASYNC_LEAVES = ("break", "aclose", "async-with", "consumer-error", "cancel", "fail-after")


@dataclass
class Driver:
    mode: str  # "sync", "asyncio" or "trio"

    def collect(self, on_chunk: Optional[Callable[[Any], None]] = None, model: str = MODEL, **kwargs: Any) -> Outcome:
        """Iterate the whole completion; an hf_textgen error ends it and is recorded (others fail)."""
        from hf_textgen import HuggingFaceAPI, Timeouts
        from hf_textgen.errors import HFTextGenError

        kwargs = {"api_key": TOKEN, "timeout": Timeouts(**RELAXED), **kwargs}
        chunks: List[Any] = []
        if self.mode == "sync":
            try:
                for chunk in HuggingFaceAPI.create_completion(model, MESSAGES, **kwargs):
                    chunks.append(chunk)
                    if on_chunk:
                        on_chunk(chunk)
            except HFTextGenError as error:
                return Outcome(chunks, error)
            return Outcome(chunks, None)

        async def main() -> Optional[BaseException]:
            try:
                with anyio.fail_after(2 * WAIT):  # a hang fails the test instead of the suite
                    async for chunk in HuggingFaceAPI.create_async_generator(model, MESSAGES, **kwargs):
                        chunks.append(chunk)
                        if on_chunk:
                            on_chunk(chunk)
            except HFTextGenError as error:
                return error
            return None

        return Outcome(chunks, anyio.run(main, backend=self.mode))

    def leave(self, how: str, texts: int = 1, check: Optional[Callable[[], None]] = None, **kwargs: Any) -> None:
        """Read ``texts`` text deltas, then leave the way ``how`` says (:data:`SYNC_LEAVES`,
        :data:`ASYNC_LEAVES`); then run ``check`` (blocking, on the loop's thread for async):
        while the iterator is still referenced for ``close``, ``aclose``, ``async-with``, ``cancel``
        and ``fail-after``, which must close the connection themselves; after it was dropped for
        the others, as in a user's loop."""
        from hf_textgen import HuggingFaceAPI, Timeouts

        kwargs = {"api_key": TOKEN, "timeout": Timeouts(**RELAXED), **kwargs}
        check = check or (lambda: None)
        if self.mode == "sync":
            sync_leave(lambda: HuggingFaceAPI.create_completion(MODEL, MESSAGES, **kwargs), how, texts, check)
            return

        async def main() -> None:
            with anyio.fail_after(2 * WAIT):
                await async_leave(lambda: HuggingFaceAPI.create_async_generator(MODEL, MESSAGES, **kwargs), how, texts, check)

        anyio.run(main, backend=self.mode)


class CallerBug(Exception):
    """What a caller's loop body raises in the ``raise`` and ``consumer-error`` ways of leaving."""


def sync_leave(make: Callable[[], Iterator[Any]], how: str, texts: int, check: Callable[[], None]) -> None:
    """The iterator is made here, so that ``del`` drops its last reference (on any Python)."""
    completion = make()
    seen = 0
    try:
        for chunk in completion:
            seen += isinstance(chunk, str)
            if seen == texts:
                if how == "raise":
                    raise CallerBug("a bug in the caller's loop")
                break
    except CallerBug:
        assert how == "raise"
    if how == "close":
        completion.close()  # type: ignore[attr-defined]
        check()
        return
    del completion  # dropped, as in a user's loop: the only signal it gets
    check()


async def async_leave(make: Callable[[], Any], how: str, texts: int, check: Callable[[], None]) -> None:
    completion = make()
    seen = 0
    if how == "aclose":
        async for chunk in completion:
            seen += isinstance(chunk, str)
            if seen == texts:
                break
        await completion.aclose()
    elif how == "async-with":
        async with completion as entered:
            async for chunk in entered:
                seen += isinstance(chunk, str)
                if seen == texts:
                    break
    elif how == "cancel":  # delivered at the iterator's next wait
        with anyio.CancelScope() as scope:
            async for chunk in completion:
                seen += isinstance(chunk, str)
                if seen == texts:
                    scope.cancel()
        assert scope.cancelled_caught
    elif how == "fail-after":
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.3):  # the caller's own deadline, while the stream goes on or stalls
                async for chunk in completion:
                    pass
    else:
        try:
            async for chunk in completion:
                seen += isinstance(chunk, str)
                if seen == texts:
                    if how == "consumer-error":
                        raise CallerBug("a bug in the caller's loop")
                    break
        except CallerBug:
            assert how == "consumer-error"
        del completion  # "break": dropping the iterator is the only signal it gets
        await anyio.sleep(0)
    check()
