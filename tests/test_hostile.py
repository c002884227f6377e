"""Fault injection (issue 7): hostile servers, broken streams, secrets and paths.

Every case runs against a real loopback server (``tests/hostile.py``) through the public API, once
per driver: the sync generator, and ``create_async_generator`` under asyncio and under trio (each
case is written once; :class:`Driver` runs it). Each case asserts the error type (or the clean end),
a loose bound on the time it took, that the client closed every socket (seen by the server, and no
socket left open in this process), and that no thread was left behind.
"""
from __future__ import annotations

import email.utils
import json
import logging
import re
import threading
import time
import traceback
import tracemalloc
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional

import anyio
import pytest
import responses

from hf_textgen import HuggingFaceAPI, Timeouts, build, chat, errors, transport
from hf_textgen.errors import (
    ConfigurationError,
    ConnectError,
    HFTextGenError,
    MissingAuthError,
    ModelNotSupportedError,
    PaymentRequiredError,
    RateLimitError,
    ResponseError,
    ResponseStatusError,
    StreamTimeoutError,
)
from hf_textgen.types import FinishReason, ProviderInfo

from hostile import Conn, HostileServer, delta, event, full_stream, native_threads, open_sockets, stream, text_events

TOKEN = "hf_test-token"  # matches no token pattern: only exact-value redaction of what was sent can hide it
MODEL = "org/model"
MESSAGES = [{"role": "user", "content": "Hi"}]
FAST = Timeouts(connect=1, read=0.5)
BOUND = 5.0  # seconds: every failure must arrive well within this (the real figures are ~0.5-1 s)
MiB = 1024 * 1024


# -- drivers: each case is written once and run sync, on asyncio and on trio -----------------------------


@dataclass
class Outcome:
    chunks: List[Any]
    error: Optional[BaseException]
    elapsed: float

    @property
    def text(self) -> str:
        return "".join(chunk for chunk in self.chunks if isinstance(chunk, str))

    def raised(self, kind: "type[BaseException]", pattern: str = "") -> BaseException:
        assert isinstance(self.error, kind), f"expected {kind.__name__}, got {self.error!r} after {self.chunks!r}"
        assert re.search(pattern, str(self.error)), f"{pattern!r} not in {self.error}"
        return self.error


@dataclass
class Driver:
    mode: str  # "sync", "asyncio" or "trio"

    def collect(self, on_chunk: Optional[Callable[[Any], None]] = None, model: str = MODEL, **kwargs: Any) -> Outcome:
        """Iterate the whole completion; an hf_textgen error ends it and is recorded (others fail)."""
        kwargs = {"api_key": TOKEN, "timeout": FAST, **kwargs}
        chunks: List[Any] = []
        started = time.monotonic()
        if self.mode == "sync":
            try:
                for chunk in HuggingFaceAPI.create_completion(model, MESSAGES, **kwargs):
                    chunks.append(chunk)
                    if on_chunk:
                        on_chunk(chunk)
            except HFTextGenError as error:
                return Outcome(chunks, error, time.monotonic() - started)
            return Outcome(chunks, None, time.monotonic() - started)

        async def main() -> Optional[BaseException]:
            try:
                async for chunk in HuggingFaceAPI.create_async_generator(model, MESSAGES, **kwargs):
                    chunks.append(chunk)
                    if on_chunk:
                        on_chunk(chunk)
            except HFTextGenError as error:
                return error
            return None

        error = anyio.run(main, backend=self.mode)
        return Outcome(chunks, error, time.monotonic() - started)

    def stop_after(self, texts: int, how: str, **kwargs: Any) -> float:
        """Read ``texts`` text deltas, then leave the way ``how`` says; return when the caller left."""
        kwargs = {"api_key": TOKEN, "timeout": FAST, **kwargs}
        if self.mode == "sync":
            completion = HuggingFaceAPI.create_completion(MODEL, MESSAGES, **kwargs)
            seen = 0
            for chunk in completion:
                seen += isinstance(chunk, str)
                if seen == texts:
                    break
            left = time.monotonic()
            assert how == "close"
            completion.close()
            return left

        async def main() -> float:
            completion = HuggingFaceAPI.create_async_generator(MODEL, MESSAGES, **kwargs)
            seen = 0
            left = 0.0
            with anyio.CancelScope() as scope:
                async for chunk in completion:
                    seen += isinstance(chunk, str)
                    if seen == texts:
                        left = time.monotonic()
                        if how == "cancel":  # delivered at the iterator's next wait
                            scope.cancel()
                            continue
                        break
            if how == "aclose":
                await completion.aclose()
            del completion  # "break": dropping the iterator is the only signal it gets
            await anyio.sleep(0)
            return left

        return anyio.run(main, backend=self.mode)


@pytest.fixture(params=["sync", "asyncio", "trio"])
def driver(request: pytest.FixtureRequest) -> Driver:
    return Driver(request.param)


async_only = pytest.mark.parametrize("driver", ["asyncio", "trio"], indirect=True)


# -- the lab: servers, and the leak checks every case ends with -------------------------------------------


