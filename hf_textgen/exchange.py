"""One request, one answer: POST, then bytes -> SSE -> chunks (or one JSON answer -> chunks).

The response is closed on every exit path, including a caller who stops iterating early; a
fully read stream gives its connection back to the pool for the next call.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Iterator, Optional, Union

from . import chunks, sse, transport
from .errors import ModelNotSupportedError, ResponseError, ResponseStatusError, StreamTimeoutError
from .types import Chunk, PreparedRequest, ProviderInfo, Timeouts, Wait

MAX_JSON_BYTES = 64 * 1024 * 1024


def provider_label(provider: str) -> str:
    return f"HuggingFace ({provider})"


def answer(
    request: PreparedRequest,
    timeouts: Timeouts,
    abort: Optional[transport.Abort] = None,
    max_event_bytes: int = sse.MAX_EVENT_BYTES,
    started: Optional[float] = None,
) -> Iterator[Chunk]:
    """The chunks of one provider's answer. For server-side routing (provider ``auto``) the
    provider named by the router's ``x-inference-provider`` header is yielded first.

    The total and time-to-first-token deadlines count from ``started`` (``time.monotonic()``;
    default: now): pass the start of the whole call so that failover does not restart them."""
    if started is None:
        started = time.monotonic()
    deadline = _opening_deadline(timeouts, started)
    try:
        response = _post(request, timeouts, deadline, abort)
    except ResponseStatusError as error:
        if request.provider == "auto" and error.status_code == 404:  # the router's "model_not_found"
            raise ModelNotSupportedError(
                f"the router does not serve model {request.model!r} ({error.server_message or 'HTTP 404'}); "
                "check the model id (org/name), or see `hf-textgen models`"
            ) from None
        raise
    complete = False
    try:
        if request.provider == "auto":
            chosen = response.headers.get("x-inference-provider") or "auto"
            yield ProviderInfo(provider_label(chosen), request.model, chosen)
        place = transport.where(request)
        content_type = response.headers.get("Content-Type", "")
        reads = transport.read_bytes(response, request, timeouts, deadline, abort)
        if "text/event-stream" in content_type:
            stream = chunks.stream_chunks(sse.payloads(reads, place, max_event_bytes), place)
            for chunk in stream:
                if chunk.__class__ is Wait:  # until the first chunk the caller may still fail over,
                    transport.wait_readable(chunk)  # which blocks: so wait here, in its thread
                    continue
                if timeouts.first_token is not None:  # content arrived: only the total deadline is left
                    # inf, not None: the reader then gives the socket back its idle read timeout
                    deadline.at, deadline.what = _total(timeouts, started) or math.inf, "total deadline"
                yield chunk
                break
            yield from stream  # a cooperative reader's Waits now go to the caller's driver
            yield from transport.rest_of_body(response)
        elif "json" in content_type:
            payload = transport.decode_json(_read_all(reads, place), place)  # before any chunk: Waits are waited here
            yield from chunks.completion_chunks(payload, place)
        else:
            raise ResponseError(
                f"unexpected answer: HTTP {response.status_code} with content type {content_type or 'none'!r} "
                f"({place}); expected an event stream or JSON, the URL may not be a chat completions endpoint",
                provider=request.provider,
            )
        complete = True
    finally:
        if abort is not None:  # the connection may go back to the pool: no longer ours to shut
            abort.attach_socket(None)
        transport.finish(response, complete)


def _post(
    request: PreparedRequest, timeouts: Timeouts, deadline: transport.Deadline, abort: Optional[transport.Abort]
) -> "transport.requests.Response":
    """POST, waiting for the answer's headers no longer than the deadline allows."""
    if deadline.at is None:
        return transport.post(request, timeouts, abort)
    passed = StreamTimeoutError(f"{deadline.what} passed ({transport.where(request)})", provider=request.provider)
    left = deadline.at - time.monotonic()
    if left <= 0:  # spent on earlier providers: do not even connect
        raise passed
    try:
        return transport.post(request, replace(timeouts, connect=min(timeouts.connect, left), read=min(timeouts.read, left)), abort, deadline)
    except StreamTimeoutError:
        if time.monotonic() < deadline.at:
            raise
        raise passed from None


def _total(timeouts: Timeouts, started: float) -> Optional[float]:
    return None if timeouts.total is None else started + timeouts.total


def _opening_deadline(timeouts: Timeouts, started: float) -> transport.Deadline:
    """The deadline until the first content: the earlier of ``total`` and ``first_token`` (``total``
    on a tie), or none."""
    candidates = [
        (started + seconds, what)
        for seconds, what in ((timeouts.total, "total deadline"), (timeouts.first_token, "time-to-first-token deadline"))
        if seconds is not None
    ]
    return transport.Deadline(*min(candidates, key=lambda candidate: candidate[0])) if candidates else transport.Deadline()


def _read_all(reads: Iterator[Union[bytes, Wait]], place: str) -> bytes:
    pieces, size = [], 0
    for data in reads:
        if data.__class__ is Wait:
            transport.wait_readable(data)  # type: ignore[arg-type]
            continue
        pieces.append(data)
        size += len(data)
        if size > MAX_JSON_BYTES:
            raise ResponseError(f"the answer exceeded {MAX_JSON_BYTES} bytes ({place})")
    return b"".join(pieces)
