"""Server-Sent Events: bytes -> events -> JSON payloads. The only module that imports sseclient.

sseclient-py parses each event's fields; :class:`EventFramer` delimits the events first, by the
WHATWG rules, because sseclient-py 1.9 alone merges events on mixed line ends (LF then CRLF),
hands a half event to the caller at EOF, keeps a leading BOM, and joins an event's lines one by
one (quadratic). The framer turns CR, LF and CRLF line ends (also split across reads) into LF,
strips one leading BOM, passes on only complete events, one at a time (an unterminated event at
EOF is discarded, never half-delivered), joins an event once however many reads it took, and
refuses an event larger than ``max_event_bytes`` before it is held in memory whole.

sseclient-py still appends an event's ``data`` lines one by one, so an event's parse time grows
with lines x bytes; an event over :data:`MAX_EVENT_WORK` of that product (8 MiB in more than 512
lines, 1 MiB in more than 4096) is refused too, which no real chat stream comes near.
"""
from __future__ import annotations

import json
import json.scanner
import logging
from typing import Any, Iterable, Iterator, List, Union

from sseclient import SSEClient

from . import errors
from .errors import ResponseError
from .types import Wait

MAX_EVENT_BYTES = 8 * 1024 * 1024
MAX_EVENT_WORK = 1 << 32  # lines x bytes of one event: a tenth of a second of parsing, about
BOM = b"\xef\xbb\xbf"
DONE = object()  # yielded once for ``data: [DONE]``; nothing is read after it


class EventFramer:
    """Incremental: feed reads of any size, get back the events they complete, each LF-normalised,
    without its terminating blank line, and never empty."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES, place: str = "the event stream") -> None:
        self.max_event_bytes = max_event_bytes
        self.place = place
        # Smaller events need no check: under the byte cap, and lines <= bytes / 2 keeps lines x
        # bytes under MAX_EVENT_WORK.
        self._check_above = min(max_event_bytes, 65536)
        self._pending: List[bytes] = []  # the unfinished event, normalised
        self._pending_size = 0
        self._ends_with_lf = False  # the normalised stream so far ends with LF
        self._after_cr = False  # the last read ended with CR: a leading LF belongs to it
        self._head: "bytes | None" = b""  # the first bytes, until we know whether they are a BOM

    def feed(self, data: bytes) -> List[bytes]:
        """Return every event completed by ``data`` (often none)."""
        if not data:  # an empty read must not forget a CR that ended the previous one
            return []
        if self._head is not None:
            data = self._head + data
            if len(data) < 3 and BOM.startswith(data):
                self._head = data
                return []
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
            return []
        index = data.rfind(b"\n\n")
        if index >= 0:
            end = index + 2
        else:  # a blank line may also start this read, right after a line ended the last one
            end = 1 if self._ends_with_lf and data[0] == 10 else 0
        self._ends_with_lf = data[-1] == 10
        if not end:
            self._keep(data)
            return []
        block = data[:end]
        if self._pending:
            block = b"".join(self._pending) + block
            self._pending, self._pending_size = [], 0
        if end < len(data):
            self._keep(data[end:])
        # No part holds a blank line; one may start with the LF of a second blank line in a row.
        found = []
        for event in block.split(b"\n\n"):
            if event:
                if event[0] == 10:
                    event = event[1:]
                    if not event:
                        continue
                if len(event) > self._check_above:
                    self._check(event)
                found.append(event)
        return found

    def _keep(self, piece: bytes) -> None:
        self._pending.append(piece)
        self._pending_size += len(piece)
        # The pending bytes may hold one leading LF and the event's last LF beyond the event itself.
        if self._pending_size > self.max_event_bytes + 2:
            raise self._too_large()

    def _check(self, event: bytes) -> None:
        if len(event) > self.max_event_bytes:
            raise self._too_large()
        lines = event.count(b"\n") + 1
        if lines * len(event) > MAX_EVENT_WORK:
            raise ResponseError(
                f"a server-sent event of {len(event)} bytes in {lines} lines is too costly to parse "
                f"(lines x bytes over {MAX_EVENT_WORK}) in {self.place}"
            )

    def _too_large(self) -> ResponseError:
        return ResponseError(
            f"a server-sent event exceeded {self.max_event_bytes} bytes in {self.place}; "
            "raise max_event_bytes if the server really sends such events"
        )


class _EventParser(SSEClient):
    """sseclient-py's field parsing, over events :class:`EventFramer` already delimited."""

    def __init__(self, framed_events: List[bytes]) -> None:  # without its per-instance logger look-up
        self._event_source = framed_events
        self._char_enc = "utf-8"
        self._logger = _LOGGER

    def _read(self) -> Iterator[bytes]:  # its own event joining is what the framer replaces
        return iter(self._event_source)


_LOGGER = logging.getLogger(SSEClient.__module__)


def events(reads: Iterable[Union[bytes, Wait]], max_event_bytes: int = MAX_EVENT_BYTES, place: str = "the event stream") -> Iterator[Any]:
    """sseclient events (``.event``, ``.data``, ``.id``) of a byte stream, framed by :class:`EventFramer`.
    A :class:`~hf_textgen.types.Wait` among the reads is passed on as it is."""
    feed = EventFramer(max_event_bytes, place).feed
    try:
        for data in reads:
            if data.__class__ is Wait:
                yield data
                continue
            framed = feed(data)  # type: ignore[arg-type]
            if framed:
                yield from _EventParser(framed).events()
    except UnicodeDecodeError as error:
        raise ResponseError(f"invalid UTF-8 in {place} (byte {error.start} of a line): {error.reason}") from None


def payloads(reads: Iterable[Union[bytes, Wait]], place: str, max_event_bytes: int = MAX_EVENT_BYTES) -> Iterator[Any]:
    """JSON payloads of the ``data`` of each event; ``DONE`` at ``[DONE]``; in-band errors raise.
    Events with empty data are skipped; malformed JSON raises, never skipped. A
    :class:`~hf_textgen.types.Wait` is passed on."""
    for event in events(reads, max_event_bytes, place):
        if event.__class__ is Wait:
            yield event
            continue
        data = event.data
        if not data:  # ``data:`` with nothing after it carries no payload
            continue
        if data == "[DONE]":
            yield DONE
            return
        if event.event == "error":
            raise ResponseError(f"the server sent an error event ({place}): {errors.shorten(_error_message(data))}")
        try:
            payload = loads(data)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            raise ResponseError(f"malformed JSON in the stream ({place}): {errors.shorten(data, 120)!r}") from None
        if type(payload) is dict and (payload.get("error") or payload.get("object") == "error"):  # OpenAI, TGI / vLLM
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
