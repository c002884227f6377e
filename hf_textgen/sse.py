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
from typing import Any, Callable, Iterator, List

from sseclient import SSEClient

from . import errors
from .errors import ResponseError

MAX_EVENT_BYTES = 8 * 1024 * 1024
MAX_EVENT_WORK = 1 << 32  # lines x bytes of one event: a tenth of a second of parsing, about
BOM = b"\xef\xbb\xbf"


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
    """sseclient-py's field parsing, over events :class:`EventFramer` already delimited. It uses
    sseclient-py's private names (``_event_source``, ``_char_enc``, ``_logger``, ``_read``), so
    setup.cfg pins the versions that have them."""

    def __init__(self, framed_events: List[bytes]) -> None:  # without its per-instance logger look-up
        self._event_source = framed_events
        self._char_enc = "utf-8"
        self._logger = _QUIET

    def _read(self) -> Iterator[bytes]:  # its own event joining is what the framer replaces
        return iter(self._event_source)


# sseclient-py logs a debug line per event; a logger outside the hierarchy, above every level,
# keeps those out of an application's DEBUG logs (hf_textgen logs each attempt instead).
_QUIET = logging.Logger("hf_textgen.sse.sseclient", logging.CRITICAL + 1)
logger = logging.getLogger("hf_textgen")


class EventDecoder:
    """Bytes in, sseclient events (``.event``, ``.data``, ``.id``) out: ``events(data)`` iterates
    those a read completes (``feed(data)`` lists them).

    Invalid UTF-8 is decoded with U+FFFD, as the WHATWG rules say, and logged once per stream."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES, place: str = "the event stream") -> None:
        self._frame = EventFramer(max_event_bytes, place).feed
        self.place = place
        self._replaced = False

    def feed(self, data: bytes) -> List[Any]:
        return list(self.events(data))

    def events(self, data: bytes) -> Iterator[Any]:
        framed = self._frame(data)
        if not framed:
            return
        given = 0
        try:
            for event in _EventParser(framed).events():
                given += 1
                yield event
        except UnicodeDecodeError as error:  # rare: only then decode again, with replacement
            if not self._replaced:
                self._replaced = True
                logger.warning("invalid UTF-8 in %s (%s), replaced with U+FFFD", self.place, error.reason)
            framed = [event.decode("utf-8", "replace").encode("utf-8") for event in framed]
            for index, event in enumerate(_EventParser(framed).events()):
                if index >= given:
                    yield event


class PayloadDecoder:
    """Bytes in, the JSON payload of each event's ``data`` handed to ``deliver`` as it is decoded:
    ``feed(data, deliver)``. One payload at a time, so each is garbage as soon as it is used (a
    read's worth of live payloads made the garbage collector's work grow: measured +5% per event).
    ``done`` turns True at ``data: [DONE]`` (nothing after it is decoded). Events with empty data
    are skipped; malformed JSON and in-band errors (``{"error": ...}``, ``event: error``) raise,
    after the payloads before them were delivered."""

    def __init__(self, place: str, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._events = EventDecoder(max_event_bytes, place).events
        self.place = place
        self.done = False

    def feed(self, data: bytes, deliver: Callable[[Any], None]) -> None:
        for event in self._events(data):
            text = event.data
            if not text:  # ``data:`` with nothing after it carries no payload
                continue
            if text == "[DONE]":
                self.done = True
                return
            if event.event == "error":
                raise ResponseError(f"the server sent an error event ({self.place}): {errors.shorten(_error_message(text))}")
            try:
                payload = loads(text)
            except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
                raise ResponseError(f"malformed JSON in the stream ({self.place}): {errors.shorten(text, 120)!r}") from None
            if type(payload) is dict and (payload.get("error") or payload.get("object") == "error"):  # OpenAI, TGI / vLLM
                raise ResponseError(f"the server reported an error in the stream ({self.place}): {errors.shorten(errors.error_text(payload))}")
            deliver(payload)


_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # its stub types it wrongly


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
