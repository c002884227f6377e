"""One request, one answer: POST, then bytes -> SSE payloads -> chunks (or one JSON answer ->
chunks), in one loop over the body's reads.

The body is read blocking, or (``cooperative``, for the async bridge) without blocking: the loop
yields a :class:`~hf_textgen.types.Wait` (the socket and the time to wait until) where it would
block, and the driver resumes it when the socket is readable, before the first content as after
it. Opening the request blocks: in cooperative mode a :data:`~hf_textgen.types.HANDOFF` comes
first, so that a driver that must not block (the reactor, after a failover) moves the stream to a
thread that may.

The response is closed on every exit path, including a caller who stops iterating early; a fully
read stream gives its connection back to the pool for the next call.
"""
from __future__ import annotations

import logging
import socket
import time
from typing import Callable, Generator, Iterator, List, Optional

from . import chunks, sse, transport
from .deadlines import Deadlines
from .errors import ModelNotSupportedError, ResponseError, ResponseStatusError, StreamTimeoutError
from .transport import Body, SocketWatch, where
from .catalog import provider_label
from .types import HANDOFF, HEADERS_IN, Chunk, Cost, PreparedRequest, ProviderInfo, StreamItem, Usage, Wait

logger = logging.getLogger("hf_textgen")

MAX_JSON_BYTES = 64 * 1024 * 1024
READ_SIZE = transport.READ_SIZE


def answer(
    request: PreparedRequest,
    plan: Deadlines,
    *,
    watch: Optional[SocketWatch] = None,
    cooperative: bool = False,
    max_event_bytes: int = sse.MAX_EVENT_BYTES,
    price: Optional[Callable[[str, Usage], Optional[Cost]]] = None,
) -> Iterator[StreamItem]:
    """The chunks of one provider's answer (with ``cooperative``, the bridge's markers among them).
    For server-side routing (provider ``auto``) the provider named by the router's
    ``x-inference-provider`` header comes first. ``watch`` lets another thread stop it.
    ``price(provider, usage)``: the ``Cost`` yielded after the answer's ``Usage`` (computed once,
    at the end; no I/O)."""
    if cooperative:
        yield HANDOFF
    sent = time.monotonic()
    try:
        opened = transport.post(request, plan, watch, cooperative)
    except ResponseStatusError as error:
        logger.debug("POST %s (provider %s): HTTP %s after %.0f ms", request.url, request.provider, error.status_code, _ms(sent))
        if request.provider == "auto" and error.status_code == 404:  # the router's "model_not_found"
            raise ModelNotSupportedError(
                f"the router does not serve model {request.model!r} ({error.server_message or 'HTTP 404'}); "
                "check the model id (org/name), or see `hf-textgen models`"
            ) from None
        raise
    except Exception as error:
        logger.debug("POST %s (provider %s) failed after %.0f ms: %s", request.url, request.provider, _ms(sent), error)
        raise
    logger.debug("POST %s (provider %s): HTTP %d, headers after %.0f ms", request.url, request.provider, opened.status, _ms(sent))
    if cooperative:
        yield HEADERS_IN
    body, place = opened.body, where(request)
    reader = _Reader(body, plan, place, request.provider, watch)
    complete = False
    chosen = request.provider
    try:
        if request.provider == "auto":
            chosen = opened.headers.get("x-inference-provider") or "auto"
            yield ProviderInfo(provider_label(chosen), request.model, chosen)
        content_type = opened.headers.get("Content-Type", "")
        if "text/event-stream" in content_type:
            payloads, stream = sse.PayloadDecoder(place, max_event_bytes), chunks.StreamChunks(place)
            decode, add, take, read = payloads.feed, stream.add, stream.take, reader.read
            started = False
            while True:
                data = read(started)
                if data:
                    failure = None
                    try:
                        decode(data, add)
                    except ResponseError as error:  # raised after the chunks that came before it
                        failure = error
                    found = take()
                    if found:
                        if not started:
                            started = True
                            reader.content_started()
                        yield from found
                    if failure is not None:
                        raise _located(failure, request.provider)
                    if payloads.done:
                        break
                elif data is None:  # nothing has arrived yet (non-blocking)
                    yield reader.wait(started)  # the driver resumes this loop when the socket is readable
                else:
                    break  # the connection closed
            if watch is not None and watch.fired:  # the caller left: what we read is no answer
                return
            ended = stream.end()
            yield from ended
            cut = stream.cut(payloads.done)
            if cut is not None:
                raise _located(cut, request.provider)
            if price is not None and ended and ended[-1].__class__ is Usage:
                cost = price(chosen, ended[-1])  # type: ignore[arg-type]
                if cost is not None:
                    yield cost
            complete = yield from _drain(body)
        elif "json" in content_type:
            payload = transport.decode_json((yield from _read_all(reader)), place)
            last: Optional[Chunk] = None
            for last in chunks.completion_chunks(payload, place):
                yield last
            if price is not None and last.__class__ is Usage:
                cost = price(chosen, last)  # type: ignore[arg-type]
                if cost is not None:
                    yield cost
            complete = True
        else:
            raise ResponseError(
                f"unexpected answer: HTTP {opened.status} with content type {content_type or 'none'!r} "
                f"({place}); expected an event stream or JSON, the URL may not be a chat completions endpoint",
                provider=request.provider,
            )
    finally:
        if watch is not None:  # the connection may go back to the pool: no longer ours to shut
            watch.attach(None)
        (body.release if complete else body.close)()