class Lab:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.servers: List[HostileServer] = []
        close_idle_connections()  # of earlier tests: not ours
        self.threads = native_threads()
        self.sockets = open_sockets()

    def serve(self, script: Callable[[Conn], None]) -> HostileServer:
        server = HostileServer(script).__enter__()
        self.servers.append(server)
        return server

    def hub_and_router(self, script: Callable[[Conn], None]) -> HostileServer:
        """One server playing the Hub and the router (HF_ENDPOINT and HF_TEXTGEN_ROUTER_URL)."""
        server = self.serve(script)
        self.monkeypatch.setenv("HF_ENDPOINT", server.url)
        self.monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", server.url)
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def assert_clean(self, closed: bool = True) -> None:
        """No thread and no socket left behind (an idle connection back in the pool is not a leak),
        and with ``closed`` (an answer cut or left unfinished) the server saw every connection closed."""
        if closed:
            for server in self.servers:
                assert server.all_closed(2.0), "the client left a connection open"
        self.stop()
        until = time.monotonic() + 3.0
        while native_threads() > self.threads and time.monotonic() < until:
            time.sleep(0.01)
        assert native_threads() <= self.threads, f"{native_threads()} threads, {self.threads} before"
        close_idle_connections()
        assert open_sockets() - self.sockets == set(), "a socket was left open"


def close_idle_connections() -> None:
    """Close the connections idle in the shared pool (urllib3 2 only drops them on ``clear()``)."""
    manager = transport.session().get_adapter("http://").poolmanager
    for key in list(manager.pools.keys()):
        pool = manager.pools.get(key)
        if pool is not None:
            pool.close()
    manager.clear()


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_TEXTGEN_ROUTER_URL"):
        monkeypatch.delenv(name, raising=False)
    lab = Lab(monkeypatch)
    yield lab
    lab.stop()


def base(server: HostileServer) -> str:
    return server.url + "/v1"


def mapping(*names: str, **ids: str) -> Dict[str, Any]:
    return {name: {"status": "live", "task": "conversational", "providerId": ids.get(name, f"{name}-id")} for name in names}


def hub(provider_mapping: Any, chat: Callable[[Conn], None]) -> Callable[[Conn], None]:
    """A script for the Hub (GET: the model's mapping) and the router (POST: ``chat``)."""

    def script(conn: Conn) -> None:
        if conn.request.method == "GET":
            conn.reply_json(200, {"id": MODEL, "inferenceProviderMapping": provider_mapping})
        else:
            chat(conn)

    return script


def posts(server: HostileServer) -> List[str]:
    return [request.path for request in server.requests if request.method == "POST"]


# -- slow and stalled servers ---------------------------------------------------------------------------


def drip(conn: Conn) -> None:
    """Slowloris: headers, then one byte of a never-finished event every 0.2 s."""
    conn.head()
    for byte in iter(lambda: b"d", None):
        conn.body(byte)
        conn.wait(0.2)


def silent(conn: Conn) -> None:
    """Accept, read the request, never answer."""
    conn.hold()


def stall_midway(conn: Conn) -> None:
    conn.head()
    for data in text_events("a", "b"):
        conn.body(data)
    conn.hold()


def pings(conn: Conn) -> None:
    """Keep-alive comments every 0.1 s, and never a token."""
    conn.head()
    while True:
        conn.body(b": ping\n\n")
        conn.wait(0.1)


SLOW = {
    "slowloris-total": (drip, Timeouts(connect=1, read=0.5, total=0.7), "total deadline passed"),
    "silent-read-timeout": (silent, FAST, r"no answer within 0\.5 s"),
    "stall-midway": (stall_midway, FAST, r"no data for 0\.5 s"),
    "pings-total": (pings, Timeouts(connect=1, read=0.5, total=0.7), "total deadline passed"),
    "pings-first-token": (pings, Timeouts(connect=1, read=0.5, first_token=0.5), "time-to-first-token deadline passed"),
    "slowloris-first-token": (drip, Timeouts(connect=1, read=0.5, first_token=0.5, total=10), "time-to-first-token deadline passed"),
    "silent-total-beats-read": (silent, Timeouts(connect=1, read=3, total=0.5), "total deadline"),
    "silent-first-token-beats-read": (silent, Timeouts(connect=1, read=3, first_token=0.5), "time-to-first-token deadline"),
}


@pytest.mark.parametrize("case", list(SLOW))
def test_slow_servers_end_in_a_timeout(lab: Lab, driver: Driver, case: str) -> None:
    script, timeouts, message = SLOW[case]
    server = lab.serve(script)
    outcome = driver.collect(api_base=base(server), timeout=timeouts)
    outcome.raised(StreamTimeoutError, message)
    assert outcome.elapsed < BOUND
    if case == "stall-midway":
        assert outcome.text == "ab"  # what arrived was yielded first
    lab.assert_clean()


