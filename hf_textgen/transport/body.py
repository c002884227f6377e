"""Reading an answer's body as it arrives, blocking or not. Standard library only.

A :class:`Body` is what :func:`hf_textgen.transport.post` hands the readers: a ``read(size)``
function (bytes; ``b""`` at the end; ``None`` when nothing has arrived, only when non-blocking),
the socket under it, and how to give the connection back. Bodies are read with ``read1``-style
calls so every byte reaches the caller as soon as it arrives, in chunked and close-delimited
framing alike; chunked framing is decoded here, many HTTP chunks per read (see
:mod:`hf_textgen.chunked`).
"""
from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..chunked import ChunkedDecoder

__all__ = ["Body", "nonblocking_reads", "dechunked", "READ_SIZE", "DRAIN_LIMIT"]

READ_SIZE = 65536
DRAIN_LIMIT = 65536  # bytes read after [DONE] so the connection can go back to the pool
DRAIN_SECONDS = 1.0  # how long the end of a body may take to arrive after [DONE]

Read = Callable[[int], Optional[bytes]]


@dataclass
class Body:
    """An open answer's body. ``reusable``: once read to its end, the connection may go back to
    the pool (chunked or ``Content-Length`` framing; a close-delimited body ends the connection)."""

    read: Read
    sock: Optional[socket.socket]
    nonblocking: bool
    reusable: bool
    release: Callable[[], None]  # a fully read body: give the connection back to the pool
    close: Callable[[], None]  # anything else: close the connection

    def settimeout(self, seconds: float) -> None:
        """Bound the next blocking read (no-op when reading without blocking)."""
        if self.sock is not None and not self.nonblocking:
            self.sock.settimeout(seconds)


_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def nonblocking_reads(socket_file: Any, sock: socket.socket) -> Read:
    """Reads that never block: bytes, b"" at the end of the connection, None if nothing has arrived.
    What http.client already buffered comes first.

    After a short read the socket is taken to be empty and None returned without asking it: the
    driver's readiness check tells anyway, for all its streams in one call, and every socket call
    gives up the GIL (under load, waiting to get it back was most of a stream's cost per event).
    TLS data already decrypted (``pending()``) is read at once, since no readiness check sees it."""
    sock.setblocking(False)
    recv = sock.recv
    pending = getattr(sock, "pending", None)
    buffered = True  # until http.client's buffer is empty (a non-blocking read1 says b"" for "nothing yet")
    drained = False  # the last read was short: the socket is probably empty

    def read(size: int) -> Optional[bytes]:
        nonlocal buffered, drained
        if buffered:
            try:
                data = socket_file.read1(size)
            except _WOULD_BLOCK:
                data = b""
            if data:
                return data  # type: ignore[no-any-return]
            buffered = False
        if drained:
            drained = False
            if pending is None or not pending():
                return None
        try:
            data = recv(size)
        except _WOULD_BLOCK:
            return None
        drained = 0 < len(data) < size
        return data

    return read


def dechunked(read: Read, on_end: Callable[[], None]) -> Read:
    """``read`` of a chunked body, returning the chunks' data (many chunks per call); ``on_end``
    runs once the last chunk and trailers are in. A connection closed inside the body raises
    ``ConnectionError``; a framing error ``ValueError``."""
    decoder = ChunkedDecoder()

    def read1(size: int) -> Optional[bytes]:
        while not decoder.done:
            data = read(size)
            if not data:
                if data is None:  # non-blocking: nothing has arrived yet
                    return None
                raise ConnectionError("the connection closed inside the chunked body")
            decoded = decoder.feed(data)
            if decoded:
                return decoded
        on_end()
        return b""

    return read1
