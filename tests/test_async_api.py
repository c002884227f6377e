"""What only the async API has, on asyncio and trio, on loopback servers: awaitable Hub look-ups, a
free event loop while a stream waits, and the reactor, which reads streams past their first content
without a thread each (plain and TLS), with the sync API's timeouts.

Parity with the sync API (chunks, errors, early exits, connection reuse) is checked by running
each case of test_streaming and test_hostile through every driver.
"""
from __future__ import annotations

import threading
from typing import Any, AsyncIterator, List, Tuple

import anyio
import pytest

from hf_textgen import HuggingFaceAPI, aio, transport
from hf_textgen.errors import StreamTimeoutError
from hf_textgen.types import Timeouts

from support import (
    MESSAGES,
    MODEL,
    TOKEN,
    WAIT,
    Conn,
    Lab,
    ScriptedServer,
    chat_stream,
    mapping,
    self_signed_certificate,
    stall,
    text_events,
    tls_context,
)

pytestmark = pytest.mark.anyio

EVENTS = chat_stream("Hel", "lo", " there ", "\n", usage={"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5})
TIMEOUTS = Timeouts(connect=5, read=10)


@pytest.fixture
async def lab(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Lab]:
    """conftest's ``lab``, set up inside the running loop: the leak checks' baseline includes the
    loop's own threads and sockets (asyncio's self-pipe; the I/O thread of trio's guest mode, in
    which anyio's test runner drives trio, started at the loop's first wait, hence the sleep)."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_TEXTGEN_ROUTER_URL"):
        monkeypatch.delenv(name, raising=False)
    await anyio.sleep(0.01)
    lab = Lab(monkeypatch)
    yield lab
    lab.stop()


def stream(server: ScriptedServer, **kwargs: Any) -> AsyncIterator[Any]:
    kwargs = {"timeout": TIMEOUTS, **kwargs}
    return HuggingFaceAPI.create_async_generator(MODEL, MESSAGES, api_base=server.url + "/v1", api_key=TOKEN, **kwargs)


def sync_chunks(server: ScriptedServer, **kwargs: Any) -> List[Any]:
    kwargs = {"timeout": TIMEOUTS, **kwargs}
    return list(HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_base=server.url + "/v1", api_key=TOKEN, **kwargs))


async def until(condition: Any) -> None:
    """Poll without blocking the loop, for ``WAIT`` at most."""
    with anyio.fail_after(WAIT):
        while not condition():
            await anyio.sleep(0.01)


async def no_workers_left() -> None:
    await until(lambda: aio.live_workers() == 0)


def gated(gate: threading.Event, first: int = 1, timeout: float = WAIT, every: float = 0.01) -> Any:
    """Send the first ``first`` events of EVENTS, wait for ``gate`` (looking every ``every`` s), then
    the rest. A gate still closed after ``timeout`` cuts the stream: the client fails, not hangs."""

    def script(conn: Conn) -> None:
        conn.head()
        for data in EVENTS[:first]:
            conn.body(data)
        if not conn.wait_for(gate, timeout, every):
            conn.cut()
            return
        for data in EVENTS[first:]:
            conn.body(data)
        conn.end()

    return script


async def test_get_mapping_and_get_models_are_awaitable(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    backoffs: List[int] = []
    monkeypatch.setattr(transport, "_back_off", lambda plan, attempt: backoffs.append(attempt))

    def hub(conn: Conn) -> None:
        if conn.request.path.startswith(f"/api/models/{MODEL}"):
            conn.reply_json(200, {"id": MODEL, "inferenceProviderMapping": mapping("together", together="org/model-turbo")})
        else:  # the listing
            conn.reply_json(500, {"error": "listing is down"})

    server = lab.hub_and_router(hub)
    got = await HuggingFaceAPI.get_mapping(MODEL, api_key=TOKEN)
    assert list(got) == ["together"] and got["together"]["providerId"] == "org/model-turbo"
    models = await HuggingFaceAPI.get_models_async(refresh=True, api_key=TOKEN)
    assert models == HuggingFaceAPI.fallback_models  # the listing answered 500, thrice: the fallback, no raise
    assert backoffs == [0, 1] and len(server.requests("GET")) == 4  # (anyio's pooled threads ran them: no thread check)


async def test_the_loop_keeps_running_while_a_stream_waits(lab: Lab) -> None:
    """The server holds the next event until a ticker on the loop has ticked 20 times: were the
    loop blocked while the stream waits, the ticker could not tick and the stream would be cut."""
    gate = threading.Event()
    server = lab.serve(gated(gate, first=1))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while ticks < 20:
            await anyio.sleep(0.001)
            ticks += 1
        gate.set()

    chunks = stream(server)
    assert [await chunks.__anext__(), await chunks.__anext__()][1] == "Hel"
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        assert await chunks.__anext__() == "lo"  # waits for the server, which waits for the ticker
    assert ticks == 20
    await chunks.aclose()  # type: ignore[attr-defined]
    await no_workers_left()
    lab.assert_clean(closed=False)


@pytest.mark.slow
async def test_200_stalled_http_streams_wait_in_one_reactor_thread(lab: Lab) -> None:
    """200 streams past their first content, all stalled by the server: no thread each, the
    reactor alone holds them; then all 200 finish."""
    streams = 200
    gate = threading.Event()
    firsts = 0
    everyone_started = anyio.Event()
    server = lab.serve(gated(gate, first=2, timeout=6 * WAIT, every=0.1))  # "Hel", "lo", then the stall

    async def one() -> List[Any]:
        nonlocal firsts
        got = []
        async for chunk in stream(server):
            got.append(chunk)
            if chunk == "lo":
                firsts += 1
                if firsts == streams:
                    everyone_started.set()
        return got

    async with anyio.create_task_group() as tasks:
        for _ in range(streams):
            tasks.start_soon(one)
        with anyio.fail_after(6 * WAIT):  # all 200 hold their first content while every server stream stalls
            await everyone_started.wait()
        await until(lambda: aio.live_workers() == 1)  # past their first content, all 200 wait in one reactor thread
        gate.set()
    assert firsts == streams and len(server.requests("POST")) == streams
    await no_workers_left()
    lab.assert_clean(closed=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Tuple[str, str]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


async def test_a_tls_stream_is_read_without_blocking_too(lab: Lab, certificate: Tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    gate = threading.Event()
    server = lab.serve(gated(gate, first=1), tls=tls_context(*certificate))
    assert server.url.startswith("https://")
    gate.set()
    sync = sync_chunks(server)
    gate.clear()
    chunks = stream(server)
    got = [await chunks.__anext__(), await chunks.__anext__()]
    await until(lambda: aio.live_workers() == 1)  # the server stalls: the stream waits in the reactor, its worker is free
    gate.set()
    got += [chunk async for chunk in chunks]
    assert got == sync and "Hel" in got and server.connections == 1
    await no_workers_left()
    lab.assert_clean(closed=False)


async def test_a_stall_after_content_times_out_in_the_reactor_as_in_the_sync_api(lab: Lab, framing: str) -> None:
    server = lab.serve(stall(text_events("first"), framing))
    short = Timeouts(connect=5, read=0.5)
    with pytest.raises(StreamTimeoutError) as sync_error:
        sync_chunks(server, timeout=short)
    got: List[Any] = []
    with pytest.raises(StreamTimeoutError) as async_error:
        async for chunk in stream(server, timeout=short):
            got.append(chunk)
            if chunk == "first":  # the worker hands the stream to the reactor once it waits
                await until(lambda: aio.live_workers() == 1)
    assert got[1:] == ["first"]
    assert str(async_error.value) == str(sync_error.value) and "no data for 0.5 s" in str(async_error.value)
    await no_workers_left()
    lab.assert_clean()

