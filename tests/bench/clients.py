"""The clients under test, each behind the same small adapter.

An adapter is created with the bench server's URL. ``open(spec)`` returns the client's own iterator
(or, awaited, async iterator) of chunks for one streamed chat completion, exactly what a user would
iterate; ``spec`` (see :func:`stream_spec`) travels as an extra body field. ``text(chunk)`` returns a
chunk's content delta or ``None``. Nothing is wrapped around the client's iterator, so abandoning it
behaves as it does for a user. One client object serves every stream, as a user keeps one client.

Adapters import their library only when created, in the worker process that measures them.
"""
from __future__ import annotations

import asyncio
import importlib
import json
import socket
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

MODEL = "bench/model"
MESSAGES = [{"role": "user", "content": "hi"}]
TIMEOUT = 60.0  # every client's connect/read timeout
READ_SIZE = 262144


def stream_spec(events: int, gap_ms: float = 0.0, framing: str = "chunked") -> str:
    """The bench server's ``bench`` body field: ``events`` events, ``gap_ms`` apart."""
    return f"{events}/{round(gap_ms * 1000)}/{framing}"


# --------------------------------------------------------------------------------------------------
# The raw reader: the floor every client is compared with.


class SSEReader:
    """Incremental HTTP/1.1 response parser for the bench server: head, chunked or close-delimited
    body, SSE ``data:`` lines, one ``json.loads`` per event. ``feed`` returns the content deltas."""

    def __init__(self) -> None:
        self.raw = b""
        self.head_done = False
        self.chunked = False
        self.body = b""
        self.done = False

    def feed(self, data: bytes) -> List[str]:
        self.raw += data
        if not self.head_done and not self._read_head():
            return []
        if self.chunked:
            self._dechunk()
        else:
            self.body += self.raw
            self.raw = b""
        return self._events()

    def _read_head(self) -> bool:
        end = self.raw.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, self.raw = self.raw[:end].lower(), self.raw[end + 4 :]
        if not head.startswith(b"http/1.1 200"):
            raise ConnectionError(f"bench server answered {head[:80]!r}")
        self.chunked = b"transfer-encoding: chunked" in head
        self.head_done = True
        return True

    def _dechunk(self) -> None:
        raw, pos, parts = self.raw, 0, [self.body]
        while True:
            line_end = raw.find(b"\r\n", pos)
            if line_end < 0:
                break
            size = int(raw[pos:line_end], 16)
            if line_end + 2 + size + 2 > len(raw):
                break
            parts.append(raw[line_end + 2 : line_end + 2 + size])
            pos = line_end + 2 + size + 2
        self.raw = raw[pos:]
        self.body = b"".join(parts)

    def _events(self) -> List[str]:
        *lines, self.body = self.body.split(b"\n")
        out = []
        for line in lines:
            if line.startswith(b"data: "):
                payload = line[6:]
                if payload == b"[DONE]":
                    self.done = True
                    break
                content = json.loads(payload)["choices"][0]["delta"].get("content")
                if content is not None:
                    out.append(content)
        return out


def request_bytes(url: str, spec: str) -> Tuple[Tuple[str, int], bytes]:
    """The (host, port) and the POST of a chat completion to the server at ``url``."""
    parts = urlsplit(url)
    body = json.dumps({"model": MODEL, "messages": MESSAGES, "stream": True, "bench": spec}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return (parts.hostname or "127.0.0.1", parts.port or 80), head.encode() + body


def raw_sync_stream(url: str, spec: str) -> Iterator[str]:
    """A hand-rolled blocking HTTP/1.1 client: one connection per stream."""
    address, request = request_bytes(url, spec)
    sock = socket.create_connection(address, timeout=TIMEOUT)
    try:
        sock.sendall(request)
        reader = SSEReader()
        while not reader.done:
            data = sock.recv(READ_SIZE)
            if not data:
                break
            yield from reader.feed(data)
    finally:
        sock.close()


async def raw_asyncio_stream(url: str, spec: str) -> AsyncIterator[str]:
    """The same client on asyncio streams."""
    address, request = request_bytes(url, spec)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), TIMEOUT)
    try:
        writer.write(request)
        sse = SSEReader()
        while not sse.done:
            data = await asyncio.wait_for(reader.read(READ_SIZE), TIMEOUT)
            if not data:
                break
            for content in sse.feed(data):
                yield content
    finally:
        writer.close()


# --------------------------------------------------------------------------------------------------
# Adapters


def identity_text(chunk: Any) -> Optional[str]:
    return chunk


def str_text(chunk: Any) -> Optional[str]:
    """hf_textgen: content deltas are ``str``; typed chunks are not."""
    return chunk if type(chunk) is str else None


def openai_text(chunk: Any) -> Optional[str]:
    """openai and huggingface_hub stream objects: ``choices[0].delta.content``."""
    choices = chunk.choices
    return choices[0].delta.content if choices else None


