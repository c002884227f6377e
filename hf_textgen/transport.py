"""The only module that imports requests: one pooled Session, opening and reading responses, and
turning HTTP statuses and network failures into :mod:`hf_textgen.errors` (the single boundary).

Bodies are read with ``raw.read1`` so every byte reaches the caller as soon as it arrives, in
chunked and close-delimited framing alike (``iter_content`` buffers a close-delimited body).
"""
from __future__ import annotations

import email.utils
import html
import json
import os
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union
from urllib.parse import urlsplit

import requests
import requests.auth
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.util.wait
from requests.adapters import HTTPAdapter

from . import config, errors
from .chunked import ChunkedDecoder
from .errors import ConnectError, ResponseError, ResponseStatusError, StreamTimeoutError
from .types import PreparedRequest, Timeouts, Wait

READ_SIZE = 65536
ERROR_BODY_LIMIT = 65536
DRAIN_LIMIT = 65536  # bytes read after [DONE] so the connection can go back to the pool
POOL_SIZE = 512  # connections kept per host: the async bridge runs hundreds of streams at once

_session: Optional[requests.Session] = None
_session_lock = threading.Lock()

STATUS_HINTS = {
    400: "the request was rejected; check the model's parameters",
    401: "check your token (api_key=, HF_TOKEN or `hf auth login`)",
    402: "credits exhausted or pay-as-you-go not enabled for this provider; add credits or pick another provider",
    403: "spending limit reached or access denied; check your billing settings",
    404: "the model is not served there (any more); pick another provider or model",
    408: "the provider timed out; retry or pick another provider",
    429: "rate limited; wait and retry, or pick another provider",
}


_sending = threading.local()  # .aborts: the Aborts watching the request this thread is sending


class _AbortableConnection:
    """Hands the socket to the sending thread's :class:`Abort` before waiting for the answer's
    headers, so a caller who leaves while a server stays silent frees the thread at once."""

    sock: Optional[socket.socket]

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        for abort in getattr(_sending, "aborts", ()):
            abort.attach_socket(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_AbortableConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_AbortableConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


class _TokenOnly(requests.auth.AuthBase):
    """The Session's default auth: the request's own Authorization header, nothing else.

    Without it, requests looks for a ~/.netrc file on every request; those file-system calls each
    give up the GIL, and with hundreds of streams starting at once each took its turn behind the
    running ones (measured: 200 streams x 200 events took 2.1 s with the look-up, 1.35 s without).
    Credentials come from ``api_key=`` / HF_TOKEN only."""

    def __call__(self, request: Any) -> Any:
        return request


# What requests reads from the environment for every request (proxies and CA bundle).
_ENVIRONMENT = tuple(
    name
    for key in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "requests_ca_bundle", "curl_ca_bundle")
    for name in (key, key.upper())
)


class _Session(requests.Session):
    """A Session that reads proxy settings from the environment once per origin, not per request.

    requests scans ``os.environ`` for them on every request (about 0.1 ms); with hundreds of streams
    starting at once, each paid it in turn under the GIL (200 streams x 100 events x 20 ms: last
    stream's first event 354-423 ms with the scan, 273-300 ms without). The cache key holds the
    variables the result depends on, so changing one still takes effect at the next call."""

    def __init__(self) -> None:
        super().__init__()
        self.auth = _TokenOnly()
        self._environment: Dict[Any, Dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Dict[str, Any]:
        if proxies or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)  # type: ignore[no-any-return]
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert, tuple(map(os.environ.get, _ENVIRONMENT)))
        settings = self._environment.get(key)
        if settings is None:
            if len(self._environment) >= 256:
                self._environment.clear()
            settings = self._environment[key] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        return {**settings, "proxies": dict(settings["proxies"])}