def test_first_token_deadline_is_lifted_once_content_flows(lab: Lab, driver: Driver) -> None:
    """After the first token only the idle timeout applies, not what was left of the first-token one."""

    def late_then_slow(conn: Conn) -> None:
        conn.head()
        conn.wait(0.3)
        conn.body(event(delta("first")))
        conn.wait(0.6)  # longer than first_token, shorter than read
        for data in full_stream(" second"):
            conn.body(data)
        conn.end()

    server = lab.serve(late_then_slow)
    outcome = driver.collect(api_base=base(server), timeout=Timeouts(connect=1, read=2, first_token=0.4))
    assert outcome.error is None and outcome.text == "first second"
    lab.assert_clean(closed=False)  # a finished stream's connection goes back to the pool


# -- streams cut short ----------------------------------------------------------------------------------


def cut_script(how: str, seen: threading.Event) -> Callable[[Conn], None]:
    def script(conn: Conn) -> None:
        framing = {"close-delimited": "close", "short-length": "length"}.get(how, "chunked")
        conn.head(framing=framing, length=100_000)
        for data in text_events("a", "b"):
            conn.body(data)
        if how == "reset":
            conn.wait_for(seen)  # the client has what was sent (a reset may drop unread data)
            conn.reset_now()
        elif how == "inside-chunk":
            conn.send(b"100\r\ndata: {\"choi")
            conn.cut()
        elif how in ("close-delimited", "short-length"):  # EOF: before the declared length, for the latter
            conn.cut()
        else:  # a well-framed end, but no finish_reason and no [DONE]
            conn.end()

    return script


@pytest.mark.parametrize("how", ["reset", "inside-chunk", "short-length", "close-delimited", "chunked-end"])
def test_a_cut_stream_yields_what_arrived_then_says_it_was_cut(lab: Lab, driver: Driver, how: str) -> None:
    seen = threading.Event()
    server = lab.serve(cut_script(how, seen))
    outcome = driver.collect(lambda chunk: chunk == "b" and seen.set(), api_base=base(server))
    error = outcome.raised(ResponseError, "cut")
    assert type(error) is ResponseError
    assert outcome.text == "ab" and outcome.elapsed < BOUND
    lab.assert_clean(closed=how != "chunked-end")  # a well-framed body leaves a reusable connection


def test_a_finished_stream_may_end_without_done(lab: Lab, driver: Driver) -> None:
    server = lab.serve(stream(full_stream("a", "b")[:-1], framing="close"))
    outcome = driver.collect(api_base=base(server))
    assert outcome.error is None and outcome.text == "ab" and FinishReason("stop") in outcome.chunks
    lab.assert_clean()  # close-delimited: the connection cannot be reused


# -- the caller leaves a never-ending stream ------------------------------------------------------------


def endless(conn: Conn) -> None:
    conn.head()
    count = 0
    while True:
        conn.body(event(delta(f"{count} ")))
        count += 1
        conn.wait(0.05)


@pytest.mark.parametrize(
    "driver, how",
    [("sync", "close")] + [(mode, how) for mode in ("asyncio", "trio") for how in ("break", "aclose", "cancel")],
    indirect=["driver"],
)
def test_leaving_a_never_ending_stream_closes_the_socket_at_once(lab: Lab, driver: Driver, how: str) -> None:
    server = lab.serve(endless)
    left = driver.stop_after(3, how, api_base=base(server))
    assert server.all_closed(2.0)
    assert server.conns[0].closed_at is not None and server.conns[0].closed_at - left < 1.0
    lab.assert_clean()


# -- huge events ----------------------------------------------------------------------------------------


