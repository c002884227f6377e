"""The only module that imports requests and urllib3: one pooled Session, sending a request, the
body of an open response as a :class:`~hf_textgen.transport.body.Body`, and network failures
translated into :mod:`hf_textgen.errors` (the single boundary for foreign errors).
"""
from __future__ import annotations

import os
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence
from urllib.parse import urlsplit

import requests
import requests.auth
import urllib3
import urllib3.connection
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .. import errors
from ..errors import ConnectError, StreamTimeoutError
from ..types import PreparedRequest
from .body import Body, dechunked, nonblocking_reads
from .cancel import SocketWatch
from .statuses import ERROR_BODY_LIMIT

__all__ = ["session", "send_post", "open_body", "error_body", "get", "Fetched", "translate", "POOL_SIZE"]

POOL_SIZE = 2048  # connections kept per host: the async bridge runs a thousand streams at once (more and urllib3 warns as it discards them)

_session: Optional[requests.Session] = None
_session_lock = threading.Lock()

# The watches of the request this thread is sending. A thread-local because requests' adapter
# offers no hook between sending a request and waiting for its headers, where a silent server
# would hold the thread: the connection below hands its socket over right there.
_sending = threading.local()


class _WatchedConnection:
    """Hands the socket to the sending thread's watches before waiting for the answer's headers,
    so a caller who leaves while a server stays silent frees the thread at once."""

    sock: Optional[socket.socket]

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        for watch in getattr(_sending, "watches", ()):
            watch.attach(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
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


def send_post(request: PreparedRequest, connect: float, read: float, watches: Sequence[SocketWatch], place: str) -> requests.Response:
    """POST through the Session's adapter (its pool, proxies and CA settings), without the rest of
    ``Session.request``: no cookie jar (an API client should not carry one provider's cookies to
    the next call), no redirects, no hooks, no default headers (so no compression of the stream).
    That part cost ~150 µs of the ~600 µs CPU of opening a stream on loopback."""
    shared = session()
    prepared = requests.PreparedRequest()
    prepared.prepare(method="POST", url=request.url, headers=dict(request.headers), json=request.body)
    url = request.url  # prepared.url is the same, normalised
    settings = shared.merge_environment_settings(url, {}, True, None, None)
    _sending.watches = watches
    try:
        return shared.get_adapter(url).send(  # type: ignore[no-any-return]
            prepared,
            stream=True,
            timeout=(connect, read),
            verify=settings["verify"],
            cert=settings["cert"],
            proxies=settings["proxies"],
        )
    except requests.exceptions.RequestException as error:
        raise translate(error, place, connect, read, request.url) from None
    finally:
        _sending.watches = ()


def open_body(response: requests.Response, nonblocking: bool) -> Body:
    """The body of an open response. An uncompressed chunked or close-delimited body is read from
    the socket file (chunked framing decoded here, as urllib3's own ``read_chunked`` does, so one
    call returns every chunk that has arrived); with ``nonblocking``, on a plain or TLS socket, it
    is read without blocking. Other bodies, and compressed ones, go through urllib3's ``read1``."""
    raw = response.raw
    http_response = getattr(raw, "_fp", None)
    socket_file = getattr(http_response, "fp", None)
    sock = _socket_of(raw)
    plain = socket_file is not None and not response.headers.get("Content-Encoding")
    chunked = bool(getattr(raw, "chunked", False))
    if plain and (chunked or http_response.length is None):  # type: ignore[union-attr]
        reads = socket_file.read1  # type: ignore[union-attr]
        blocking = not (nonblocking and type(sock) in (socket.socket, ssl.SSLSocket))
        if not blocking:
            reads = nonblocking_reads(socket_file, sock)  # type: ignore[arg-type]
        if chunked:  # at the end, tell http.client the body is over, so the connection can be reused
            reads = dechunked(reads, http_response.close)  # type: ignore[union-attr]
        return Body(reads, sock, not blocking, chunked, raw.release_conn, response.close)
    return Body(_translated(raw.read1), sock, False, True, raw.release_conn, response.close)


def _translated(read1: Any) -> Any:
    """urllib3's ``read1`` with its errors as the standard library's, as the other readers raise."""

    def read(size: int) -> bytes:
        try:
            return read1(size)  # type: ignore[no-any-return]
        except (urllib3.exceptions.ReadTimeoutError, requests.exceptions.Timeout):
            raise socket.timeout("read timed out") from None
        except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException) as error:
            raise ConnectionError(str(error)) from None

    return read


def _socket_of(raw: Any) -> Optional[socket.socket]:
    """The socket under a response: the pooled connection's, else (close-delimited bodies, whose
    connection http.client has already detached) the one behind the response's own file."""
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        socket_io = getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None)
        sock = getattr(socket_io, "_sock", None)
    return sock


def error_body(response: requests.Response) -> bytes:
    """The start of an error answer's body (a broken body must not hide the status)."""
    try:
        return response.raw.read(ERROR_BODY_LIMIT, decode_content=True) if response.raw else b""  # type: ignore[no-any-return]
    except Exception:
        return b""


@dataclass(frozen=True)
class Fetched:
    """A whole GET answer: status, headers, body and the ``Link: <...>; rel="next"`` URL, if any."""

    status: int
    phrase: str
    headers: Mapping[str, str]
    content: bytes
    next_url: Optional[str]


def get(url: str, headers: Mapping[str, str], connect: float, read: float, watches: Sequence[SocketWatch], place: str) -> Fetched:
    """GET ``url`` and read the whole answer (redirects followed; the token is dropped by
    requests when a redirect changes host)."""
    _sending.watches = watches
    try:
        with session().get(url, headers=dict(headers), timeout=(connect, read)) as response:
            return Fetched(
                response.status_code, response.reason or "", response.headers, response.content, response.links.get("next", {}).get("url")
            )
    except requests.exceptions.RequestException as error:
        raise translate(error, place, connect, read, url) from None
    finally:
        _sending.watches = ()


def translate(error: Exception, place: str, connect: float, read: float, url: str = "") -> errors.HFTextGenError:
    """A requests/urllib3 failure as ConnectError or StreamTimeoutError, saying in plain words what
    happened (refused, unknown host, reset, TLS) and what to check."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        reason = f"could not connect within {connect:g} s"
        return StreamTimeoutError(f"{reason} ({place}); check the network or raise the connect timeout", reason=reason)
    if isinstance(error, requests.exceptions.Timeout):
        reason = f"no answer within {read:g} s"
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