def session() -> requests.Session:
    """The shared Session: pooled, keep-alive, safe to use from many threads."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                new = _Session()
                adapter = _Adapter(pool_connections=16, pool_maxsize=POOL_SIZE)
                new.mount("https://", adapter)
                new.mount("http://", adapter)
                _session = new
    return _session


class Abort:
    """Lets another thread stop a stream: shuts down the socket its reader is blocked on, while
    it waits for the answer's headers as well as while it reads the body.

    ``cooperative``: the stream's driver waits for its socket itself (the async bridge), so once the
    answer's content has begun the body is read without blocking: :func:`read_bytes` yields a
    :class:`~hf_textgen.types.Wait` whenever nothing has arrived."""

    def __init__(self, cooperative: bool = False) -> None:
        self.cooperative = cooperative
        self._lock = threading.Lock()
        self._socket: Optional[socket.socket] = None
        self._event = threading.Event()
        self.requested = False

    def attach(self, response: Optional[requests.Response]) -> None:
        self.attach_socket(None if response is None else _socket_of(response))

    def attach_socket(self, sock: Optional[socket.socket]) -> None:
        with self._lock:
            self._socket = sock
            if self.requested:
                _shutdown(sock)

    def __call__(self) -> None:
        with self._lock:
            self.requested = True
            self._event.set()
            _shutdown(self._socket)

    def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False (at once) if the stream is aborted meanwhile."""
        return not self._event.wait(seconds)


def _socket_of(response: requests.Response) -> Optional[socket.socket]:
    """The socket under a response: the pooled connection's, else (close-delimited bodies, whose
    connection http.client has already detached) the one behind the response's own file."""
    sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
    if sock is None:
        socket_io = getattr(getattr(getattr(response.raw, "_fp", None), "fp", None), "raw", None)
        sock = getattr(socket_io, "_sock", None)
    return sock


def body_reader(response: requests.Response, nonblocking: bool = False) -> Callable[[int], Optional[bytes]]:
    """A ``read1``-like function for the response body (the same one on every call).

    Chunked bodies are decoded here (:class:`~hf_textgen.chunked.ChunkedDecoder`) from the socket
    file, as urllib3's own ``read_chunked`` does, so one call returns every chunk that has arrived;
    other bodies, and compressed ones, go through urllib3's ``read1``.

    ``nonblocking`` (asked on the first call): for an uncompressed chunked or close-delimited body
    on a plain or TLS socket, the reader never blocks and returns None when nothing has arrived
    (:func:`is_nonblocking` tells whether it was granted)."""
    reader = response.__dict__.get("_hf_textgen_read1")
    if reader is None:
        raw = response.raw
        socket_file = getattr(getattr(raw, "_fp", None), "fp", None)
        plain = socket_file is not None and not response.headers.get("Content-Encoding")
        chunked = getattr(raw, "chunked", False)
        reads = None
        if nonblocking and plain and (chunked or raw._fp.length is None):  # chunked or close-delimited
            sock = _socket_of(response)
            if type(sock) in (socket.socket, ssl.SSLSocket):
                reads = _nonblocking_reads(response, socket_file, sock)  # type: ignore[arg-type]
        if chunked and plain:
            reader = _dechunking_reader(raw, reads or socket_file.read1)
        else:
            reader = reads or raw.read1
        response.__dict__["_hf_textgen_read1"] = reader
    return reader  # type: ignore[no-any-return]


def is_nonblocking(response: requests.Response) -> bool:
    """Whether :func:`body_reader` reads this response without blocking."""
    return "_hf_textgen_nonblocking" in response.__dict__


_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def _nonblocking_reads(response: requests.Response, socket_file: Any, sock: socket.socket) -> Callable[[int], Optional[bytes]]:
    """Reads that never block: bytes, b"" at the end of the connection, None if nothing has arrived.
    What http.client already buffered comes first.

    After a short read the socket is taken to be empty and None returned without asking it: the
    driver's readiness check tells anyway, for all its streams in one call, and every socket call
    gives up the GIL (under load, waiting to get it back was most of a stream's cost per event).
    TLS data already decrypted (``pending()``) is read at once, since no readiness check sees it."""
    response.__dict__["_hf_textgen_nonblocking"] = True
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


def _dechunking_reader(raw: Any, read: Callable[[int], Optional[bytes]]) -> Callable[[int], Optional[bytes]]:
    decoder = ChunkedDecoder()

    def read1(size: int) -> Optional[bytes]:
        while not decoder.done:
            data = read(size)
            if not data:
                if data is None:  # non-blocking: nothing has arrived yet
                    return None
                raise urllib3.exceptions.ProtocolError("the connection closed inside the chunked body")
            decoded = decoder.feed(data)
            if decoded:
                return decoded
        raw._fp.close()  # tell http.client the body is over, so the connection can be reused
        return b""

    return read1


def wait_readable(wait: Wait) -> None:
    """Block until ``wait.sock`` is readable or ``wait.until`` has come."""
    urllib3.util.wait.wait_for_read(wait.sock, timeout=max(0.0, wait.until - time.monotonic()))