def huge(size: int, lines: bool = False) -> Callable[[Conn], None]:
    """One event of ``size`` bytes: a single ``data:`` line, or many lines with no blank line.
    (A client that stops at its cap makes the server stop sending: only a cap-less one reads it all.)"""
    piece = (b"data: " + b"x" * 65530 + b"\n") if lines else b"x" * 65536

    def script(conn: Conn) -> None:
        conn.head()
        conn.body(b'data: {"choices":[{"index":0,"delta":{"content":"')
        for _ in range(size // len(piece)):
            conn.body(piece)
        conn.body(b'"}}]}\n\n')
        conn.end()

    return script


OVERSIZED = {  # a 64 MiB event: how it is laid out, the cap, what the error says
    "one-line": (False, None, "exceeded 8388608 bytes"),
    "many-lines": (True, None, "exceeded 8388608 bytes"),
    "configured-cap": (False, 1 * MiB, "exceeded 1048576 bytes"),
}


@pytest.mark.parametrize("case", list(OVERSIZED))
def test_an_event_over_the_cap_raises_with_bounded_memory(lab: Lab, driver: Driver, case: str) -> None:
    lines, limit, message = OVERSIZED[case]
    size = 64 * MiB
    server = lab.serve(huge(size, lines))
    options = {} if limit is None else {"max_event_bytes": limit}
    tracemalloc.start()
    try:
        outcome = driver.collect(api_base=base(server), timeout=Timeouts(connect=1, read=2), **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * MiB, f"peak {peak / MiB:.1f} MiB for a {size / MiB:.0f} MiB event"  # ~8-12 MiB measured
    outcome.raised(ResponseError, message + ".*max_event_bytes")
    assert outcome.elapsed < BOUND
    lab.assert_clean()


def test_an_event_under_the_cap_arrives_whole(lab: Lab, driver: Driver) -> None:
    text = "y" * (3 * MiB)
    server = lab.serve(stream(full_stream(text)))
    outcome = driver.collect(api_base=base(server), timeout=Timeouts(connect=1, read=2))
    assert outcome.error is None and outcome.text == text
    lab.assert_clean(closed=False)


# -- what servers say instead of a stream ---------------------------------------------------------------


def sse_body(*raw: bytes, framing: str = "chunked") -> Callable[[Conn], None]:
    return stream(text_events("a") + list(raw), framing=framing)


def answer(status: int, body: Any, content_type: str = "application/json", headers: Optional[Dict[str, str]] = None) -> Callable[[Conn], None]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda conn: conn.reply(status, data, content_type, headers)


HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"

PAYLOADS = {
    "invalid-json": (sse_body(b'data: {"choices": [\n\n'), ResponseError, "malformed JSON"),
    "html-200": (answer(200, b"<html><body>Sign in</body></html>", "text/html"), ResponseError, "text/html"),
    "html-502": (answer(502, HTML, "text/html; charset=utf-8"), ResponseStatusError, "HTTP 502.*502 Bad Gateway"),
    "json-error-200": (answer(200, {"error": "Model too busy, unable to get response"}), ResponseError, "Model too busy"),
    "event-error": (sse_body(event({"message": "upstream overloaded"}, name="error")), ResponseError, "upstream overloaded"),
    "stream-openai": (
        sse_body(event({"error": {"message": "context length exceeded", "type": "invalid_request_error", "code": "context_length_exceeded"}})),
        ResponseError,
        "context length exceeded",
    ),
    "stream-tgi": (
        sse_body(event({"error": "Request failed during generation: CUDA out of memory", "error_type": "generation"})),
        ResponseError,
        "CUDA out of memory",
    ),
    "stream-vllm": (
        sse_body(event({"object": "error", "message": "vLLM engine died", "type": "InternalServerError", "code": 500})),
        ResponseError,
        "vLLM engine died",
    ),
    "status-openai": (
        answer(400, {"error": {"message": "max_tokens is too large", "type": "invalid_request_error", "code": "bad_max_tokens"}}),
        ResponseStatusError,
        "HTTP 400.*max_tokens is too large",
    ),
    "status-tgi": (
        answer(422, {"error": "Input validation error: `inputs` must have less than 4096 tokens", "error_type": "validation"}),
        ResponseStatusError,
        "HTTP 422.*Input validation error",
    ),
    "status-vllm": (
        answer(400, {"object": "error", "message": "This model's maximum context length is 4096 tokens", "type": "BadRequestError", "param": None, "code": 400}),
        ResponseStatusError,
        "HTTP 400.*maximum context length is 4096",
    ),
    "status-hf": (answer(503, {"error": "Model org/model is currently loading", "estimated_time": 20.0}), ResponseStatusError, "HTTP 503.*currently loading"),
    "status-hf-header": (answer(500, b"", "text/plain", {"X-Error-Message": "Inference backend crashed"}), ResponseStatusError, "HTTP 500.*Inference backend crashed"),
    "status-401": (answer(401, {"error": "Invalid credentials in Authorization header"}), MissingAuthError, "HTTP 401.*Invalid credentials"),
    "status-402": (answer(402, {"error": "You have exceeded your monthly included credits"}), PaymentRequiredError, "HTTP 402.*exceeded your monthly"),
}


@pytest.mark.parametrize("case", list(PAYLOADS))
def test_error_payloads_become_typed_errors_with_the_servers_message(lab: Lab, driver: Driver, case: str) -> None:
    script, kind, message = PAYLOADS[case]
    server = lab.serve(script)
    outcome = driver.collect(api_base=base(server))
    error = outcome.raised(kind, message)
    assert outcome.elapsed < BOUND
    if isinstance(error, ResponseStatusError):
        assert error.status_code == int(re.search(r"HTTP (\d+)", message).group(1))  # type: ignore[union-attr]
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


def test_invalid_utf8_in_an_event_is_replaced_and_the_stream_goes_on(lab: Lab, driver: Driver) -> None:
    bad = b'data: {"choices":[{"index":0,"delta":{"content":"caf\xc3 \xff\xfe"}}]}\n\n'
    server = lab.serve(stream([*text_events("a"), bad, *full_stream("b")]))
    outcome = driver.collect(api_base=base(server))
    assert outcome.error is None
    assert outcome.text == "acaf\ufffd \ufffd\ufffdb"  # U+FFFD for each invalid byte sequence, as WHATWG says
    lab.assert_clean(closed=False)


# -- rate limits ----------------------------------------------------------------------------------------


def in_seconds(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize(
    "header, expected",
    [(None, None), ("7", 7.0), ("1.5", 1.5), ("date", 30.0), ("soon", None)],
)
def test_429_is_a_rate_limit_error_with_retry_after(lab: Lab, driver: Driver, header: Optional[str], expected: Optional[float]) -> None:
    headers = {} if header is None else {"Retry-After": in_seconds(30) if header == "date" else header}
    server = lab.serve(answer(429, {"error": "Too many requests"}, headers=headers))
    outcome = driver.collect(api_base=base(server))
    error = outcome.raised(RateLimitError, "HTTP 429.*Too many requests")
    assert isinstance(error, RateLimitError)
    if expected is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(expected, abs=2.0)
    assert len(posts(server)) == 1 and outcome.elapsed < BOUND
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


@pytest.mark.parametrize("retry_after", [None, "3", "date"])
def test_429_moves_on_to_the_next_provider(lab: Lab, driver: Driver, retry_after: Optional[str]) -> None:
    headers = {} if retry_after is None else {"Retry-After": in_seconds(3) if retry_after == "date" else retry_after}

    def chat(conn: Conn) -> None:
        if conn.request.path.startswith("/first/"):
            conn.reply_json(429, {"error": "rate limited"}, headers)
        else:
            stream(full_stream("served by second"))(conn)

    server = lab.hub_and_router(hub(mapping("first", "second"), chat))
    outcome = driver.collect()
    assert outcome.error is None and outcome.text == "served by second"
    assert [c.provider for c in outcome.chunks if isinstance(c, ProviderInfo)] == ["first", "second"]
    assert posts(server) == ["/first/v1/chat/completions", "/second/v1/chat/completions"]
    assert outcome.elapsed < 2.0  # moving on does not wait for Retry-After
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


def rate_limited(times: int, retry_after: Optional[str]) -> Callable[[Conn], None]:
    """429 for the first ``times`` requests, then a stream."""
    count = [0]

    def script(conn: Conn) -> None:
        count[0] += 1
        if count[0] <= times:
            conn.reply_json(429, {"error": "slow down"}, {} if retry_after is None else {"Retry-After": retry_after})
        else:
            stream(full_stream("after the wait"))(conn)

    return script


@pytest.mark.parametrize(
    "times, retry_after, cap, served, requests",
    [
        (1, "0.3", 0.0, False, 1),  # default: no retry
        (1, "0", 0.0, False, 1),  # default: no retry, even for "Retry-After: 0"
        (1, "0.3", 2.0, True, 2),  # opt-in: waits Retry-After, then retries
        (1, "30", 2.0, False, 1),  # longer than the cap: no wait
        (1, None, 2.0, False, 1),  # no Retry-After: nothing to honour
        (5, "0.1", 2.0, False, 2),  # one retry per provider, not a loop
    ],
)
def test_opt_in_retry_honours_retry_after_up_to_a_cap(
    lab: Lab, driver: Driver, times: int, retry_after: Optional[str], cap: float, served: bool, requests: int
) -> None:
    server = lab.serve(rate_limited(times, retry_after))
    outcome = driver.collect(api_base=base(server), retry_rate_limited=cap)
    if served:
        assert outcome.error is None and outcome.text == "after the wait"
        assert outcome.elapsed >= 0.25  # it did wait
    else:
        outcome.raised(RateLimitError, "slow down")
    assert len(posts(server)) == requests and outcome.elapsed < BOUND
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


def test_opt_in_retry_waits_on_the_same_provider_first(lab: Lab, driver: Driver) -> None:
    first = rate_limited(1, "0.2")
    server = lab.hub_and_router(hub(mapping("first", "second"), first))
    outcome = driver.collect(retry_rate_limited=1.0)
    assert outcome.error is None and outcome.text == "after the wait"
    assert posts(server) == ["/first/v1/chat/completions"] * 2
    assert [c.provider for c in outcome.chunks if isinstance(c, ProviderInfo)] == ["first"]
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


@async_only
def test_leaving_during_a_rate_limit_wait_stops_at_once(lab: Lab, driver: Driver) -> None:
    server = lab.serve(rate_limited(5, "3"))

    async def main() -> float:
        with anyio.move_on_after(0.3):
            async for _ in HuggingFaceAPI.create_async_generator(MODEL, MESSAGES, api_base=base(server), api_key=TOKEN, timeout=FAST, retry_rate_limited=5):
                pass
        return time.monotonic()

    left = anyio.run(main, backend=driver.mode)
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool
    assert time.monotonic() - left < 1.5  # not the 3 s of Retry-After
    assert len(posts(server)) == 1


@pytest.mark.parametrize("cap", [-1, float("nan"), "5", True])
def test_retry_cap_is_validated_before_anything_is_sent(cap: Any) -> None:
    with pytest.raises(ConfigurationError, match="retry_rate_limited"):
        HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_base="http://127.0.0.1:9/v1", retry_rate_limited=cap)


# -- Hub GETs: bounded retries with backoff -------------------------------------------------------------


def hub_answers(*statuses: int) -> Callable[[Conn], None]:
    """The Hub answers the n-th GET with ``statuses[n]`` (the last one repeats); 0 means a reset."""
    count = [0]

    def script(conn: Conn) -> None:
        status = statuses[min(count[0], len(statuses) - 1)]
        count[0] += 1
        if status == 0:
            conn.reset_now()
        elif status == 200:
            conn.reply_json(200, {"id": MODEL, "inferenceProviderMapping": mapping("good")})
        else:
            conn.reply_json(status, {"error": f"hub says {status}"})

    return script


@pytest.mark.parametrize(
    "statuses, outcome, requests",
    [
        pytest.param((503,), ResponseStatusError, 3, id="5xx-thrice"),
        pytest.param((0,), ConnectError, 3, id="reset-thrice"),
        pytest.param((503, 0, 200), None, 3, id="recovers"),
        pytest.param((404,), ModelNotSupportedError, 1, id="404-at-once"),
        pytest.param((429,), RateLimitError, 1, id="429-at-once"),
    ],
)
def test_hub_gets_retry_connection_errors_and_5xx_a_bounded_number_of_times(
    lab: Lab, statuses: tuple, outcome: Optional[type], requests: int
) -> None:
    server = lab.hub_and_router(hub_answers(*statuses))
    started = time.monotonic()
    if outcome is None:
        assert list(HuggingFaceAPI.get_mapping_sync(MODEL, api_key=TOKEN, timeout=FAST)) == ["good"]
    else:
        with pytest.raises(outcome):
            HuggingFaceAPI.get_mapping_sync(MODEL, api_key=TOKEN, timeout=FAST)
    elapsed = time.monotonic() - started
    assert len(server.requests) == requests
    assert elapsed < 3.0  # two backoffs: 0.25 s then 0.5 s
    if requests == 3:
        assert elapsed >= 0.7
    lab.assert_clean(closed=False)


def test_listing_falls_back_after_bounded_retries_and_does_not_cache_the_failure(lab: Lab) -> None:
    server = lab.hub_and_router(hub_answers(503))
    fallback = HuggingFaceAPI.get_models(refresh=True, api_key=TOKEN, timeout=FAST)
    assert fallback == HuggingFaceAPI.fallback_models and len(server.requests) == 3
    HuggingFaceAPI.get_models(api_key=TOKEN, timeout=FAST)
    assert len(server.requests) == 6
    lab.assert_clean(closed=False)


# -- secrets --------------------------------------------------------------------------------------------


def authorizations(server: HostileServer) -> List[Optional[str]]:
    return [request.headers.get("authorization") for request in server.requests]


def test_the_token_goes_to_the_hub_and_router_or_to_api_base_only(lab: Lab, driver: Driver) -> None:
    router = lab.serve(stream(full_stream("ok")))
    hub_server = lab.serve(hub(mapping("good"), stream([])))
    lab.monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    lab.monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", router.url)
    own = lab.serve(stream(full_stream("mine")))
    assert driver.collect().text == "ok"
    assert driver.collect(api_base=base(own)).text == "mine"
    assert authorizations(hub_server) == authorizations(router) == authorizations(own) == [f"Bearer {TOKEN}"]
    lab.assert_clean(closed=False)


@pytest.mark.parametrize("target", ["other-port", "other-host", "same-origin"])
def test_a_hub_redirect_elsewhere_never_carries_the_token(lab: Lab, target: str) -> None:
    elsewhere = lab.serve(hub(mapping("good"), stream([])))

    def redirecting(conn: Conn) -> None:
        if conn.request.path.startswith("/moved/"):
            hub(mapping("good"), stream([]))(conn)
            return
        origin = {"other-port": elsewhere.url, "other-host": f"http://localhost:{elsewhere.port}", "same-origin": hub_server.url}[target]
        conn.reply(307, b"", "text/plain", {"Location": f"{origin}/moved/api/models/{MODEL}"})

    hub_server = lab.hub_and_router(redirecting)
    assert list(HuggingFaceAPI.get_mapping_sync(MODEL, api_key=TOKEN, timeout=FAST)) == ["good"]
    if target == "same-origin":  # the Hub's own redirects (renamed repos) keep working with the token
        assert authorizations(hub_server) == [f"Bearer {TOKEN}"] * 2 and elsewhere.requests == []
    else:
        assert authorizations(elsewhere) == [None]
    lab.assert_clean(closed=False)


@pytest.mark.parametrize("status", [302, 307, 308])
def test_a_redirected_post_is_not_followed(lab: Lab, driver: Driver, status: int) -> None:
    elsewhere = lab.serve(stream(full_stream("stolen")))
    server = lab.serve(answer(status, b"", "text/plain", {"Location": base(elsewhere) + "/chat/completions"}))
    outcome = driver.collect(api_base=base(server))
    error = outcome.raised(ResponseStatusError, f"HTTP {status}.*redirect")
    assert getattr(error, "status_code") == status and elsewhere.requests == []
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


def test_no_token_over_plain_http_to_a_non_loopback_host(caplog: pytest.LogCaptureFixture) -> None:
    """Checked on built requests and with ``responses``: nothing here contacts a real host."""
    caplog.set_level(logging.WARNING, "hf_textgen")
    for url in ("http://example.com/v1", "http://10.0.0.8:8080/v1"):
        assert "Authorization" not in build.api_base_request(url, MODEL, {}, TOKEN).headers
    assert "not sending the token" in caplog.text and TOKEN not in caplog.text
    for url in ("https://example.com/v1", "http://127.0.0.1:8080/v1", "http://localhost/v1", "http://[::1]:80/v1"):
        assert build.api_base_request(url, MODEL, {}, TOKEN).headers["Authorization"] == f"Bearer {TOKEN}"


def test_no_token_over_plain_http_on_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.example")
    monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", "http://router.example")
    body = "".join(data.decode() for data in full_stream("ok"))
    with responses.RequestsMock() as mocked:
        mocked.get(re.compile(r"http://hub\.example/api/models/.*"), json={"id": MODEL, "inferenceProviderMapping": mapping("good")})
        mocked.post("http://router.example/good/v1/chat/completions", body=body, content_type="text/event-stream")
        mocked.post("http://api.example/v1/chat/completions", body=body, content_type="text/event-stream")
        chunks = list(HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_key=TOKEN, timeout=FAST))
        chunks += list(HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_base="http://api.example/v1", api_key=TOKEN, timeout=FAST))
        assert "".join(c for c in chunks if isinstance(c, str)) == "okok"
        assert [call.request.headers.get("Authorization") for call in mocked.calls] == [None, None, None]


