"""Streaming end to end on real loopback servers (``support.ScriptedServer``), in both framings
(chunked and close-delimited), through ``api_base=`` and through the Hub mapping + router path.

Timing is coordinated with ``threading.Event``; bounds on the time to an error are loose."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

import pytest

from hf_textgen import HuggingFaceAPI
from hf_textgen.errors import (
    HFTextGenError,
    MissingAuthError,
    PaymentRequiredError,
    RateLimitError,
    ResponseError,
    ResponseStatusError,
    StreamTimeoutError,
)
from hf_textgen.types import Attempt, Chunk, FinishReason, ProviderInfo, Timeouts, Usage

from support import (
    WAIT,
    Exchange,
    Handler,
    ScriptedServer,
    chat_stream,
    completion,
    cut_handler,
    delta,
    keepalive_handler,
    lockstep_handler,
    mapping_handler,
    routes,
    silent_handler,
    sse_event,
    stalling_handler,
    status_handler,
    stream_handler,
)

MODEL = "org/model"
MESSAGES = [{"role": "user", "content": "Hi"}]
USAGE = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
PROVIDER_ID = "org/model-turbo"
QUICK = Timeouts(connect=2, read=0.3)  # a stall ends the stream in 0.3 s


@dataclass
class Client:
    """Calls ``create_completion`` the way a user would, through one of the two paths."""

    path: str  # "api_base" or "mapping"
    monkeypatch: pytest.MonkeyPatch

    def serve(self, handler: Handler, gates: Iterable[threading.Event] = ()) -> ScriptedServer:
        """A server answering the chat POST with ``handler`` (and the Hub's mapping GET)."""
        if self.path == "mapping":
            handler = routes({"GET /api/models/": mapping_handler({"together": PROVIDER_ID}), "POST /together/v1/chat/completions": handler})
        return ScriptedServer(handler, gates)

    def complete(self, server: ScriptedServer, **kw: Any) -> Iterator[Chunk]:
        if self.path == "api_base":
            return HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_base=server.url + "/v1", api_key="hf_test", **kw)
        self.monkeypatch.setenv("HF_ENDPOINT", server.url)
        self.monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", server.url)
        return HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_key="hf_test", **kw)

    @property
    def provider(self) -> str:
        return "127.0.0.1" if self.path == "api_base" else "together"


@pytest.fixture(params=["api_base", "mapping"])
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Client:
    return Client(request.param, monkeypatch)


@pytest.fixture
def api_base(monkeypatch: pytest.MonkeyPatch) -> Client:
    return Client("api_base", monkeypatch)


@pytest.fixture
def mapped(monkeypatch: pytest.MonkeyPatch) -> Client:
    return Client("mapping", monkeypatch)


def content(stream: Iterable[Chunk]) -> Iterator[Chunk]:
    """The stream without ``ProviderInfo`` and ``Attempt`` (who answers, and who failed before)."""
    return (chunk for chunk in stream if not isinstance(chunk, (ProviderInfo, Attempt)))


def until_error(stream: Iterable[Chunk]) -> Tuple[List[Chunk], float, Optional[HFTextGenError]]:
    """What arrived before the error, the seconds it took, and the error (None if none)."""
    got: List[Chunk] = []
    started = time.monotonic()
    try:
        for chunk in content(stream):
            got.append(chunk)
    except HFTextGenError as error:
        return got, time.monotonic() - started, error
    return got, time.monotonic() - started, None


def post(server: ScriptedServer, index: int = 0) -> Exchange:
    return server.requests("POST")[index]


# --- what arrives, and when ----------------------------------------------------------------------


def test_all_events_arrive_in_order(client: Client, framing: str) -> None:
    with client.serve(stream_handler(chat_stream("Hel", "lo", " world", "\n", usage=USAGE), framing)) as server:
        got = list(client.complete(server, temperature=0.5))
    assert got == [
        ProviderInfo(f"HuggingFace ({client.provider})", MODEL, client.provider),
        "Hel",
        "lo",
        " world",
        "\n",
        FinishReason("stop"),
        Usage(3, 4, 7),
    ]
    request = post(server)
    body = request.json()
    assert body["model"] == (MODEL if client.path == "api_base" else PROVIDER_ID)
    assert body["stream"] is True and body["messages"] == MESSAGES and body["temperature"] == 0.5
    assert request.headers["authorization"] == "Bearer hf_test"
    assert request.headers["accept"] == "text/event-stream"