def _shutdown(sock: Optional[socket.socket]) -> None:
    if sock is not None:
        try:  # the plain socket call also works under TLS, without touching the SSL object
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


@dataclass
class Deadline:
    """An optional absolute deadline (``time.monotonic()``) for a stream, with its reason."""

    at: Optional[float] = None
    what: str = "total deadline"


def where(request: PreparedRequest) -> str:
    """Where a request went, for messages: provider, model and URL (messages are redacted when built)."""
    return f"provider {request.provider!r}, model {request.model!r}, {request.url}"


def post(
    request: PreparedRequest, timeouts: Timeouts, abort: Optional[Abort] = None, deadline: Optional["Deadline"] = None
) -> requests.Response:
    """Send a chat request; return the open response, or raise the typed error for its status.

    With a ``deadline``, a timer shuts the socket down when it passes, so a server that drips its
    headers cannot outlast it (the read timeout only bounds each wait for a byte)."""
    _remember_token(request.headers.get("Authorization"))
    guard = _deadline_guard(deadline)
    _sending.aborts = [watch for watch in (abort, guard) if watch is not None]
    try:
        response = _send_post(request, timeouts)
    except requests.exceptions.RequestException as error:
        if guard is not None and guard.requested:
            raise StreamTimeoutError(f"{deadline.what} passed ({where(request)})", provider=request.provider) from None  # type: ignore[union-attr]
        raise network_error(error, where(request), timeouts, request.url) from None
    finally:
        _sending.aborts = ()
        if guard is not None:
            guard.timer.cancel()
    if guard is not None and guard.requested:  # cut mid-headers: what arrived is not an answer
        response.close()
        raise StreamTimeoutError(f"{deadline.what} passed ({where(request)})", provider=request.provider)  # type: ignore[union-attr]
    if response.status_code >= 300:
        if abort is not None:  # the connection may go back to the pool: no longer ours to shut
            abort.attach_socket(None)
        try:
            raise status_error(response, where(request), request.provider)
        finally:
            response.close()
    if abort is not None:
        abort.attach(response)
    return response


def _send_post(request: PreparedRequest, timeouts: Timeouts) -> requests.Response:
    """POST through the Session's adapter (its pool, proxies and CA settings), without the rest of
    ``Session.request``: no cookie jar (an API client should not carry one provider's cookies to
    the next call), no redirects, no hooks, no default headers (so no compression of the stream).
    That part cost ~150 µs of the ~600 µs CPU of opening a stream on loopback."""
    shared = session()
    prepared = requests.PreparedRequest()
    prepared.prepare(method="POST", url=request.url, headers=dict(request.headers), json=request.body)
    settings = shared.merge_environment_settings(prepared.url, {}, True, None, None)
    return shared.get_adapter(prepared.url).send(  # type: ignore[no-any-return]
        prepared,
        stream=True,
        timeout=(timeouts.connect, timeouts.read),
        verify=settings["verify"],
        cert=settings["cert"],
        proxies=settings["proxies"],
    )