ECHOES = {
    "error-body": answer(400, {"error": {"message": f"bad token {TOKEN} (Bearer {TOKEN})"}}),
    "x-error-message": answer(403, b"", "text/plain", {"X-Error-Message": f"token {TOKEN} is over its limit"}),
    "html-title": answer(500, f"<html><title>{TOKEN} failed</title></html>".encode(), "text/html"),
    "json-200": answer(200, {"error": f"token {TOKEN} refused"}),
    "error-event": sse_body(event({"message": f"your token {TOKEN} expired"}, name="error")),
    "in-stream": sse_body(event({"error": f"your token {TOKEN} expired"})),
    "invalid-json": sse_body(f"data: {{{TOKEN}\n\n".encode()),
    "text-after-close": sse_body(f"data: {TOKEN}\n\n".encode()),
}


@pytest.mark.parametrize("case", list(ECHOES))
def test_the_token_never_appears_in_errors_or_logs_even_when_echoed(lab: Lab, driver: Driver, caplog: pytest.LogCaptureFixture, case: str) -> None:
    caplog.set_level(logging.DEBUG, "hf_textgen")
    caplog.set_level(logging.DEBUG, "urllib3")
    lab.monkeypatch.setattr(errors, "_known_secrets", set())  # what earlier tests registered does not count
    server = lab.serve(ECHOES[case])
    outcome = driver.collect(api_base=base(server))
    error = outcome.raised(HFTextGenError)
    shown = [str(error), repr(error), "".join(traceback.format_exception(error)), caplog.text]
    shown += [str(getattr(error, "server_message", "")), repr(getattr(error, "attempts", ""))]
    shown += [record.getMessage() for record in caplog.records]
    assert not [text for text in shown if TOKEN in text]
    assert any(request.headers.get("authorization") == f"Bearer {TOKEN}" for request in server.requests)
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


