"""Fault injection on real loopback servers (``support.ScriptedServer``): slow, stalled, cut and
hostile servers, callers who leave, huge events, errors in the body, failover on the wire, rate
limits, Hub retries, secrets on the wire, and stopping a call blocked in recv.

Each case is written once and run by the ``driver`` fixture: the sync generator, and
``create_async_generator`` under asyncio and under trio; in both framings (chunked and
close-delimited) where the body's framing is read differently. Each case ends with the leak checks
(``lab.assert_clean``): the client closed every connection it had to (seen by the server), and no
thread or socket is left in this process.

No case measures time. Which timeout ended a call shows in its error ("total deadline passed", not
"no data for 10 s"); a call that must end at once is given read timeouts longer than every bounded
wait (``WAIT``) of the test, so only the behaviour under test can end it within that wait.
"""
from __future__ import annotations

import logging
import re
import threading
import traceback
import tracemalloc
from typing import Any, Callable, Dict, List, Optional, Tuple

import anyio
import pytest

from hf_textgen import HuggingFaceAPI, Timeouts, build, chat, errors, failover, transport
from hf_textgen.errors import (
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
from hf_textgen.types import Attempt, FinishReason, ProviderInfo

from mocked import backoffs  # noqa: F401  (fixture)
from support import (
    ASYNC_LEAVES,
    FRAMINGS,
    MESSAGES,
    MODEL,
    SYNC_LEAVES,
    TOKEN,
    WAIT,
    Conn,
    Driver,
    Lab,
    Script,
    ScriptedServer,
    answer,
    chat_stream,
    delta,
    drip,
    endless,
    event,
    hub,
    mapping,
    pings,
    posts,
    silent,
    stall,
    stream,
    text_events,
)

MiB = 1024 * 1024
LEAVES = [("sync", how) for how in SYNC_LEAVES] + [(mode, how) for mode in ("asyncio", "trio") for how in ASYNC_LEAVES]
async_only = pytest.mark.parametrize("driver", ["asyncio", "trio"], indirect=True)


def base(server: ScriptedServer) -> str:
    return server.url + "/v1"


def chat_url(server: ScriptedServer, provider: str = "") -> str:
    return f"{server.url}/{provider}/v1/chat/completions" if provider else f"{server.url}/v1/chat/completions"


# -- slow and stalled servers: which deadline ends the call -----------------------------------------------

# case: (script for a framing, timeouts, what the error says, the text that arrived before it). A
# deadline that nothing has to beat is short (0.3 s): a slow machine only makes it pass sooner, with
# the same message; one that content must beat ("ab" first) leaves it 0.5 s.
SLOW: Dict[str, Tuple[Callable[[str], Script], Timeouts, str, str]] = {
    "stall-midway-read-timeout": (lambda framing: stall(text_events("a", "b"), framing), Timeouts(connect=5, read=0.5), r"no data for 0\.5 s", "ab"),
    "stall-midway-total-beats-read": (lambda framing: stall(text_events("a", "b"), framing), Timeouts(connect=5, read=10, total=0.5), "total deadline passed", "ab"),
    "pings-after-content-total": (lambda framing: pings(text_events("a"), framing), Timeouts(connect=5, read=2, total=0.5), "total deadline passed", "a"),
    "pings-total": (lambda framing: pings(framing=framing), Timeouts(connect=5, read=2, total=0.3), "total deadline passed", ""),
    "pings-first-token": (lambda framing: pings(framing=framing), Timeouts(connect=5, read=2, first_token=0.3), "time-to-first-token deadline passed", ""),
    "slowloris-total": (drip, Timeouts(connect=5, read=2, total=0.3), "total deadline passed", ""),
    "slowloris-first-token": (drip, Timeouts(connect=5, read=2, first_token=0.3, total=10), "time-to-first-token deadline passed", ""),
    "silent-read-timeout": (lambda framing: silent, Timeouts(connect=5, read=0.3), r"no answer within 0\.3 s", ""),
    "silent-total-beats-read": (lambda framing: silent, Timeouts(connect=5, read=10, total=0.3), "total deadline passed", ""),
    "silent-first-token-beats-read": (lambda framing: silent, Timeouts(connect=5, read=10, first_token=0.3), "time-to-first-token deadline passed", ""),
}
SLOW_CASES = [pytest.param(case, framing, id=f"{case}-{framing}") for case in SLOW for framing in (("chunked",) if case.startswith("silent") else FRAMINGS)]


@pytest.mark.parametrize("case, framing", SLOW_CASES)
def test_slow_servers_end_in_the_timeout_that_applies(lab: Lab, driver: Driver, case: str, framing: str) -> None:
    """The pings and the drip keep every per-read timeout from firing (for ``WAIT``, then the body
    ends: a "cut" error), and ``read=10`` outlasts every bounded wait: only the deadline under test
    can end these calls with its own message, and the client closes the connection itself."""
    script, timeouts, message, text = SLOW[case]
    server = lab.serve(script(framing))
    outcome = driver.collect(api_base=base(server), timeout=timeouts)
    outcome.raised(StreamTimeoutError, message)
    assert outcome.text == text  # what arrived was yielded first
    lab.assert_clean()


def test_the_first_token_deadline_is_lifted_once_content_flows(lab: Lab, driver: Driver, framing: str) -> None:
    """After the first token only the idle timeout applies, not what was left of the first-token one."""

    def first_then_a_pause(conn: Conn) -> None:
        conn.head(framing=framing)
        conn.body(event(delta("first")))
        conn.wait(0.8)  # longer than first_token, far shorter than read
        for data in chat_stream(" second"):
            conn.body(data)
        conn.end()

    server = lab.serve(first_then_a_pause)
    outcome = driver.collect(api_base=base(server), timeout=Timeouts(connect=5, read=5, first_token=0.5))
    assert outcome.error is None and outcome.text == "first second"
    lab.assert_clean(closed=framing == "close")  # a finished chunked stream's connection goes back to the pool


def header_drip(conn: Conn) -> None:
    """A status line, then one byte of a header every 0.2 s, for ``WAIT``; then a reset."""
    conn.send(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(int(WAIT / 0.2)):
        conn.wait(0.2)
        conn.send(b"z")
    conn.reset_now()


def test_a_header_drip_is_stopped_by_the_total_deadline(lab: Lab, driver: Driver) -> None:
    """The read timeout (per byte) never fires on a drip; without a deadline on the headers, the call
    would end in the server's reset after ``WAIT``, a connection error."""
    server = lab.serve(header_drip)
    outcome = driver.collect(api_base=base(server), timeout=Timeouts(connect=5, read=2, total=0.5))
    outcome.raised(StreamTimeoutError, "total deadline passed")
    assert server.conns[0].client_closed.wait(WAIT) and not server.conns[0].reset  # the client hung up mid-drip
    lab.assert_clean()


# -- streams cut short ----------------------------------------------------------------------------------

HALF = b'data: {"choices": [{"delta": {"content": "half'  # an event the cut leaves unfinished: never yielded


def cut_script(how: str, seen: threading.Event) -> Script:
    def script(conn: Conn) -> None:
        framing = {"close-delimited": "close", "short-length": "length"}.get(how, "chunked")
        conn.head(framing=framing, length=100_000)
        for data in text_events("a", "b"):
            conn.body(data)
        if how == "reset":
            conn.wait_for(seen)  # the client has what was sent (a reset may drop unread data)
            conn.reset_now()
        elif how == "inside-chunk":  # 0x100 bytes announced, 16 sent
            conn.send(b'100\r\ndata: {"choi')
            conn.cut()
        elif how in ("between-chunks", "close-delimited", "short-length"):  # EOF: before the declared length, for the latter
            conn.body(HALF)
            conn.cut()
        else:  # a well-framed end, but no finish_reason and no [DONE]
            conn.end()

    return script


@pytest.mark.parametrize("how", ["reset", "inside-chunk", "between-chunks", "short-length", "close-delimited", "chunked-end"])
def test_a_cut_stream_yields_what_arrived_then_says_it_was_cut(lab: Lab, driver: Driver, how: str) -> None:
    seen = threading.Event()
    server = lab.serve(cut_script(how, seen))
    outcome = driver.collect(lambda chunk: chunk == "b" and seen.set(), api_base=base(server))
    error = outcome.raised(ResponseError, "cut")
    assert type(error) is ResponseError
    assert outcome.chunks[1:] == ["a", "b"]
    lab.assert_clean(closed=how != "chunked-end")  # a well-framed body leaves a reusable connection


# -- the caller leaves early ------------------------------------------------------------------------------


def assert_closed(server: ScriptedServer) -> Callable[[], None]:
    """Bounded by ``WAIT``, shorter than the call's read timeout (10 s): only the leaving can close it."""

    def check() -> None:
        assert server.all_closed(), "the client did not close the connection when the caller left"

    return check


@pytest.mark.parametrize("kind", ["stalled", "endless"])
@pytest.mark.parametrize("driver, how", LEAVES, indirect=["driver"])
def test_leaving_early_closes_the_connection_at_once(lab: Lab, driver: Driver, how: str, framing: str, kind: str) -> None:
    """Sync: close(), break, an exception in the loop; async: break, aclose(), async with, an
    exception, cancellation, the caller's fail_after. Against a server that stalls (the reader is
    blocked) and one that never stops sending. ``close``, ``aclose``, ``async-with``, ``cancel`` and
    ``fail-after`` close the connection while the caller still holds the iterator."""
    server = lab.serve(stall(text_events("a", "b"), framing) if kind == "stalled" else endless(framing))
    driver.leave(how, check=assert_closed(server), api_base=base(server))
    lab.assert_clean()


@pytest.mark.parametrize("driver, how", LEAVES, indirect=["driver"])
def test_leaving_a_router_stream_early_tries_no_other_provider(lab: Lab, driver: Driver, how: str) -> None:
    """The caller's leaving goes through the failover loop: it closes the stream and does not count
    as a failure that moves on."""
    server = lab.hub_and_router(hub(mapping("first", "second"), {"first": stall(text_events("a")), "second": stream(chat_stream("b"))}))
    driver.leave(how, check=assert_closed(server))
    assert posts(server) == ["/first/v1/chat/completions"]
    lab.assert_clean()


# -- huge events ----------------------------------------------------------------------------------------


def huge(size: int, lines: bool = False) -> Script:
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
        outcome = driver.collect(api_base=base(server), **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * MiB, f"peak {peak / MiB:.1f} MiB for a {size / MiB:.0f} MiB event"  # ~8-12 MiB measured
    outcome.raised(ResponseError, message + ".*max_event_bytes")
    lab.assert_clean()


def test_an_event_under_the_cap_arrives_whole(lab: Lab, driver: Driver) -> None:
    text = "y" * (3 * MiB)
    server = lab.serve(stream(chat_stream(text)))
    outcome = driver.collect(api_base=base(server))
    assert outcome.error is None and outcome.text == text
    lab.assert_clean(closed=False)


# -- what servers say in the body instead of a stream ------------------------------------------------------
# (What each HTTP error status becomes, and the server's message in it: test_errors, request level.)


def sse_body(*raw: bytes) -> Script:
    """A text delta "a", then ``raw``; then the server holds the stream open: the client must close it."""
    return stall(text_events("a") + list(raw))


HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Welcome</body></html>"

# case: (script, error class, what the error says ({url}: the chat URL), the text before it, whether
# the client must close the connection (False: a whole answer may leave it idle in the pool))
PAYLOADS: Dict[str, Tuple[Script, type, str, str, bool]] = {
    "invalid-json": (sse_body(b'data: {"choices": [\n\n'), ResponseError, "malformed JSON", "a", True),
    "html-200": (answer(200, HTML, "text/html; charset=utf-8"), ResponseError, r"HTTP 200 .*'text/html; charset=utf-8'.*{url}", "", False),
    "text-200": (answer(200, b"Welcome", "text/plain"), ResponseError, r"HTTP 200 .*'text/plain'.*{url}", "", False),
    "no-content-type-200": (answer(200, b"Welcome", ""), ResponseError, r"HTTP 200 .*'none'.*{url}", "", False),
    "json-error-200": (answer(200, {"error": "Model too busy, unable to get response"}), ResponseError, "Model too busy", "", False),
    "json-error-object-200": (answer(200, {"error": {"message": "model is overloaded", "type": "server_error"}}), ResponseError, "model is overloaded", "", False),
    "event-error": (sse_body(event({"message": "upstream overloaded"}, name="error")), ResponseError, "upstream overloaded", "a", True),
    "stream-openai": (
        sse_body(event({"error": {"message": "context length exceeded", "type": "invalid_request_error", "code": "context_length_exceeded"}})),
        ResponseError,
        "context length exceeded",
        "a",
        True,
    ),
    "stream-tgi": (
        sse_body(event({"error": "Request failed during generation: CUDA out of memory", "error_type": "generation"})),
        ResponseError,
        "CUDA out of memory",
        "a",
        True,
    ),
    "stream-vllm": (
        sse_body(event({"object": "error", "message": "vLLM engine died", "type": "InternalServerError", "code": 500})),
        ResponseError,
        "vLLM engine died",
        "a",
        True,
    ),
    # Status errors cross the async bridge whole: the same class, attributes and (whole) message.
    "status-402": (
        answer(402, {"error": "You have exceeded your monthly included credits"}),
        PaymentRequiredError,
        r"^HTTP 402 from provider '127\.0\.0\.1', model 'org/model', {url}: You have exceeded your monthly included credits \(credits exhausted",
        "",
        False,
    ),
    "status-401": (answer(401, {"error": "Invalid credentials in Authorization header"}), MissingAuthError, "HTTP 401.*Invalid credentials", "", False),
    "status-429": (answer(429, {"error": "Too many requests"}, headers={"Retry-After": "7"}), RateLimitError, "HTTP 429.*Too many requests", "", False),
}


@pytest.mark.parametrize("case", list(PAYLOADS))
def test_errors_in_the_body_become_typed_errors_with_the_servers_message(lab: Lab, driver: Driver, case: str) -> None:
    script, kind, message, text, closed = PAYLOADS[case]
    server = lab.serve(script)
    outcome = driver.collect(api_base=base(server))
    error = outcome.raised(kind, message.replace("{url}", re.escape(chat_url(server))))
    assert outcome.text == text  # what came before the error reached the caller first
    if isinstance(error, ResponseStatusError):
        assert error.status_code == int(case.split("-")[1]) and error.provider == "127.0.0.1"
    if isinstance(error, RateLimitError):
        assert error.retry_after == 7.0
    assert len(posts(server)) == 1  # no retry by default
    lab.assert_clean(closed=closed)


# -- failover on the wire ---------------------------------------------------------------------------------
# (Which statuses move on and which raise, and the error when all fail: test_provider, request level.)



@pytest.mark.parametrize("failure", ["503", "stall-before-content", "reset-before-headers"])
def test_failover_to_the_next_provider_before_content(lab: Lab, driver: Driver, failure: str) -> None:
    first = {
        "503": answer(503, {"error": "try elsewhere"}),
        "stall-before-content": stall([b": still thinking\n\n"]),
        "reset-before-headers": lambda conn: conn.reset_now(),
    }[failure]
    server = lab.hub_and_router(hub(mapping("first", "second"), {"first": first, "second": stream(chat_stream("from", " b"))}))
    outcome = driver.collect(**({"timeout": Timeouts(connect=5, read=0.5)} if failure == "stall-before-content" else {}))
    assert outcome.error is None
    attempt = outcome.chunks[1]
    assert outcome.chunks == [
        ProviderInfo("HuggingFace (first)", MODEL, "first"),
        attempt,
        ProviderInfo("HuggingFace (second)", MODEL, "second"),
        "from",
        " b",
        FinishReason("stop"),
    ]
    assert isinstance(attempt, Attempt) and attempt.provider == "first"
    expected = {"503": (503, "try elsewhere"), "stall-before-content": (None, "no data for 0.5 s"), "reset-before-headers": (None, "was reset")}[failure]
    assert attempt.status == expected[0] and expected[1] in attempt.reason
    assert posts(server) == ["/first/v1/chat/completions", "/second/v1/chat/completions"]
    assert server.requests("POST")[1].json()["model"] == "second-id"
    if failure == "stall-before-content":  # the stalled stream's connection (the Hub's before it) is closed
        assert server.conns[0].client_closed.wait(WAIT)
    lab.assert_clean(closed=False)


@pytest.mark.parametrize(
    "ending, message",
    [("error event", "overloaded"), ("cut", "cut"), ("stall", r"no data for 0\.5 s")],
)
def test_no_failover_after_content_was_yielded(lab: Lab, driver: Driver, ending: str, message: str) -> None:
    events = text_events("partial") + ([b'data: {"error": "overloaded"}\n\n'] if ending == "error event" else [])

    def first(conn: Conn) -> None:
        conn.head()
        for data in events:
            conn.body(data)
        if ending == "cut":
            conn.cut()
        else:
            conn.hold()

    server = lab.hub_and_router(hub(mapping("first", "second"), {"first": first, "second": stream(chat_stream("other"))}))
    outcome = driver.collect(**({"timeout": Timeouts(connect=5, read=0.5)} if ending == "stall" else {}))
    error = outcome.raised(ResponseError, message)
    assert outcome.text == "partial" and not hasattr(error, "attempts")
    assert not [chunk for chunk in outcome.chunks if isinstance(chunk, Attempt)]
    assert posts(server) == ["/first/v1/chat/completions"]
    lab.assert_clean()


def test_the_total_deadline_is_for_the_whole_call_across_providers(lab: Lab, driver: Driver) -> None:
    """The first provider's stall uses up the call's 0.4 s (the read timeout is 10 s): the others are
    not even asked, which a deadline per provider would do, 0.4 s each; once a deadline of the whole
    call has passed, the call ends with it (no Attempt for providers nobody asked)."""
    server = lab.hub_and_router(hub(mapping("a", "b", "c", "d"), stall([b": thinking\n\n"])))
    outcome = driver.collect(timeout=Timeouts(connect=5, read=10, total=0.4))
    error = outcome.raised(StreamTimeoutError, "^total deadline passed .provider 'a'")
    assert getattr(error, "deadline") == "total deadline" and not hasattr(error, "attempts")
    assert [getattr(chunk, "provider", None) for chunk in outcome.chunks] == ["a"]
    assert outcome.text == "" and posts(server) == ["/a/v1/chat/completions"]
    lab.assert_clean()


# -- rate limits ----------------------------------------------------------------------------------------


class Pauses(List[float]):
    """The rate-limit waits failover asked for (and waited out): ``started`` is set at the first."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> Pauses:
    """Records each rate-limit wait, sync (``failover._sleep``) and async (``Cancel.pause``), and
    still waits it: the values are what the library decided, the waits are real."""
    asked = Pauses()
    sleep, pause = failover._sleep, transport.Cancel.pause

    def recorded_sleep(seconds: float) -> bool:
        asked.append(seconds)
        asked.started.set()
        return sleep(seconds)

    def recorded_pause(self: transport.Cancel, seconds: float) -> bool:
        asked.append(seconds)
        asked.started.set()
        return pause(self, seconds)

    monkeypatch.setattr(failover, "_sleep", recorded_sleep)
    monkeypatch.setattr(transport.Cancel, "pause", recorded_pause)
    return asked


def rate_limited(times: int, retry_after: Optional[str]) -> Script:
    """429 for the first ``times`` requests, then a stream."""
    count = [0]

    def script(conn: Conn) -> None:
        count[0] += 1
        if count[0] <= times:
            conn.reply_json(429, {"error": "slow down"}, {} if retry_after is None else {"Retry-After": retry_after})
        else:
            stream(chat_stream("after the wait"))(conn)

    return script


@pytest.mark.parametrize("retry_after", [None, "3", "date"])
def test_429_moves_on_to_the_next_provider_without_waiting(lab: Lab, driver: Driver, pauses: Pauses, retry_after: Optional[str]) -> None:
    import email.utils
    import time

    headers = {} if retry_after is None else {"Retry-After": email.utils.formatdate(time.time() + 3, usegmt=True) if retry_after == "date" else retry_after}
    first = lambda conn: conn.reply_json(429, {"error": "rate limited"}, headers)  # noqa: E731
    server = lab.hub_and_router(hub(mapping("first", "second"), {"first": first, "second": stream(chat_stream("served by second"))}))
    outcome = driver.collect()
    assert outcome.error is None and outcome.text == "served by second"
    assert [c.provider for c in outcome.chunks if isinstance(c, ProviderInfo)] == ["first", "second"]
    assert [(c.provider, c.status) for c in outcome.chunks if isinstance(c, Attempt)] == [("first", 429)]
    assert posts(server) == ["/first/v1/chat/completions", "/second/v1/chat/completions"]
    assert pauses == []  # moving on does not wait for Retry-After
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


@pytest.mark.parametrize(
    "times, retry_after, cap, served, waits",
    [
        (1, "0.3", 0.0, False, []),  # default: no retry
        (1, "0", 0.0, False, []),  # default: no retry, even for "Retry-After: 0"
        (1, "0.3", 2.0, True, [0.3]),  # opt-in: waits Retry-After, then retries
        (1, "30", 2.0, False, []),  # longer than the cap: no wait
        (1, None, 2.0, False, []),  # no Retry-After: nothing to honour
        (5, "0.1", 2.0, False, [0.1]),  # one retry per provider, not a loop
    ],
)
def test_opt_in_retry_honours_retry_after_up_to_a_cap(
    lab: Lab, driver: Driver, pauses: Pauses, times: int, retry_after: Optional[str], cap: float, served: bool, waits: List[float]
) -> None:
    server = lab.serve(rate_limited(times, retry_after))
    outcome = driver.collect(api_base=base(server), retry_rate_limited=cap)
    if served:
        assert outcome.error is None and outcome.text == "after the wait"
    else:
        outcome.raised(RateLimitError, "slow down")
    assert pauses == waits and len(posts(server)) == 1 + len(waits)
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


def test_opt_in_retry_waits_on_the_same_provider_first(lab: Lab, driver: Driver, pauses: Pauses) -> None:
    server = lab.hub_and_router(hub(mapping("first", "second"), rate_limited(1, "0.2")))
    outcome = driver.collect(retry_rate_limited=1.0)
    assert outcome.error is None and outcome.text == "after the wait"
    assert posts(server) == ["/first/v1/chat/completions"] * 2 and pauses == [0.2]
    assert [c.provider for c in outcome.chunks if isinstance(c, ProviderInfo)] == ["first"]
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


@async_only
def test_leaving_during_a_rate_limit_wait_stops_at_once(lab: Lab, driver: Driver, pauses: Pauses) -> None:
    """The caller leaves once the 60 s wait has begun: the call ends, and its thread is gone, within
    the bounded waits (``WAIT``), without a retry."""
    server = lab.serve(rate_limited(5, "60"))

    async def main() -> None:
        async def consume() -> None:
            async for _ in HuggingFaceAPI.create_async_generator(MODEL, MESSAGES, api_base=base(server), api_key=TOKEN, retry_rate_limited=120):
                pass

        with anyio.fail_after(WAIT):  # the caller is not held up by the wait
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(consume)
                while not pauses.started.is_set():
                    await anyio.sleep(0.01)
                tasks.cancel_scope.cancel()

    anyio.run(main, backend=driver.mode)
    lab.assert_clean(closed=False)  # the worker thread is gone, long before the 60 s
    assert pauses == [60.0] and len(posts(server)) == 1


# -- Hub GETs: bounded retries with backoff -------------------------------------------------------------


def hub_answers(*statuses: int) -> Script:
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
    "statuses, outcome, waits",
    [
        pytest.param((503,), ResponseStatusError, [0.25, 0.5], id="5xx-thrice"),
        pytest.param((0,), ConnectError, [0.25, 0.5], id="reset-thrice"),
        pytest.param((503, 0, 200), None, [0.25, 0.5], id="recovers"),
        pytest.param((404,), ModelNotSupportedError, [], id="404-at-once"),
        pytest.param((429,), RateLimitError, [], id="429-at-once"),
    ],
)
def test_hub_gets_retry_connection_errors_and_5xx_a_bounded_number_of_times(
    lab: Lab, backoffs: List[float], statuses: tuple, outcome: Optional[type], waits: List[float]
) -> None:
    server = lab.hub_and_router(hub_answers(*statuses))
    if outcome is None:
        assert list(HuggingFaceAPI.get_mapping_sync(MODEL, api_key=TOKEN)) == ["good"]
    else:
        with pytest.raises(outcome):
            HuggingFaceAPI.get_mapping_sync(MODEL, api_key=TOKEN)
    assert backoffs == waits  # 0.25 s, then twice that
    assert len(server.requests()) == 1 + len(waits)
    lab.assert_clean(closed=False)


def test_listing_falls_back_after_bounded_retries_and_does_not_cache_the_failure(lab: Lab, backoffs: List[float]) -> None:
    server = lab.hub_and_router(hub_answers(503))
    fallback = HuggingFaceAPI.get_models(refresh=True, api_key=TOKEN)
    assert fallback == HuggingFaceAPI.fallback_models and len(server.requests()) == 3
    HuggingFaceAPI.get_models(api_key=TOKEN)
    assert len(server.requests()) == 6 and backoffs == [0.25, 0.5] * 2
    lab.assert_clean(closed=False)


# -- secrets on the wire --------------------------------------------------------------------------------
# (No token over plain http, and what each HTTP error status echoing it shows: test_provider, test_errors.)


def authorizations(server: ScriptedServer) -> List[Optional[str]]:
    return [request.headers.get("authorization") for request in server.requests()]


def test_the_token_goes_to_the_hub_and_router_or_to_api_base_only(lab: Lab, driver: Driver) -> None:
    router = lab.serve(stream(chat_stream("ok")))
    hub_server = lab.serve(hub(mapping("good"), stream([])))
    lab.monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    lab.monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", router.url)
    own = lab.serve(stream(chat_stream("mine")))
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
    assert list(HuggingFaceAPI.get_mapping_sync(MODEL, api_key=TOKEN)) == ["good"]
    if target == "same-origin":  # the Hub's own redirects (renamed repos) keep working with the token
        assert authorizations(hub_server) == [f"Bearer {TOKEN}"] * 2 and elsewhere.requests() == []
    else:
        assert authorizations(elsewhere) == [None]
    lab.assert_clean(closed=False)


@pytest.mark.parametrize("status", [302, 307, 308])
def test_a_redirected_post_is_not_followed(lab: Lab, driver: Driver, status: int) -> None:
    elsewhere = lab.serve(stream(chat_stream("stolen")))
    server = lab.serve(answer(status, b"", "text/plain", {"Location": base(elsewhere) + "/chat/completions"}))
    outcome = driver.collect(api_base=base(server))
    error = outcome.raised(ResponseStatusError, f"HTTP {status}.*redirect")
    assert getattr(error, "status_code") == status and elsewhere.requests() == []
    lab.assert_clean(closed=False)  # a complete error answer may leave its connection idle in the pool


ECHOES = {  # the token echoed inside the stream (echoed in an error answer: test_errors)
    "error-event": sse_body(event({"message": f"your token {TOKEN} expired"}, name="error")),
    "in-stream": sse_body(event({"error": f"your token {TOKEN} expired"})),
    "invalid-json": sse_body(f"data: {{{TOKEN}\n\n".encode()),
    "text-after-close": sse_body(f"data: {TOKEN}\n\n".encode()),
}


@pytest.mark.parametrize("case", list(ECHOES))
def test_the_token_never_appears_in_errors_or_logs_even_when_echoed_in_the_stream(lab: Lab, driver: Driver, caplog: pytest.LogCaptureFixture, case: str) -> None:
    caplog.set_level(logging.DEBUG, "hf_textgen")
    caplog.set_level(logging.DEBUG, "urllib3")
    lab.monkeypatch.setattr(errors, "_known_secrets", set())  # what earlier tests registered does not count
    server = lab.serve(ECHOES[case])
    outcome = driver.collect(api_base=base(server))
    error = outcome.raised(HFTextGenError)
    shown = [str(error), repr(error), "".join(traceback.format_exception(type(error), error, error.__traceback__)), caplog.text]
    shown += [str(getattr(error, "server_message", "")), repr(getattr(error, "attempts", ""))]
    shown += [record.getMessage() for record in caplog.records]
    assert not [text for text in shown if TOKEN in text]
    assert authorizations(server) == [f"Bearer {TOKEN}"]
    lab.assert_clean()


def test_repr_of_a_built_request_hides_the_token() -> None:
    request = build.api_base_request("http://127.0.0.1:1/v1", MODEL, {"stream": True}, TOKEN)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}" and TOKEN not in repr(request)


def test_cached_mappings_are_per_token(lab: Lab, driver: Driver) -> None:
    def per_token(conn: Conn) -> None:
        if conn.request.method == "GET":
            name = "alpha" if conn.request.headers.get("authorization") == f"Bearer {TOKEN}" else "beta"
            conn.reply_json(200, {"id": MODEL, "inferenceProviderMapping": mapping(name)})
        else:
            stream(chat_stream("ok"))(conn)

    server = lab.hub_and_router(per_token)
    for token in (TOKEN, "hf_other", TOKEN, "hf_other"):
        assert driver.collect(api_key=token).text == "ok"
    assert [r.path.split("?")[0] for r in server.requests("GET")] == [f"/api/models/{MODEL}"] * 2
    assert posts(server) == ["/alpha/v1/chat/completions", "/beta/v1/chat/completions"] * 2
    lab.assert_clean(closed=False)


# -- releasing a thread blocked in recv -----------------------------------------------------------------
# The read timeout is 30 s: only the stop under test can release the reader within the bounded waits.

BLOCKING = Timeouts(connect=5, read=30)


def iterate_in_a_thread(server: ScriptedServer, seen: threading.Event) -> Tuple[transport.Cancel, threading.Event, threading.Thread, List[Any]]:
    cancel = transport.Cancel()  # what the async bridge uses to stop a call from another thread
    call = HuggingFaceAPI.client()._prepare(MODEL, MESSAGES, (), dict(api_base=base(server), api_key=TOKEN, timeout=BLOCKING))
    finished = threading.Event()
    result: List[Any] = []

    def run() -> None:
        try:
            for chunk in chat.run(call, cancel=cancel):
                result.append(chunk)
                if isinstance(chunk, str):
                    seen.set()
        except HFTextGenError as error:
            result.append(error)
        finally:
            finished.set()

    thread = threading.Thread(target=run)
    thread.start()
    return cancel, finished, thread, result


@pytest.mark.parametrize("where", ["mid-stream", "waiting-for-headers"])
def test_a_cancel_releases_a_thread_blocked_in_recv(lab: Lab, where: str) -> None:
    """Mid-stream, and while waiting for the answer's headers (the connection hands its socket to
    the watch before waiting): the reader ends quietly (the caller asked to stop: no error, no
    failover) and the server sees the connection closed."""
    server = lab.serve(stall(text_events("a", "b")) if where == "mid-stream" else silent)
    seen = threading.Event()
    cancel, finished, thread, result = iterate_in_a_thread(server, seen)
    if where == "mid-stream":
        assert seen.wait(WAIT)
    else:
        assert wait_until(lambda: len(server.requests()) == 1), "the request never arrived"
    cancel()
    assert finished.wait(WAIT), "the cancel did not release the reader"
    thread.join()
    assert server.all_closed()
    assert not [item for item in result if isinstance(item, BaseException)]
    assert [item for item in result if isinstance(item, str)] == (["a", "b"] if where == "mid-stream" else [])
    lab.assert_clean()


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return True
        done.wait(0.01)
    return condition()


@async_only
def test_leaving_while_waiting_for_response_headers_frees_the_worker_at_once(lab: Lab, driver: Driver) -> None:
    server = lab.serve(silent)

    async def main() -> None:
        with anyio.fail_after(WAIT):  # the caller is not held up until the 30 s read timeout
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tasks:

                    async def consume() -> None:
                        async for _ in HuggingFaceAPI.create_async_generator(MODEL, MESSAGES, api_base=base(server), api_key=TOKEN, timeout=BLOCKING):
                            pass

                    tasks.start_soon(consume)
                    while not server.requests():  # the worker now waits for the headers
                        await anyio.sleep(0.01)
                    scope.cancel()

    anyio.run(main, backend=driver.mode)
    lab.assert_clean()  # the worker thread and its socket are gone, long before the read timeout