class _DeadlineGuard(Abort):
    """An Abort fired by a timer when a deadline passes."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.timer = threading.Timer(max(0.0, seconds), self)
        self.timer.daemon = True
        self.timer.start()


def _deadline_guard(deadline: Optional["Deadline"]) -> Optional[_DeadlineGuard]:
    if deadline is None or deadline.at is None or deadline.at == float("inf"):
        return None
    return _DeadlineGuard(deadline.at - time.monotonic())


def get_json(url: str, token: Optional[str], timeouts: Timeouts, what: str, retries: int = 2) -> Any:
    """GET a JSON document from the Hub; retry connection errors and 5xx ``retries`` times."""
    return get_json_with_link(url, token, timeouts, what, retries)[0]


def get_json_with_link(url: str, token: Optional[str], timeouts: Timeouts, what: str, retries: int = 2) -> Tuple[Any, str]:
    """GET a JSON document and its ``Link`` header, with bounded retries and backoff."""
    headers = {"User-Agent": config.USER_AGENT, "Accept": "application/json"}
    if config.is_hf_token(token) and config.may_carry_token(url):
        headers["Authorization"] = f"Bearer {token}"
        _remember_token(headers["Authorization"])
    place = f"{what}, {url}"
    for attempt in range(retries + 1):
        try:
            with session().get(url, headers=headers, timeout=(timeouts.connect, timeouts.read)) as response:
                if response.status_code >= 500 and attempt < retries:
                    time.sleep(0.25 * 2**attempt)
                    continue
                if response.status_code >= 300:
                    raise status_error(response, place, None)
                return decode_json(response.content, place), response.headers.get("Link", "")
        except requests.exceptions.RequestException as error:
            if attempt >= retries:
                raise network_error(error, place, timeouts, url) from None
            time.sleep(0.25 * 2**attempt)
    raise AssertionError("unreachable")


def _remember_token(authorization: Optional[str]) -> None:
    """A token about to be sent is redacted from every error and log line, whatever it looks like:
    a server may echo it back (in its error body, a header or the stream)."""
    if authorization and authorization.startswith("Bearer "):
        errors.remember_secret(authorization[len("Bearer ") :])


def decode_json(content: bytes, place: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        raise ResponseError(f"invalid JSON from {place}: {errors.shorten(content[:200].decode('utf-8', 'replace'))}") from None


def network_error(error: Exception, place: str, timeouts: Timeouts, url: str = "") -> errors.HFTextGenError:
    """Translate a requests/urllib3 failure into ConnectError or StreamTimeoutError, saying in
    plain words what happened (refused, unknown host, reset, TLS) and what to check."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        reason = f"could not connect within {timeouts.connect:g} s"
        return StreamTimeoutError(f"{reason} ({place}); check the network or raise the connect timeout", reason=reason)
    if isinstance(error, requests.exceptions.Timeout):
        reason = f"no answer within {timeouts.read:g} s"
        return StreamTimeoutError(f"{reason} ({place}); the server is stalled, raise the read timeout or retry", reason=reason)
    parts = urlsplit(url)
    address = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}" if parts.hostname else "the server"
    cause = _root_cause(error)
    if isinstance(cause, ConnectionRefusedError):
        reason, advice = f"connection refused by {address}", "check that the server is running and the URL and port are right"
    elif isinstance(cause, socket.gaierror):
        reason, advice = f"cannot resolve the host name {parts.hostname or '?'}", "check the URL and your network or DNS settings"
    elif isinstance(cause, ssl.SSLError) or isinstance(error, requests.exceptions.SSLError):
        reason, advice = f"the TLS handshake with {address} failed", "check the certificate settings (REQUESTS_CA_BUNDLE) and the URL's scheme"
    elif isinstance(cause, (ConnectionResetError, BrokenPipeError)):
        reason, advice = f"the connection to {address} was reset", "retry; if it keeps happening, check proxies and the URL"
    else:
        reason, advice = f"connection to {address} failed: {errors.shorten(str(cause), 120)}", "check the network and the URL"
    return ConnectError(f"{reason} ({place}); {advice}", reason=reason)


def _root_cause(error: BaseException) -> BaseException:
    """The innermost error behind requests' and urllib3's wrappers (``reason``, causes, args)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException):
            inner = error.__cause__ or error.__context__
        if inner is None and error.args and isinstance(error.args[0], BaseException):
            inner = error.args[0]
        if inner is None:
            break
        error = inner
    return error


def status_error(response: requests.Response, place: str, provider: Optional[str]) -> ResponseStatusError:
    """The typed error for an HTTP error status, with the server's own message, shortened."""
    status = response.status_code
    server_message = server_message_of(response)
    hint = STATUS_HINTS.get(status, "a server error; retry later or pick another provider" if status >= 500 else "")
    if 300 <= status < 400:
        hint = f"unexpected redirect to {response.headers.get('Location', '?')!r}; the token is not sent to redirects, use the final URL"
    message = f"HTTP {status} from {place}: {server_message or response.reason or 'no message'}" + (f" ({hint})" if hint else "")
    cls = errors.status_error_class(status)
    extra = {"retry_after": retry_after_seconds(response.headers.get("Retry-After"))} if status == 429 else {}
    return cls(message, status_code=status, provider=provider, server_message=server_message, **extra)


def server_message_of(response: requests.Response) -> str:
    """The server's explanation: X-Error-Message, a JSON error in the known shapes, or page text."""
    header = response.headers.get("X-Error-Message")
    if header:
        return errors.shorten(header)
    try:
        if getattr(response, "_content", False) is not False:  # a non-streamed GET: already read
            body = response.content[:ERROR_BODY_LIMIT]
        else:
            body = response.raw.read(ERROR_BODY_LIMIT, decode_content=True) if response.raw else b""
    except Exception:  # a broken error body must not hide the status
        body = b""
    text = body.decode("utf-8", "replace")
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type or text.lstrip().lower().startswith(("<!doctype", "<html")):
        title = _HTML_TITLE.search(text)
        page = f"an HTML page ({content_type or 'no content type'})"
        return f"{page}: {errors.shorten(html.unescape(title.group(1)), 120)}" if title and title.group(1).strip() else page
    try:
        return errors.shorten(errors.error_text(json.loads(text)))
    except ValueError:
        return errors.shorten(text)