def test_first_event_reaches_the_caller_while_the_server_holds_the_rest(client: Client, framing: str) -> None:
    held = threading.Event()
    with client.serve(lockstep_handler(chat_stream("first", "second"), [held], framing), [held]) as server:
        stream = content(client.complete(server))
        assert next(stream) == "first"  # were it buffered, the server would cut the stream instead
        held.set()
        assert list(stream) == ["second", FinishReason("stop")]


def test_every_event_reaches_the_caller_in_lock_step(client: Client, framing: str) -> None:
    expected = ["a", " b", "c ", FinishReason("stop")]
    acks = [threading.Event() for _ in expected]
    with client.serve(lockstep_handler(chat_stream("a", " b", "c "), acks, framing), acks) as server:
        stream = content(client.complete(server))
        for ack, want in zip(acks, expected):
            assert next(stream) == want
            ack.set()
        assert list(stream) == []


def odd_pieces(data: bytes) -> Iterator[bytes]:
    sizes = [1, 2, 3, 5, 7, 11, 13, 17]
    start = 0
    for i in range(len(data)):
        if start >= len(data):
            return
        yield data[start : start + sizes[i % len(sizes)]]
        start += sizes[i % len(sizes)]


def test_events_split_at_odd_byte_boundaries(api_base: Client, framing: str) -> None:
    texts = ["é€😀", " two\r\n", "thr", "ee"]
    body = b"".join(chat_stream(*texts, usage=USAGE)).replace(b"\n\n", b"\r\n\r\n")
    with api_base.serve(stream_handler(odd_pieces(body), framing)) as server:
        assert list(content(api_base.complete(server))) == [*texts, FinishReason("stop"), Usage(3, 4, 7)]


def test_non_stream_answer(client: Client, framing: str) -> None:
    def handle(exchange: Exchange) -> None:
        if framing == "chunked":
            exchange.respond_json(200, completion(" Hi there! ", usage=USAGE))
        else:
            exchange.start(content_type="application/json", framing="close")
            exchange.chunk(b'{"choices": [{"message": {"content": " Hi there! "}, "finish_reason": "stop"}], ')
            exchange.chunk(b'"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}')
            exchange.end()

    with client.serve(handle) as server:
        assert list(content(client.complete(server, stream=False))) == [" Hi there! ", FinishReason("stop"), Usage(3, 4, 7)]
    assert post(server).json()["stream"] is False
    assert post(server).headers["accept"] == "application/json"


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "text/plain"])
def test_a_200_answer_of_another_content_type_raises(api_base: Client, content_type: str) -> None:
    def handle(exchange: Exchange) -> None:
        exchange.respond(200, b"<!doctype html><html><body>Welcome</body></html>", content_type)

    with api_base.serve(handle) as server:
        got, _, error = until_error(api_base.complete(server))
    assert got == [] and isinstance(error, ResponseError)
    assert "HTTP 200" in str(error) and content_type in str(error)


# --- the connection is closed on every exit path -------------------------------------------------


def stalled(api_base: Client, framing: str, events: List[bytes]) -> Tuple[ScriptedServer, threading.Event]:
    """A server that sends ``events`` and then holds the stream open, sending nothing."""
    gate = threading.Event()
    return api_base.serve(stalling_handler(events, gate, framing), [gate]), gate


def assert_closed_by_client(server: ScriptedServer) -> None:
    assert post(server).closed_by_client.wait(WAIT), "the client did not close the connection"


def test_error_event_mid_stream_raises_and_closes(api_base: Client, framing: str) -> None:
    server, _ = stalled(api_base, framing, [sse_event(delta("a")), b'data: {"error": {"message": "GPU on fire"}}\n\n'])
    with server:
        got, _, error = until_error(api_base.complete(server))
        assert got == ["a"] and isinstance(error, ResponseError) and "GPU on fire" in str(error)
        assert_closed_by_client(server)