class _Reader:
    """Reads of one body with the plan's limits: the idle timeout between bytes and the deadline
    that applies (first-token until content has started, then total), as typed errors."""

    def __init__(self, body: Body, plan: Deadlines, place: str, provider: str, watch: Optional[SocketWatch]) -> None:
        self.body, self.plan, self.place, self.provider, self.watch = body, plan, place, provider, watch
        self._timed = plan.due(False) is not None  # blocking reads need their timeout cut to the deadline
        self._idle_until: Optional[float] = None  # non-blocking: when the current silence becomes a stall

    def read(self, started: bool) -> Optional[bytes]:
        """The next bytes; b"" at the end; None when nothing has arrived (non-blocking only)."""
        body = self.body
        if self._timed:
            body.settimeout(self.plan.read_timeout(started, time.monotonic()))
        try:
            data = body.read(READ_SIZE)
        except socket.timeout:
            raise self._stalled(started) from None
        except (OSError, ValueError) as error:
            if self.watch is not None and self.watch.fired:  # the caller left: end quietly
                return b""
            raise ResponseError(f"the stream was cut ({self.place}): {_brief(error)}", provider=self.provider, reason=f"the stream was cut: {_brief(error)}") from None
        if data:
            self._idle_until = None
        return data

    def content_started(self) -> None:
        """Only the total deadline is left: give blocking reads their idle timeout back."""
        if self._timed and self.plan.due(True) is None:
            self._timed = False
            self.body.settimeout(self.plan.read)

    def wait(self, started: bool) -> Wait:
        """What to wait for after a read found nothing; raises once the silence is a stall."""
        now = time.monotonic()
        if self._idle_until is None:
            due = self.plan.due(started)
            self._idle_until = now + self.plan.read if due is None else min(now + self.plan.read, due[0])
        if now >= self._idle_until:
            raise self._stalled(started)
        return Wait(self.body.sock, self._idle_until)

    def _stalled(self, started: bool) -> StreamTimeoutError:
        passed = self.plan.passed(started)
        if passed is not None:
            return self.plan.expired(passed, self.place, self.provider)
        return StreamTimeoutError(
            f"no data for {self.plan.read:g} s ({self.place}); the stream stalled, raise the read timeout or retry",
            provider=self.provider,
            reason=f"no data for {self.plan.read:g} s",
        )


def _drain(body: Body) -> Generator[Wait, None, bool]:
    """After ``[DONE]``: read the end of the body (its chunked framing often arrives just after),
    up to a second and ``DRAIN_LIMIT`` bytes; return whether the connection may be reused."""
    until, drained = time.monotonic() + transport.DRAIN_SECONDS, 0
    body.settimeout(transport.DRAIN_SECONDS)  # a server that keeps the stream open after [DONE] costs ~1 s, once
    while drained <= transport.DRAIN_LIMIT:
        try:
            data = body.read(READ_SIZE)
        except (OSError, ValueError):
            return False
        if data is None:
            if time.monotonic() >= until:
                return False
            yield Wait(body.sock, until)
        elif not data:
            return body.reusable
        else:
            drained += len(data)
    return False


def _read_all(reader: _Reader) -> Generator[Wait, None, bytes]:
    """A whole JSON body (returned; Waits yielded while nothing has arrived, non-blocking only)."""
    pieces: List[bytes] = []
    size = 0
    while True:
        data = reader.read(False)
        if data is None:
            yield reader.wait(False)
            continue
        if not data:
            return b"".join(pieces)
        pieces.append(data)
        size += len(data)
        if size > MAX_JSON_BYTES:
            raise ResponseError(f"the answer exceeded {MAX_JSON_BYTES} bytes ({reader.place})", provider=reader.provider)


def _located(error: ResponseError, provider: str) -> ResponseError:
    error.provider = provider
    return error


def _brief(error: BaseException) -> str:
    from .errors import shorten

    return shorten(str(error) or type(error).__name__, 200)


def _ms(since: float) -> float:
    return (time.monotonic() - since) * 1000