def test_repr_of_a_built_request_hides_the_token() -> None:
    request = build.api_base_request("http://127.0.0.1:1/v1", MODEL, {"stream": True}, TOKEN)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}" and TOKEN not in repr(request)


# -- names from the Hub or the user never change the request target -------------------------------------

HOSTILE_NAMES = ["../x", "a/b", "x?y", "%2e%2e", "http://evil", "x#y", "..", "X"]


@pytest.mark.parametrize("shape", ["dict", "list"])
def test_hostile_provider_names_in_a_mapping_are_skipped_with_a_warning(lab: Lab, driver: Driver, caplog: pytest.LogCaptureFixture, shape: str) -> None:
    caplog.set_level(logging.WARNING, "hf_textgen")
    entries = mapping(*HOSTILE_NAMES, "good")
    raw: Any = entries if shape == "dict" else [{"provider": name, **entry} for name, entry in entries.items()]
    server = lab.hub_and_router(hub(raw, stream(full_stream("ok"))))
    outcome = driver.collect()
    assert outcome.error is None and outcome.text == "ok"
    assert posts(server) == ["/good/v1/chat/completions"]
    for name in HOSTILE_NAMES:
        assert repr(name)[:20] in caplog.text
    lab.assert_clean(closed=False)


def test_a_provider_id_only_goes_into_the_body(lab: Lab, driver: Driver) -> None:
    server = lab.hub_and_router(hub(mapping("good", "hf-inference", good="../../x?y", **{"hf-inference": "../y"}), rate_limited(1, None)))
    outcome = driver.collect()
    assert outcome.error is None and outcome.text == "after the wait"
    first, second = [request for request in server.requests if request.method == "POST"]
    assert (first.path, first.json()["model"]) == ("/good/v1/chat/completions", "../../x?y")
    assert (second.path, second.json()["model"]) == (f"/hf-inference/models/{MODEL}/v1/chat/completions", MODEL)
    lab.assert_clean(closed=False)