def close_after_a(stream: Iterator[Chunk]) -> None:
    assert next(content(stream)) == "a"
    stream.close()  # type: ignore[attr-defined]


def break_after_a(stream: Iterator[Chunk]) -> None:
    for chunk in stream:
        if chunk == "a":
            break


def raise_after_a(stream: Iterator[Chunk]) -> None:
    with pytest.raises(KeyError):
        for chunk in stream:
            if chunk == "a":
                raise KeyError("a bug in the caller's loop")


@pytest.mark.parametrize("leave", [close_after_a, break_after_a, raise_after_a])
def test_a_caller_who_stops_early_closes_the_connection(client: Client, framing: str, leave: Callable[[Iterator[Chunk]], None]) -> None:
    gate = threading.Event()
    with client.serve(stalling_handler([sse_event(delta("a")), sse_event(delta("b"))], gate, framing), [gate]) as server:
        leave(client.complete(server))  # the stream object is dropped here, as in a user's loop
        assert_closed_by_client(server)


# --- connections are reused ----------------------------------------------------------------------


def test_sequential_streams_reuse_one_keep_alive_connection(client: Client) -> None:
    with client.serve(stream_handler(chat_stream("x", "y"), "chunked")) as server:
        for _ in range(3):
            assert list(content(client.complete(server))) == ["x", "y", FinishReason("stop")]
    assert len(server.requests("POST")) == 3
    assert server.connections == 1


def test_a_cookie_set_by_one_answer_is_not_sent_with_the_next_request(api_base: Client) -> None:
    def handle(exchange: Exchange) -> None:
        exchange.start(extra="Set-Cookie: affinity=node-7; Path=/\r\n")
        for event in chat_stream("x"):
            exchange.chunk(event)
        exchange.end()

    with api_base.serve(handle) as server:
        for _ in range(2):
            assert list(content(api_base.complete(server))) == ["x", FinishReason("stop")]
    assert [exchange.headers.get("cookie") for exchange in server.requests("POST")] == [None, None]


def test_close_delimited_streams_each_use_a_connection(api_base: Client) -> None:
    with api_base.serve(stream_handler(chat_stream("x"), "close")) as server:
        for _ in range(3):
            assert list(content(api_base.complete(server))) == ["x", FinishReason("stop")]
    assert server.connections == 3


def test_twenty_concurrent_streams(api_base: Client, framing: str) -> None:
    together = threading.Barrier(20, timeout=WAIT)  # every stream is open at the same time

    def handle(exchange: Exchange) -> None:
        together.wait()
        index = exchange.json()["messages"][0]["content"]
        stream_handler(chat_stream(index, "-", index), framing)(exchange)

    def run(index: int) -> List[Chunk]:
        messages = [{"role": "user", "content": str(index)}]
        return list(content(HuggingFaceAPI.create_completion(MODEL, messages, api_base=server.url + "/v1", api_key="hf_test")))

    with api_base.serve(handle) as server:
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(run, range(20)))
    assert results == [[str(i), "-", str(i), FinishReason("stop")] for i in range(20)]
    assert server.connections == 20


# --- cut streams, stalls and deadlines -----------------------------------------------------------


@pytest.mark.parametrize(
    "framing, inside_chunk", [("chunked", False), ("close", False), ("chunked", True)], ids=["chunked", "close", "inside-a-chunk"]
)
def test_a_cut_stream_raises_after_yielding_what_arrived(client: Client, framing: str, inside_chunk: bool) -> None:
    events = [sse_event(delta("a")), sse_event(delta("b")), b'data: {"choices": [{"delta": {"content": "half']
    with client.serve(cut_handler(events, framing, inside_chunk)) as server:
        got, elapsed, error = until_error(client.complete(server))
    assert got == ["a", "b"]
    assert isinstance(error, ResponseError) and "cut" in str(error), error
    assert elapsed < 5


