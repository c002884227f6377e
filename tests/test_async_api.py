"""The async API (``create_async_generator``, ``get_mapping``, ``get_models_async``) on asyncio and
trio, end to end on loopback servers: parity with the sync API, every early exit closing the
connection while the server is stalled, error parity, a free event loop, 200 streams at once."""
from __future__ import annotations

import threading
import time
from typing import Any, AsyncIterator, List, Tuple

import anyio
import pytest

from hf_textgen import HuggingFaceAPI, aio
from hf_textgen.errors import PaymentRequiredError, ResponseError, StreamTimeoutError
from hf_textgen.types import Timeouts

from support import (
    WAIT,
    Exchange,
    ScriptedServer,
    chat_stream,
    delta,
    mapping_handler,
    routes,
    self_signed_certificate,
    sse_event,
    stalling_handler,
    status_handler,
    stream_handler,
    tls_context,
)

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "user", "content": "Hi"}]
EVENTS = chat_stream("Hel", "lo", " there ", "\n", usage={"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5})
TIMEOUTS = Timeouts(connect=2, read=10)


def stream(server: ScriptedServer, **kwargs: Any) -> AsyncIterator[Any]:
    return HuggingFaceAPI.create_async_generator(
        "org/model", MESSAGES, api_base=server.url + "/v1", api_key="hf_test", timeout=TIMEOUTS, **kwargs
    )


async def no_workers_left() -> None:
    with anyio.fail_after(WAIT):
        while aio.live_workers():
            await anyio.sleep(0.01)


async def test_same_chunks_as_the_sync_api(framing: str) -> None:
    with ScriptedServer(stream_handler(EVENTS, framing)) as server:
        sync = list(HuggingFaceAPI.create_completion("org/model", MESSAGES, api_base=server.url + "/v1", api_key="hf_test"))
        got = [chunk async for chunk in stream(server)]
    assert got == sync and "Hel" in got and " there " in got
    await no_workers_left()


async def test_errors_arrive_with_the_same_type_and_message() -> None:
    with ScriptedServer(status_handler(402, "credits exhausted")) as server:
        with pytest.raises(PaymentRequiredError) as sync_error:
            list(HuggingFaceAPI.create_completion("org/model", MESSAGES, api_base=server.url + "/v1", api_key="hf_test"))
        with pytest.raises(PaymentRequiredError) as async_error:
            async for _ in stream(server):
                pass
    assert str(async_error.value) == str(sync_error.value) and "credits exhausted" in str(async_error.value)
    await no_workers_left()


async def test_bad_input_raises_at_the_call_before_anything_is_sent() -> None:
    with pytest.raises(ValueError):
        HuggingFaceAPI.create_async_generator("../x", MESSAGES, api_key="hf_test")
    assert aio.live_workers() == 0


async def first_content(chunks: AsyncIterator[Any]) -> None:
    """Iterate up to the first text delta: the server has then sent it and stalls."""
    async for chunk in chunks:
        if chunk == "first":
            return


async def leave_by_break(chunks: AsyncIterator[Any]) -> None:
    async for chunk in chunks:
        if chunk == "first":
            break
    del chunks  # dropped without aclose: the safety net must stop the worker


async def leave_by_aclose(chunks: AsyncIterator[Any]) -> None:
    await first_content(chunks)
    await chunks.aclose()  # type: ignore[attr-defined]


async def leave_by_async_with(chunks: AsyncIterator[Any]) -> None:
    async with chunks as entered:  # type: ignore[attr-defined]
        await first_content(entered)


async def leave_by_consumer_error(chunks: AsyncIterator[Any]) -> None:
    with pytest.raises(KeyError):
        async for chunk in chunks:
            if chunk == "first":
                raise KeyError("consumer bug")


async def leave_by_cancellation(chunks: AsyncIterator[Any]) -> None:
    with anyio.CancelScope() as scope:
        await first_content(chunks)
        scope.cancel()
        await chunks.__anext__()  # waits on the stalled server: cancelled


async def leave_by_fail_after(chunks: AsyncIterator[Any]) -> None:
    await first_content(chunks)
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.3):
            await chunks.__anext__()


@pytest.mark.parametrize(
    "leave",
    [leave_by_break, leave_by_aclose, leave_by_async_with, leave_by_consumer_error, leave_by_cancellation, leave_by_fail_after],
)
async def test_every_early_exit_closes_the_connection_while_the_server_stalls(leave: Any, framing: str) -> None:
    gate = threading.Event()  # never opened: the server stalls after the first event
    with ScriptedServer(stalling_handler([sse_event(delta("first"))], gate, framing), gates=[gate]) as server:
        await leave(stream(server))
        exchange = server.requests()[0]
        with anyio.fail_after(WAIT):
            while not exchange.closed_by_client.is_set():
                await anyio.sleep(0.01)
    await no_workers_left()


async def test_the_loop_keeps_running_during_a_stalled_stream() -> None:
    gate = threading.Event()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.005)

    with ScriptedServer(stalling_handler([sse_event(delta("a"))], gate), gates=[gate]) as server:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ticker)
            chunks = stream(server)
            await chunks.__anext__()  # ProviderInfo
            assert await chunks.__anext__() == "a"
            before = ticks
            with anyio.move_on_after(0.3):  # the worker is blocked in recv meanwhile
                await chunks.__anext__()
            assert ticks - before >= 10
            await chunks.aclose()  # type: ignore[attr-defined]
            tasks.cancel_scope.cancel()