@pytest.mark.parametrize(
    "model, provider",
    [("../x", None), ("a?b", None), ("a/b/c", None), ("%2e%2e/x", None), (MODEL, "../x"), (MODEL, "a/b"), (MODEL, "http://evil"), ("org/model:../x", None)],
)
def test_hostile_names_from_the_user_are_refused_before_anything_is_sent(lab: Lab, model: str, provider: Optional[str]) -> None:
    server = lab.hub_and_router(hub(mapping("good"), stream(full_stream("ok"))))
    with pytest.raises(ConfigurationError):
        HuggingFaceAPI.create_completion(model, MESSAGES, api_key=TOKEN, provider=provider)
    assert server.requests == []
    lab.assert_clean()


def test_cached_mappings_are_per_token(lab: Lab, driver: Driver) -> None:
    def per_token(conn: Conn) -> None:
        if conn.request.method == "GET":
            name = "alpha" if conn.request.headers.get("authorization") == f"Bearer {TOKEN}" else "beta"
            conn.reply_json(200, {"id": MODEL, "inferenceProviderMapping": mapping(name)})
        else:
            stream(full_stream("ok"))(conn)

    server = lab.hub_and_router(per_token)
    for token in (TOKEN, "hf_other", TOKEN, "hf_other"):
        assert driver.collect(api_key=token).text == "ok"
    assert [r.path.split("?")[0] for r in server.requests if r.method == "GET"] == [f"/api/models/{MODEL}"] * 2
    assert posts(server) == ["/alpha/v1/chat/completions", "/beta/v1/chat/completions"] * 2
    lab.assert_clean(closed=False)