def test_a_stall_mid_stream_is_a_read_timeout(client: Client, framing: str) -> None:
    gate = threading.Event()
    with client.serve(stalling_handler([sse_event(delta("a"))], gate, framing), [gate]) as server:
        got, elapsed, error = until_error(client.complete(server, timeout=QUICK))
        assert got == ["a"] and isinstance(error, StreamTimeoutError) and "no data for 0.3 s" in str(error)
        assert elapsed < 5
        assert_closed_by_client(server)


def test_total_deadline_fires_although_keep_alives_arrive(api_base: Client, framing: str) -> None:
    handler = keepalive_handler([sse_event(delta("a"))], framing=framing)
    with api_base.serve(handler) as server:
        got, elapsed, error = until_error(api_base.complete(server, timeout=Timeouts(connect=2, read=2, total=0.5)))
        assert got == ["a"] and isinstance(error, StreamTimeoutError) and "total deadline" in str(error)
        assert 0.4 < elapsed < 5
        assert_closed_by_client(server)


def test_time_to_first_token_deadline(api_base: Client, framing: str) -> None:
    with api_base.serve(keepalive_handler(framing=framing)) as server:
        got, elapsed, error = until_error(api_base.complete(server, timeout=Timeouts(connect=2, read=2, first_token=0.4)))
        assert got == [] and isinstance(error, StreamTimeoutError) and "time-to-first-token" in str(error)
        assert elapsed < 5
        assert_closed_by_client(server)


def test_after_the_first_token_only_the_idle_timeout_applies(api_base: Client, framing: str) -> None:
    def handle(exchange: Exchange) -> None:
        exchange.start(framing=framing)
        exchange.chunk(sse_event(delta("a")))
        exchange.wait_client_close(0.8)  # a pause longer than first_token, shorter than read
        for event in chat_stream("b"):
            exchange.chunk(event)
        exchange.end()

    with api_base.serve(handle) as server:
        got, _, error = until_error(api_base.complete(server, timeout=Timeouts(connect=2, read=3, first_token=0.3)))
    assert error is None and got == ["a", "b", FinishReason("stop")]


def test_total_deadline_fires_during_a_stall(api_base: Client, framing: str) -> None:
    server, _ = stalled(api_base, framing, [sse_event(delta("a"))])
    with server:
        got, elapsed, error = until_error(api_base.complete(server, timeout=Timeouts(connect=2, read=10, total=0.5)))
        assert got == ["a"] and isinstance(error, StreamTimeoutError) and "total deadline" in str(error)
        assert elapsed < 5  # not the 10 s read timeout
        assert_closed_by_client(server)


@pytest.mark.parametrize(
    "timeouts, what",
    [(Timeouts(connect=2, read=10, total=0.4), "total deadline"), (Timeouts(connect=2, read=10, first_token=0.4), "time-to-first-token")],
    ids=["total", "first-token"],
)
def test_deadlines_also_bound_the_wait_for_the_answer_headers(api_base: Client, timeouts: Timeouts, what: str) -> None:
    with api_base.serve(silent_handler) as server:
        got, elapsed, error = until_error(api_base.complete(server, timeout=timeouts))
        assert isinstance(error, StreamTimeoutError) and what in str(error), error
        assert elapsed < 5  # not the 10 s read timeout
        assert_closed_by_client(server)


# --- failover ------------------------------------------------------------------------------------


# name, route, providerId: routes differ per provider (SPEC.md table)
PROVIDERS = [
    ("together", "/v1/chat/completions", "org/model-a"),
    ("fireworks-ai", "/inference/v1/chat/completions", "org/model-b"),
    ("novita", "/v3/openai/chat/completions", "org/model-c"),
    ("groq", "/openai/v1/chat/completions", "org/model-d"),
]


def providers(*handlers: Handler) -> Handler:
    """The Hub's mapping lists one provider per handler, in order; each answers with its handler."""
    chosen = PROVIDERS[: len(handlers)]
    table = {f"POST /{name}{route}": handler for (name, route, _), handler in zip(chosen, handlers)}
    return routes({"GET /api/models/": mapping_handler({name: pid for name, _, pid in chosen}), **table})


