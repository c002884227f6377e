"""Server-Sent Events: bytes -> events -> JSON payloads. The only module that imports sseclient.

sseclient-py parses event fields; :class:`EventFramer` makes the byte stream it is handed correct
by the WHATWG rules first: CR, LF and CRLF line ends (also split across reads) become LF, one
leading BOM is stripped, only complete events are passed on (an unterminated event at EOF is
discarded, never half-delivered), an event is joined once however many reads it took (no
quadratic growth) and an event larger than ``max_event_bytes`` raises instead of eating memory.
"""
from __future__ import annotations

import json
import json.scanner
from typing import Any, Iterable, Iterator, List

from sseclient import SSEClient

from . import errors
from .errors import ResponseError

MAX_EVENT_BYTES = 8 * 1024 * 1024
BOM = b"\xef\xbb\xbf"
DONE = object()  # yielded once for ``data: [DONE]``; nothing is read after it


class EventFramer:
    """Incremental: feed reads of any size, get back LF-normalised blocks of complete events."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self._pending: List[bytes] = []  # the unfinished event, normalised
        self._pending_size = 0
        self._ends_with_lf = False  # the normalised stream so far ends with LF
        self._after_cr = False  # the last read ended with CR: a leading LF belongs to it
        self._head: "bytes | None" = b""  # the first bytes, until we know whether they are a BOM

    def feed(self, data: bytes) -> bytes:
        """Return every event completed by ``data`` (possibly b"")."""
        if self._head is not None:
            data = self._head + data
            if len(data) < 3 and BOM.startswith(data):
                self._head = data
                return b""
            self._head = None
            if data.startswith(BOM):
                data = data[3:]
        if self._after_cr:
            self._after_cr = False
            if data[:1] == b"\n":
                data = data[1:]
        if b"\r" in data:
            self._after_cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not data:
            return b""
        index = data.rfind(b"\n\n")
        if index >= 0:
            end = index + 2
        else:  # a blank line may also start this read, right after a line ended the last one
            end = 1 if self._ends_with_lf and data[0] == 10 else 0
        self._ends_with_lf = data[-1] == 10
        if not end:
            self._keep(data)
            return b""
        block = data[:end]
        if self._pending:
            block = b"".join(self._pending) + block
            self._pending, self._pending_size = [], 0
        if end < len(data):
            self._keep(data[end:])
        return block

    def _keep(self, piece: bytes) -> None:
        self._pending.append(piece)
        self._pending_size += len(piece)
        if self._pending_size > self.max_event_bytes:
            raise ResponseError(
                f"a server-sent event exceeded {self.max_event_bytes} bytes without ending; "
                "raise max_event_bytes if the server really sends such events"
            )


def events(reads: Iterable[bytes], max_event_bytes: int = MAX_EVENT_BYTES) -> Iterator[Any]:
    """sseclient events of a byte stream, with the framing made correct by :class:`EventFramer`."""
    framer = EventFramer(max_event_bytes)
    blocks = (block for block in map(framer.feed, reads) if block)
    try:
        yield from SSEClient(blocks).events()
    except UnicodeDecodeError as error:
        raise ResponseError(f"invalid UTF-8 in the event stream at byte {error.start} of an event") from None


def payloads(reads: Iterable[bytes], place: str, max_event_bytes: int = MAX_EVENT_BYTES) -> Iterator[Any]:
    """JSON payloads of the ``data`` of each event; ``DONE`` at ``[DONE]``; in-band errors raise."""
    for event in events(reads, max_event_bytes):
        data = event.data
        if data == "[DONE]":
            yield DONE
            return
        if event.event == "error":
            raise ResponseError(f"the server sent an error event ({place}): {errors.shorten(_error_message(data))}")
        try:
            payload = loads(data)
        except ValueError:
            raise ResponseError(f"malformed JSON in the stream ({place}): {errors.shorten(data, 120)!r}") from None
        if type(payload) is dict and payload.get("error"):
            raise ResponseError(f"the server reported an error in the stream ({place}): {errors.shorten(errors.error_text(payload))}")
        yield payload


_scan_json = json.scanner.make_scanner(json.JSONDecoder())


def loads(text: str) -> Any:
    """``json.loads`` without its per-call overhead (about a third of it on small chunks)."""
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:  # leading white space or not JSON: let json.loads decide and explain
        return json.loads(text)
    if end != len(text) and text[end:].strip():
        raise ValueError(f"extra data after JSON at {end}")
    return value


def _error_message(data: str) -> str:
    try:
        return errors.error_text(json.loads(data))
    except ValueError:
        return data