# -- releasing a thread blocked in recv -----------------------------------------------------------------


def iterate_in_a_thread(server: HostileServer, timeout: Timeouts, seen: threading.Event) -> tuple:
    abort = transport.Cancel()  # what the async bridge uses to stop a call from another thread
    call = HuggingFaceAPI.client()._prepare(MODEL, MESSAGES, (), dict(api_base=base(server), api_key=TOKEN, timeout=timeout))
    finished = threading.Event()
    result: List[Any] = []

    def run() -> None:
        try:
            for chunk in chat.run(call, cancel=abort):
                if isinstance(chunk, str):
                    seen.set()
        except HFTextGenError as error:
            result.append(error)
        finally:
            finished.set()

    thread = threading.Thread(target=run)
    thread.start()
    return abort, finished, thread, result


def test_abort_releases_a_thread_blocked_in_recv_mid_stream(lab: Lab) -> None:
    server = lab.serve(stall_midway)
    seen = threading.Event()
    abort, finished, thread, _ = iterate_in_a_thread(server, Timeouts(connect=1, read=30), seen)
    assert seen.wait(BOUND)
    time.sleep(0.1)  # the reader is now blocked in recv, with 30 s of read timeout ahead
    aborted = time.monotonic()
    abort()
    assert finished.wait(1.0), "Abort did not release the reader"
    thread.join()
    assert server.all_closed(1.0) and server.conns[0].closed_at - aborted < 1.0  # type: ignore[operator]
    lab.assert_clean()


def test_abort_while_waiting_for_response_headers_releases_the_thread_at_once(lab: Lab) -> None:
    """The connection hands its socket to the Abort before waiting for headers: a silent server
    does not hold the thread for the read timeout (30 s here)."""
    server = lab.serve(silent)
    abort, finished, thread, result = iterate_in_a_thread(server, Timeouts(connect=1, read=30), threading.Event())
    time.sleep(0.2)
    aborted = time.monotonic()
    abort()
    assert finished.wait(BOUND)
    thread.join()
    released = time.monotonic() - aborted
    assert released < 1.0, f"released after {released:.2f} s"
    assert result == []  # the caller asked to stop: the generator ends quietly, no failover
    lab.assert_clean()


@async_only
def test_leaving_while_waiting_for_response_headers_frees_the_worker_at_once(lab: Lab, driver: Driver) -> None:
    server = lab.serve(silent)

    async def main() -> float:
        with anyio.move_on_after(0.2):
            async for _ in HuggingFaceAPI.create_async_generator(MODEL, MESSAGES, api_base=base(server), api_key=TOKEN, timeout=Timeouts(connect=1, read=30)):
                pass
        return time.monotonic()

    left = anyio.run(main, backend=driver.mode)
    assert time.monotonic() - left < 0.5  # the caller is not held up
    lab.assert_clean()  # the worker thread and its socket are gone, long before the read timeout
    assert time.monotonic() - left < 3.0


def header_drip(conn: Conn) -> None:
    """A status line, then one byte of a header every 0.2 s; gives up after 1.5 s."""
    conn.send(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(7):
        conn.wait(0.2)
        conn.send(b"z")
    conn.reset_now()


def test_a_header_drip_is_stopped_by_the_total_deadline(lab: Lab) -> None:
    server = lab.serve(header_drip)
    outcome = Driver("sync").collect(api_base=base(server), timeout=Timeouts(connect=1, read=0.5, total=0.5))
    try:
        outcome.raised(StreamTimeoutError, "total deadline")
        assert outcome.elapsed < 1.2
    finally:
        lab.assert_clean()