def providers_posted(server: ScriptedServer) -> List[str]:
    return [exchange.path.split("/")[1] for exchange in server.requests("POST")]


@pytest.mark.parametrize("status, error_type", [(503, ResponseStatusError), (402, PaymentRequiredError), (429, RateLimitError), (404, ResponseStatusError)])
def test_failover_to_the_next_provider_before_content(mapped: Client, status: int, error_type: type) -> None:
    second = stream_handler(chat_stream("from", " b"))
    with ScriptedServer(providers(status_handler(status, "try elsewhere"), second)) as server:
        got = list(mapped.complete(server))
    assert got == [
        ProviderInfo("HuggingFace (together)", MODEL, "together"),
        Attempt("together", status, "try elsewhere"),
        ProviderInfo("HuggingFace (fireworks-ai)", MODEL, "fireworks-ai"),
        "from",
        " b",
        FinishReason("stop"),
    ]
    assert providers_posted(server) == ["together", "fireworks-ai"]
    assert post(server, 1).json()["model"] == "org/model-b"


def test_failover_after_a_stall_before_content(mapped: Client) -> None:
    gate = threading.Event()
    first = stalling_handler([b": still thinking\n\n"], gate)
    with ScriptedServer(providers(first, stream_handler(chat_stream("ok"))), [gate]) as server:
        assert list(content(mapped.complete(server, timeout=QUICK))) == ["ok", FinishReason("stop")]
        assert_closed_by_client(server)


def test_the_total_deadline_is_for_the_whole_call_across_providers(mapped: Client) -> None:
    gate = threading.Event()
    first = stalling_handler([b": thinking\n\n"], gate)
    with ScriptedServer(providers(first, first, first, first), [gate]) as server:
        got, elapsed, error = until_error(mapped.complete(server, timeout=Timeouts(connect=2, read=10, total=0.4)))
    assert got == [] and isinstance(error, StreamTimeoutError) and "total deadline" in str(error)
    assert elapsed < 1.0  # 0.4 s for the call, not 0.4 s for each of the 4 providers


@pytest.mark.parametrize("status, error_type", [(400, ResponseStatusError), (401, MissingAuthError)])
def test_no_failover_for_a_bad_request_or_token(mapped: Client, status: int, error_type: type) -> None:
    with ScriptedServer(providers(status_handler(status, "nope"), stream_handler(chat_stream("x")))) as server:
        got, _, error = until_error(mapped.complete(server))
    assert got == [] and type(error) is error_type and error.status_code == status  # type: ignore[union-attr]
    assert providers_posted(server) == ["together"]


def test_every_provider_failing_lists_each_answer(mapped: Client) -> None:
    with ScriptedServer(providers(status_handler(503, "down"), status_handler(429, "slow down"))) as server:
        got, _, error = until_error(mapped.complete(server))
    assert got == [] and isinstance(error, RateLimitError)
    assert [(name, failure.status_code) for name, failure in getattr(error, "attempts")] == [("together", 503), ("fireworks-ai", 429)]  # type: ignore[attr-defined]
    assert "together" in str(error) and "fireworks-ai" in str(error) and "down" in str(error) and "slow down" in str(error)


@pytest.mark.parametrize("ending", ["error event", "cut", "stall"])
def test_no_failover_after_content_was_yielded(mapped: Client, ending: str) -> None:
    gate = threading.Event()
    events = [sse_event(delta("partial"))]
    if ending == "error event":
        events.append(b'data: {"error": "overloaded"}\n\n')
    first = cut_handler(events, "chunked") if ending == "cut" else stalling_handler(events, gate)
    with ScriptedServer(providers(first, stream_handler(chat_stream("other"))), [gate]) as server:
        got, elapsed, error = until_error(mapped.complete(server, timeout=QUICK))
    assert got == ["partial"] and isinstance(error, ResponseError), error
    assert not hasattr(error, "attempts") and elapsed < 5
    assert providers_posted(server) == ["together"]