async def test_200_streams_run_at_once() -> None:
    streams = 200
    gate = threading.Event()
    firsts = 0
    everyone_started = anyio.Event()

    async def one() -> List[Any]:
        nonlocal firsts
        got = []
        async for chunk in stream(server):
            got.append(chunk)
            if chunk == "first":
                firsts += 1
                if firsts == streams:
                    everyone_started.set()
        return got

    def handle(exchange: Exchange) -> None:
        exchange.stream([sse_event(delta("first"))])
        if not exchange.hold(gate, timeout=30):  # stalls until every stream has its first event
            exchange.chunk(sse_event(delta(finish="stop")) + b"data: [DONE]\n\n")
            exchange.end()

    with ScriptedServer(handle, gates=[gate]) as server:
        async with anyio.create_task_group() as tasks:
            for _ in range(streams):
                tasks.start_soon(one)
            with anyio.fail_after(20):  # all 200 hold their first event while every server stream stalls
                await everyone_started.wait()
            with anyio.fail_after(WAIT):  # past their first content, all 200 wait in one reactor thread
                while aio.live_workers() != 1:
                    await anyio.sleep(0.01)
            gate.set()
    assert firsts == streams
    await no_workers_left()


async def test_get_mapping_and_get_models_are_awaitable(monkeypatch: pytest.MonkeyPatch) -> None:
    mapping = mapping_handler({"together": "org/model-turbo"})
    with ScriptedServer(routes({"GET /api/models/": mapping, "GET /api/models?": status_handler(500)})) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        got = await HuggingFaceAPI.get_mapping("org/model", api_key="hf_test")
        assert list(got) == ["together"] and got["together"]["providerId"] == "org/model-turbo"
        models = await HuggingFaceAPI.get_models_async(refresh=True, api_key="hf_test")
    assert models == HuggingFaceAPI.fallback_models  # the listing answered 500: the fallback, no raise


async def test_an_error_mid_stream_reaches_the_consumer_after_the_content() -> None:
    events = [sse_event(delta("a")), b'data: {"error": {"message": "GPU on fire"}}\n\n']
    with ScriptedServer(stream_handler(events)) as server:
        got = []
        with pytest.raises(ResponseError, match="GPU on fire"):
            async for chunk in stream(server):
                got.append(chunk)
    assert got[1:] == ["a"]
    await no_workers_left()


# -- the reactor: streams past their first content are read without blocking ------------------------------


async def test_finished_streams_give_their_connection_back_for_the_next_call(framing: str) -> None:
    with ScriptedServer(stream_handler(EVENTS, framing)) as server:
        first = [chunk async for chunk in stream(server)]
        second = [chunk async for chunk in stream(server)]
        sync = list(HuggingFaceAPI.create_completion("org/model", MESSAGES, api_base=server.url + "/v1", api_key="hf_test"))
    assert first == second == sync and "Hel" in first
    # chunked: one keep-alive connection, back in blocking mode for the sync call; close-delimited: one each
    assert server.connections == (1 if framing == "chunked" else 3)


async def test_the_end_of_the_chunked_body_may_come_after_done() -> None:
    def handle(exchange: Exchange) -> None:
        exchange.stream(EVENTS)
        time.sleep(0.1)  # the last chunk comes late: the connection is still worth keeping
        exchange.end()

    with ScriptedServer(handle) as server:
        runs = [[chunk async for chunk in stream(server)] for _ in range(2)]
    assert runs[0] == runs[1] and "Hel" in runs[0]
    assert server.connections == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Tuple[str, str]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


async def test_a_tls_stream_is_read_without_blocking_too(certificate: Tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    gate = threading.Event()

    def handle(exchange: Exchange) -> None:
        exchange.stream(EVENTS[:1])
        if not exchange.hold(gate):
            for event in EVENTS[1:]:
                exchange.chunk(event)
            exchange.end()

    with ScriptedServer(handle, gates=[gate], tls=tls_context(*certificate)) as server:
        assert server.url.startswith("https://")
        sync = list(HuggingFaceAPI.create_completion("org/model", MESSAGES, api_base=server.url + "/v1", api_key="hf_test", timeout=TIMEOUTS))
        gate.clear()
        chunks = stream(server)
        got = [await chunks.__anext__(), await chunks.__anext__()]
        with anyio.fail_after(WAIT):  # the server stalls: the stream waits in the reactor, its worker is free
            while aio.live_workers() != 1:
                await anyio.sleep(0.01)
        gate.set()
        got += [chunk async for chunk in chunks]
    assert got == sync and "Hel" in got
    await no_workers_left()


async def test_a_stall_after_content_times_out_in_the_reactor_as_in_the_sync_api(framing: str) -> None:
    gate = threading.Event()  # never opened: the server stalls after the first event
    short = Timeouts(connect=2, read=0.3)
    with ScriptedServer(stalling_handler([sse_event(delta("first"))], gate, framing), gates=[gate]) as server:
        with pytest.raises(StreamTimeoutError) as sync_error:
            list(HuggingFaceAPI.create_completion("org/model", MESSAGES, api_base=server.url + "/v1", api_key="hf_test", timeout=short))
        got: List[Any] = []
        with pytest.raises(StreamTimeoutError) as async_error:
            async for chunk in HuggingFaceAPI.create_async_generator(
                "org/model", MESSAGES, api_base=server.url + "/v1", api_key="hf_test", timeout=short
            ):
                got.append(chunk)
                if chunk == "first":  # the worker hands the stream to the reactor once it waits
                    with anyio.fail_after(WAIT):
                        while aio.live_workers() != 1:
                            await anyio.sleep(0.01)
    assert got[1:] == ["first"]
    assert str(async_error.value) == str(sync_error.value) and "no data for 0.3 s" in str(async_error.value)
    await no_workers_left()
