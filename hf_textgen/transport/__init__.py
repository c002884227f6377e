"""HTTP for hf_textgen: POST a chat request and get its open body, GET a JSON document from the
Hub with bounded retries, statuses and network failures as typed errors.

    via_requests.py  the only module importing requests and urllib3: the pooled Session, sending,
                 an open response's body, network errors translated (the single boundary)
    body.py      reading a body as it arrives, blocking or not; chunked framing
    statuses.py  HTTP error statuses -> typed errors with the server's message
    cancel.py    stopping a call from another thread; deadline timers
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Tuple
from urllib.parse import urljoin

from .. import config, errors
from ..deadlines import Deadlines
from ..errors import ResponseError, StreamTimeoutError
from ..types import PreparedRequest
from .body import DRAIN_LIMIT, DRAIN_SECONDS, READ_SIZE, Body
from .cancel import Cancel, DeadlineWatch, SocketWatch
from .via_requests import POOL_SIZE, get, session
from .via_requests import error_body, open_body, send_post
from .statuses import retry_after_seconds, status_error

__all__ = [
    "post", "Opened", "get_json", "get_json_pages", "Body", "Cancel", "SocketWatch", "where",
    "decode_json", "session", "retry_after_seconds", "READ_SIZE", "DRAIN_LIMIT", "DRAIN_SECONDS", "POOL_SIZE",
]

HUB_RETRIES = 2  # a Hub GET is retried after a connection error or a 5xx, with backoff
BACKOFF = 0.25  # seconds, doubled per retry


@dataclass
class Opened:
    """A 2xx answer whose body is still to be read."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: Body


def where(request: PreparedRequest) -> str:
    """Where a request went, for messages: provider, model and URL (messages are redacted when built)."""
    return f"provider {request.provider!r}, model {request.model!r}, {request.url}"


def post(request: PreparedRequest, plan: Deadlines, watch: Optional[SocketWatch] = None, nonblocking: bool = False) -> Opened:
    """Send a chat request; return its open body, or raise the typed error for its status.

    Sending and waiting for the headers are bounded by the plan's opening deadline: a timer
    shuts the socket down when it passes, so a server that drips its headers cannot outlast it.
    ``watch`` lets another thread stop it; ``nonblocking``: read the body without blocking."""
    remember_token(request.headers.get("Authorization"))
    place = where(request)
    due = plan.due(started=False)
    if due is not None and due[0] <= time.monotonic():  # spent on earlier providers: do not even connect
        raise plan.expired(due[1], place, request.provider)
    connect, read = plan.request_timeouts()
    guard = DeadlineWatch(due[0]) if due is not None else None
    watches: List[SocketWatch] = [w for w in (watch, guard) if w is not None]
    try:
        response = send_post(request, connect, read, watches, place)
    except StreamTimeoutError:
        if guard is not None and (guard.fired or plan.passed(False)):
            raise plan.expired(due[1], place, request.provider) from None  # type: ignore[index]
        raise
    except errors.HFTextGenError:
        if guard is not None and guard.fired:
            raise plan.expired(due[1], place, request.provider) from None  # type: ignore[index]
        raise
    finally:
        if guard is not None:
            guard.cancel()
    if guard is not None and guard.fired:  # cut mid-headers: what arrived is not an answer
        response.close()
        raise plan.expired(due[1], place, request.provider)  # type: ignore[index]
    if response.status_code >= 300:
        if watch is not None:  # the connection may go back to the pool: no longer ours to shut
            watch.attach(None)
        try:
            raise status_error(response.status_code, response.reason or "", response.headers, error_body(response), place, request.provider)
        finally:
            response.close()
    body = open_body(response, nonblocking)
    if watch is not None:
        watch.attach(body.sock)
    return Opened(response.status_code, response.headers, body)


def get_json(
    url: str, token: Optional[str], plan: Deadlines, what: str, retries: int = HUB_RETRIES, headers: Optional[Mapping[str, str]] = None
) -> Any:
    """GET a JSON document from the Hub (see :func:`get_json_pages`)."""
    return get_json_pages(url, token, plan, what, retries, headers)[0]


def get_json_pages(
    url: str, token: Optional[str], plan: Deadlines, what: str, retries: int = HUB_RETRIES, headers: Optional[Mapping[str, str]] = None
) -> Tuple[Any, Optional[str]]:
    """GET a JSON document and the URL of its next page (``Link: <...>; rel="next"``, made
    absolute). Connection errors and 5xx are retried ``retries`` times with backoff; the plan's
    total deadline bounds every attempt and wait. ``headers`` (the router's, built as for chat,
    token included) replace the Hub's, which carry the token only when it is an ``hf_`` one."""
    if headers is not None:
        headers = dict(headers)
        remember_token(headers.get("Authorization"))
    else:
        headers = {"User-Agent": config.USER_AGENT, "Accept": "application/json"}
        if config.is_hf_token(token) and config.may_carry_token(url):
            headers["Authorization"] = f"Bearer {token}"
            remember_token(headers["Authorization"])
    place = f"{what}, {url}"
    for attempt in range(retries + 1):
        if plan.passed(False):
            raise plan.expired("total deadline", place)
        connect, read = plan.request_timeouts()
        guard = DeadlineWatch(plan.total_at) if plan.total_at is not None else None
        try:
            fetched = get(url, headers, connect, read, [guard] if guard else [], place)
        except errors.HFTextGenError:
            if plan.passed(False) or (guard is not None and guard.fired):
                raise plan.expired("total deadline", place) from None
            if attempt >= retries:
                raise
            _back_off(plan, attempt)
            continue
        finally:
            if guard is not None:
                guard.cancel()
        if fetched.status >= 500 and attempt < retries:
            _back_off(plan, attempt)
            continue
        if fetched.status >= 300:
            raise status_error(fetched.status, fetched.phrase, fetched.headers, fetched.content, place, None)
        next_url = urljoin(url, fetched.next_url) if fetched.next_url else None  # the Hub may send a relative link
        return decode_json(fetched.content, place), next_url
    raise AssertionError("unreachable")


def _back_off(plan: Deadlines, attempt: int) -> None:
    """Sleep before a retry, never past the total deadline."""
    wait = BACKOFF * 2**attempt
    if plan.total_at is not None:
        wait = min(wait, max(0.0, plan.total_at - time.monotonic()))
    time.sleep(wait)


def remember_token(authorization: Optional[str]) -> None:
    """A token about to be sent is redacted from every error and log line, whatever it looks like:
    a server may echo it back (in its error body, a header or the stream)."""
    if authorization and authorization.startswith("Bearer "):
        errors.remember_secret(authorization[len("Bearer ") :])


def decode_json(content: bytes, place: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        raise ResponseError(f"invalid JSON from {place}: {errors.shorten(content[:200].decode('utf-8', 'replace'))}") from None
