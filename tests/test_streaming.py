"""Streaming that works, end to end on real loopback servers (``support.ScriptedServer``): what
arrives and when, and the connections it uses. Each case runs sync, on asyncio and on trio (the
``driver`` fixture), in both framings (chunked and close-delimited), through ``api_base=`` and
through the Hub mapping + router (``route``) where the path could change the outcome.

Faults (cuts, stalls, deadlines, leaving early, errors in the body, failover): test_hostile.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List

import pytest

from hf_textgen import HuggingFaceAPI
from hf_textgen.types import Chunk, FinishReason, ProviderInfo, Usage

from support import (
    MESSAGES,
    MODEL,
    TOKEN,
    WAIT,
    Conn,
    Driver,
    Lab,
    Script,
    ScriptedServer,
    chat_stream,
    completion,
    hub,
    lockstep,
    mapping,
    stream,
    text_events,
)

USAGE = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
PROVIDER_ID = "org/model-turbo"


@dataclass
class Route:
    """How a call reaches the server: ``api_base`` (the server is the endpoint) or ``router`` (the
    server plays the Hub, mapping MODEL to together, and the router)."""

    name: str
    lab: Lab

    def serve(self, chat: Script) -> ScriptedServer:
        if self.name == "router":
            return self.lab.hub_and_router(hub(mapping("together", together=PROVIDER_ID), chat))
        return self.lab.serve(chat)

    def options(self, server: ScriptedServer) -> Dict[str, Any]:
        return {"api_base": server.url + "/v1"} if self.name == "api_base" else {}

    @property
    def provider(self) -> str:
        return "127.0.0.1" if self.name == "api_base" else "together"

    @property
    def model_sent(self) -> str:
        return MODEL if self.name == "api_base" else PROVIDER_ID


@pytest.fixture(params=["api_base", "router"])
def route(request: pytest.FixtureRequest, lab: Lab) -> Route:
    return Route(request.param, lab)


def content(chunks: List[Any]) -> List[Any]:
    """The chunks without ``ProviderInfo`` (who answers)."""
    return [chunk for chunk in chunks if not isinstance(chunk, ProviderInfo)]


# --- what arrives, and when ----------------------------------------------------------------------


def test_all_events_arrive_in_order(route: Route, driver: Driver, framing: str) -> None:
    server = route.serve(stream(chat_stream("Hel", "lo", " world", "\n", usage=USAGE), framing))
    outcome = driver.collect(temperature=0.5, **route.options(server))
    assert outcome.error is None and outcome.chunks == [
        ProviderInfo(f"HuggingFace ({route.provider})", MODEL, route.provider),
        "Hel",
        "lo",
        " world",
        "\n",
        FinishReason("stop"),
        Usage(3, 4, 7),
    ]
    request = server.requests("POST")[0]
    body = request.json()
    assert body["model"] == route.model_sent
    assert body["stream"] is True and body["messages"] == MESSAGES and body["temperature"] == 0.5
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "text/event-stream"
    route.lab.assert_clean(closed=framing == "close")  # a finished chunked stream's connection goes back to the pool


def test_every_event_reaches_the_caller_as_it_arrives(route: Route, driver: Driver, framing: str) -> None:
    """Lock step: the server sends the next event only once the caller has the previous one (an ack
    that never comes cuts the stream), so a client that buffers, or reads ahead before yielding,
    fails loudly instead of passing late."""
    expected = ["a", " b", "c ", FinishReason("stop")]
    acks = [threading.Event() for _ in expected]
    received: List[Chunk] = []

    def on_chunk(chunk: Chunk) -> None:
        if isinstance(chunk, (str, FinishReason)):
            received.append(chunk)
            acks[len(received) - 1].set()

    server = route.serve(lockstep(chat_stream("a", " b", "c "), acks, framing))
    outcome = driver.collect(on_chunk, **route.options(server))
    assert outcome.error is None and received == expected
    route.lab.assert_clean(closed=framing == "close")


def odd_pieces(data: bytes) -> Iterator[bytes]:
    sizes = [1, 2, 3, 5, 7, 11, 13, 17]
    start = index = 0
    while start < len(data):
        size = sizes[index % len(sizes)]
        yield data[start : start + size]
        start += size
        index += 1


def test_events_split_at_odd_byte_boundaries(lab: Lab, framing: str) -> None:
    texts = ["é€😀", " two\r\n", "thr", "ee"]
    body = b"".join(chat_stream(*texts, usage=USAGE)).replace(b"\n\n", b"\r\n\r\n")
    server = lab.serve(stream(odd_pieces(body), framing))
    outcome = Driver("sync").collect(api_base=server.url + "/v1")
    assert content(outcome.chunks) == [*texts, FinishReason("stop"), Usage(3, 4, 7)]


def test_non_stream_answer(route: Route, driver: Driver, framing: str) -> None:
    def answer(conn: Conn) -> None:
        if framing == "chunked":  # with a Content-Length, in fact
            conn.reply_json(200, completion(" Hi there! ", usage=USAGE))
        else:
            conn.head(content_type="application/json", framing="close")
            conn.body(b'{"choices": [{"message": {"content": " Hi there! "}, "finish_reason": "stop"}], ')
            conn.body(b'"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}')
            conn.end()

    server = route.serve(answer)
    outcome = driver.collect(stream=False, **route.options(server))
    assert outcome.error is None and content(outcome.chunks) == [" Hi there! ", FinishReason("stop"), Usage(3, 4, 7)]
    request = server.requests("POST")[0]
    assert request.json()["stream"] is False and request.headers["accept"] == "application/json"


def test_a_finished_stream_may_end_without_done(lab: Lab, driver: Driver) -> None:
    server = lab.serve(stream(chat_stream("a", "b", done=False), framing="close"))
    outcome = driver.collect(api_base=server.url + "/v1")
    assert outcome.error is None and content(outcome.chunks) == ["a", "b", FinishReason("stop")]
    lab.assert_clean()  # close-delimited: the connection cannot be reused, the client closed it


def test_invalid_utf8_in_an_event_is_replaced_and_the_stream_goes_on(lab: Lab, driver: Driver) -> None:
    bad = b'data: {"choices":[{"index":0,"delta":{"content":"caf\xc3 \xff\xfe"}}]}\n\n'
    server = lab.serve(stream([*text_events("a"), bad, *chat_stream("b")]))
    outcome = driver.collect(api_base=server.url + "/v1")
    assert outcome.error is None
    assert outcome.text == "acaf\ufffd \ufffd\ufffdb"  # U+FFFD for each invalid byte sequence, as WHATWG says
    lab.assert_clean(closed=False)


# --- connections are reused ----------------------------------------------------------------------


def test_finished_streams_reuse_one_keep_alive_connection(route: Route, framing: str) -> None:
    """Sync, asyncio, trio, then sync again, one after the other: one pooled connection for every
    call when chunked (the Hub's look-up included; back in blocking mode for the last sync call
    after the async bridge's non-blocking reads); close-delimited bodies need one each."""
    server = route.serve(stream(chat_stream("x", "y"), framing))
    runs = [Driver(mode).collect(**route.options(server)) for mode in ("sync", "asyncio", "trio", "sync")]
    assert all(run.error is None and content(run.chunks) == ["x", "y", FinishReason("stop")] for run in runs)
    assert len(server.requests("POST")) == 4
    assert server.connections == (1 if framing == "chunked" else 4)
    route.lab.assert_clean(closed=framing == "close")


def test_the_end_of_the_chunked_body_may_come_after_done(lab: Lab, driver: Driver) -> None:
    def late_end(conn: Conn) -> None:
        conn.head()
        for data in chat_stream("Hel", "lo"):
            conn.body(data)
        conn.wait(0.1)  # the last chunk comes late: the connection is still worth keeping
        conn.end()

    server = lab.serve(late_end)
    runs = [driver.collect(api_base=server.url + "/v1") for _ in range(2)]
    assert runs[0].chunks == runs[1].chunks and runs[0].text == "Hello"
    assert server.connections == 1
    lab.assert_clean(closed=False)


def test_a_cookie_set_by_one_answer_is_not_sent_with_the_next_request(lab: Lab) -> None:
    server = lab.serve(stream(chat_stream("x"), headers={"Set-Cookie": "affinity=node-7; Path=/"}))
    for _ in range(2):
        assert content(Driver("sync").collect(api_base=server.url + "/v1").chunks) == ["x", FinishReason("stop")]
    assert [request.headers.get("cookie") for request in server.requests("POST")] == [None, None]
    assert server.connections == 1


def test_twenty_concurrent_streams(lab: Lab, framing: str) -> None:
    together = threading.Barrier(20, timeout=WAIT)  # every stream is open at the same time

    def answer(conn: Conn) -> None:
        together.wait()
        index = conn.request.json()["messages"][0]["content"]
        stream(chat_stream(index, "-", index), framing)(conn)

    def run(index: int) -> List[Chunk]:
        messages = [{"role": "user", "content": str(index)}]
        return content(list(HuggingFaceAPI.create_completion(MODEL, messages, api_base=server.url + "/v1", api_key=TOKEN)))

    server = lab.serve(answer)
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(run, range(20)))
    assert results == [[str(i), "-", str(i), FinishReason("stop")] for i in range(20)]
    assert server.connections == 20
    lab.assert_clean(closed=framing == "close")