_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` as seconds: a number or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def read_bytes(
    response: requests.Response, request: PreparedRequest, timeouts: Timeouts, deadline: Deadline, abort: Optional[Abort] = None
) -> Iterator[Union[bytes, Wait]]:
    """Yield the body's bytes as they arrive; raise typed errors for stalls, deadlines and cuts.

    With a cooperative ``abort`` (and a body :func:`body_reader` can read without blocking), a
    :class:`~hf_textgen.types.Wait` is yielded instead of blocking when nothing has arrived."""
    read1 = body_reader(response, abort is not None and abort.cooperative)
    nonblocking = is_nonblocking(response)
    sock = _socket_of(response) if deadline.at is not None or nonblocking else None
    try:
        while True:
            if deadline.at is not None:
                remaining = deadline.at - time.monotonic()
                if remaining <= 0:
                    raise StreamTimeoutError(f"{deadline.what} passed ({where(request)})", provider=request.provider)
                if sock is not None and not nonblocking:
                    sock.settimeout(min(timeouts.read, remaining))
            data = read1(READ_SIZE)
            if data is None:  # non-blocking and nothing yet: the driver waits for the socket, up to the timeout
                until = time.monotonic() + timeouts.read
                if deadline.at is not None:
                    until = min(until, deadline.at)
                while data is None:
                    if time.monotonic() >= until:
                        raise socket.timeout()
                    yield Wait(sock, until)
                    data = read1(READ_SIZE)
            if not data:
                return
            yield data
    except (urllib3.exceptions.ReadTimeoutError, socket.timeout, requests.exceptions.Timeout):
        if deadline.at is not None and deadline.at <= time.monotonic():
            raise StreamTimeoutError(f"{deadline.what} passed ({where(request)})", provider=request.provider) from None
        raise StreamTimeoutError(
            f"no data for {timeouts.read:g} s ({where(request)}); the stream stalled, raise the read timeout or retry",
            provider=request.provider,
        ) from None
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError, ValueError) as error:
        if abort is not None and abort.requested:
            return
        raise ResponseError(
            f"the stream was cut ({where(request)}): {errors.shorten(str(error), 200)}", provider=request.provider
        ) from None


def rest_of_body(response: requests.Response) -> Iterator[Wait]:
    """For a body read without blocking, whose content is over: wait (by yielding Waits, up to
    1 s and ``DRAIN_LIMIT`` bytes) for the end of its chunked framing, which often arrives just
    after ``[DONE]``, so that :func:`finish` can give the connection back to the pool."""
    if not is_nonblocking(response) or not response.raw.chunked:
        return
    read1, sock = body_reader(response), _socket_of(response)
    until, drained = time.monotonic() + 1.0, 0
    try:
        while drained <= DRAIN_LIMIT:
            data = read1(READ_SIZE)
            if data is None:
                if time.monotonic() >= until:
                    return
                yield Wait(sock, until)
            elif not data:
                return
            else:
                drained += len(data)
    except Exception:  # finish() closes what cannot be reused
        return


def finish(response: requests.Response, complete: bool) -> None:
    """Return a fully read connection to the pool; close anything else.

    A body read without blocking is drained only of what has already arrived (else the connection
    is closed); urllib3 sets the socket's timeout again, so blocking mode, when it reuses it."""
    if complete:
        try:
            nonblocking = is_nonblocking(response)
            sock = _socket_of(response)
            if sock is not None and not nonblocking:  # a server that keeps the stream open after [DONE] costs ~1 s, once
                sock.settimeout(1.0)
            drained = 0
            while drained <= DRAIN_LIMIT:
                data = body_reader(response)(READ_SIZE)
                if data is None or (nonblocking and not data and not response.raw.chunked):
                    break  # nothing more yet, or a close-delimited end http.client did not see: not reusable
                if not data:
                    response.raw.release_conn()
                    return
                drained += len(data)
        except Exception:
            pass
    response.close()