class Client:
    """An adapter. ``kind`` is ``sync`` or ``async``; async ones name their anyio ``backend``, their
    ``open`` is a coroutine (some clients send the request before returning the iterator), and
    ``start``/``stop`` bracket each event loop run (async peers' clients belong to one loop)."""

    kind = "sync"
    backend = "asyncio"
    text: Callable[[Any], Optional[str]] = staticmethod(identity_text)

    def __init__(self, url: str) -> None:
        self.url = url

    def open(self, spec: str) -> Any:
        raise NotImplementedError

    async def start(self) -> None:
        """Called inside each event loop run, before its streams (async clients)."""

    async def stop(self) -> None:
        """Called at the end of each event loop run (async clients)."""


class Raw(Client):
    def open(self, spec: str) -> Iterator[str]:
        return raw_sync_stream(self.url, spec)


class RawAsyncio(Client):
    kind = "async"

    async def open(self, spec: str) -> AsyncIterator[str]:
        return raw_asyncio_stream(self.url, spec)


class HfTextgen(Client):
    text = staticmethod(str_text)

    def __init__(self, url: str) -> None:
        super().__init__(url)
        from hf_textgen import HuggingFaceAPI

        self.api = HuggingFaceAPI
        self.args = {"api_base": f"{url}/v1", "api_key": "hf_bench", "stream": True}

    def open(self, spec: str) -> Any:
        return self.api.create_completion(MODEL, MESSAGES, extra_body={"bench": spec}, **self.args)


class HfTextgenAsync(HfTextgen):
    kind = "async"

    def __init__(self, url: str, backend: str) -> None:
        super().__init__(url)
        self.backend = backend

    async def open(self, spec: str) -> Any:
        return self.api.create_async_generator(MODEL, MESSAGES, extra_body={"bench": spec}, **self.args)


class Peer(Client):
    """huggingface_hub or openai: one client object of theirs (``library.factory``), whose chunks
    are OpenAI-shaped. ``call`` starts one stream on it."""

    text = staticmethod(openai_text)
    library = ""
    factory = ""
    options: Dict[str, Any] = {}

    def make(self) -> Any:
        cls = getattr(importlib.import_module(self.library), self.factory)
        return cls(base_url=f"{self.url}/v1", timeout=TIMEOUT, **self.options)

    def call(self, spec: str) -> Any:
        raise NotImplementedError


class SyncPeer(Peer):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.client = self.make()

    def open(self, spec: str) -> Any:
        return self.call(spec)


class AsyncPeer(Peer):
    """Its client belongs to one event loop: made at each loop's start, closed at its end."""

    kind = "async"

    async def start(self) -> None:
        self.client = self.make()

    async def open(self, spec: str) -> Any:
        return await self.call(spec)

    async def stop(self) -> None:
        await self.client.close()


class Hub(Peer):
    library = "huggingface_hub"
    options = {"api_key": "hf_bench"}

    def call(self, spec: str) -> Any:
        return self.client.chat_completion(MESSAGES, model=MODEL, stream=True, extra_body={"bench": spec})


class OpenAI(Peer):
    library = "openai"
    options = {"api_key": "bench", "max_retries": 0}

    def call(self, spec: str) -> Any:
        return self.client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True, extra_body={"bench": spec})


class HubSync(Hub, SyncPeer):
    factory = "InferenceClient"


class HubAsync(Hub, AsyncPeer):
    factory = "AsyncInferenceClient"


class OpenAISync(OpenAI, SyncPeer):
    factory = "OpenAI"


class OpenAIAsync(OpenAI, AsyncPeer):
    factory = "AsyncOpenAI"


FACTORIES: Dict[str, Callable[[str], Client]] = {
    "raw": Raw,
    "raw-asyncio": RawAsyncio,
    "hf_textgen": HfTextgen,
    "hf_textgen-asyncio": lambda url: HfTextgenAsync(url, "asyncio"),
    "hf_textgen-trio": lambda url: HfTextgenAsync(url, "trio"),
    "hub": HubSync,
    "hub-async": HubAsync,
    "openai": OpenAISync,
    "openai-async": OpenAIAsync,
}
REQUIRES: Dict[str, List[str]] = {  # modules a client needs; a missing one skips it
    "hf_textgen": ["hf_textgen"],
    "hf_textgen-asyncio": ["hf_textgen", "anyio"],
    "hf_textgen-trio": ["hf_textgen", "anyio", "trio"],
    "hub": ["huggingface_hub"],
    "hub-async": ["huggingface_hub"],
    "openai": ["openai"],
    "openai-async": ["openai"],
}
PEERS = {"hub": "huggingface_hub", "hub-async": "huggingface_hub", "openai": "openai", "openai-async": "openai"}
ASYNC = ["raw-asyncio", "hf_textgen-asyncio", "hf_textgen-trio", "hub-async", "openai-async"]
LABELS = {
    "raw": "raw socket (floor)",
    "raw-asyncio": "raw asyncio",
    "hf_textgen": "hf_textgen sync",
    "hf_textgen-asyncio": "hf_textgen async (asyncio)",
    "hf_textgen-trio": "hf_textgen async (trio)",
    "hub": "huggingface_hub InferenceClient",
    "hub-async": "huggingface_hub AsyncInferenceClient",
    "openai": "openai OpenAI",
    "openai-async": "openai AsyncOpenAI",
}


def create(key: str, url: str) -> Client:
    """The adapter ``key`` for the bench server at ``url`` (imports its library)."""
    return FACTORIES[key](url)
