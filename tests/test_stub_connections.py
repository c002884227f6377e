"""The stand-in's connections: bursts of clients, clients that go away, and real bugs, over 127.0.0.1."""
from __future__ import annotations

import http.client
import logging
import socket
import struct
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Optional

import pytest

from hf_textgen.testing import Provider, StubServer
from hf_textgen.testing import server as stub_server

MODEL = "org/Model"
SERVER_LOGGER = "hf_textgen.testing.server"


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer({MODEL: [Provider("together", chunks=[f"w{n} " for n in range(200)], delay=0.005)]}) as server:
        yield server


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``condition``; fail (with ``what``) if it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def held_connections(stub: StubServer) -> int:
    assert stub._httpd is not None
    return len(stub._httpd._open)


def reset(connection: http.client.HTTPConnection, answer: Optional[http.client.HTTPResponse] = None) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a client that crashes or times out does."""
    assert connection.sock is not None
    connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if answer is not None:
        answer.close()  # it holds the socket's file too: the RST goes out when both are closed
    connection.close()


# ------------------------------------------------------------------------------------ many clients
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the backlog with Linux's TCP_INFO")
def test_the_listen_backlog_holds_a_burst_of_clients(stub: StubServer) -> None:
    assert stub._httpd is not None
    info = stub._httpd.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    max_backlog = struct.unpack_from("II", info, 24)[1]  # tcpi_sacked: the accept queue's size on a listener
    with open("/proc/sys/net/core/somaxconn") as limit:
        assert max_backlog == min(1024, int(limit.read()))


def test_sixty_four_clients_at_once(stub: StubServer) -> None:
    clients, start = 64, threading.Barrier(64)
    statuses: List[int] = []
    errors: List[BaseException] = []

    def client() -> None:
        try:
            start.wait(timeout=30)
            connection = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=60)
            connection.request("GET", f"/api/models/{MODEL}")
            answer = connection.getresponse()
            answer.read()
            statuses.append(answer.status)
            connection.close()
        except Exception as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert errors == [] and statuses == [200] * clients
    assert len(stub.requests) == clients


def test_sixty_four_connections_held_open_are_all_served(stub: StubServer) -> None:
    connections = [http.client.HTTPConnection("127.0.0.1", stub.port, timeout=60) for _ in range(64)]
    for connection in connections:
        connection.connect()
    wait_until(lambda: held_connections(stub) == 64, "the stub to accept 64 connections")
    for connection in reversed(connections):  # the last accepted first: none waits behind another
        connection.request("GET", f"/api/models/{MODEL}")
        answer = connection.getresponse()
        assert (answer.status, answer.getheader("Content-Type")) == (200, "application/json; charset=utf-8")
        answer.read()
        connection.close()


# ---------------------------------------------------------------------------- clients that go away
def test_a_reset_keep_alive_connection_prints_nothing(stub: StubServer, capfd: pytest.CaptureFixture[str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=SERVER_LOGGER)
    connection = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=60)
    connection.request("GET", f"/api/models/{MODEL}")
    connection.getresponse().read()  # keep-alive: the server now waits for the next request
    reset(connection)
    wait_until(lambda: held_connections(stub) == 0, "the server to let the connection go")
    assert capfd.readouterr().err == ""
    gone = [r for r in caplog.records if r.name == SERVER_LOGGER and "went away" in r.getMessage()]
    assert gone and all(r.levelno == logging.DEBUG for r in gone)
    assert "ConnectionResetError" in gone[0].getMessage()


def test_a_client_that_resets_mid_stream_prints_nothing(stub: StubServer, capfd: pytest.CaptureFixture[str],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=SERVER_LOGGER)
    connection = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=60)
    body = b'{"model": "together/model", "messages": [], "stream": true}'
    connection.request("POST", "/together/v1/chat/completions", body,
                       {"Authorization": "Bearer hf_test", "Content-Type": "application/json"})
    answer = connection.getresponse()
    assert answer.status == 200 and answer.readline().startswith(b"data: ")
    reset(connection, answer)
    wait_until(lambda: held_connections(stub) == 0, "the stream to notice the client left")
    assert capfd.readouterr().err == ""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_idle_client_that_times_out_prints_nothing(stub: StubServer, capfd: pytest.CaptureFixture[str],
                                                      caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG, logger=SERVER_LOGGER)
    monkeypatch.setattr(stub_server.Handler, "timeout", 0.2)
    with socket.create_connection(("127.0.0.1", stub.port)):  # says nothing
        wait_until(lambda: any("timed out" in r.getMessage() for r in caplog.records), "the server's read timeout")
    wait_until(lambda: held_connections(stub) == 0, "the server to let the connection go")
    assert capfd.readouterr().err == ""
    assert [r.levelno for r in caplog.records if "timed out" in r.getMessage()] == [logging.DEBUG]


# ------------------------------------------------------------------------------------------- real bugs
def test_a_bug_while_recording_is_logged_as_an_error(stub: StubServer, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("the recorder broke")

    assert stub._httpd is not None
    stub._httpd.record = broken
    connection = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=60)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        connection.request("GET", "/api/models")
        connection.getresponse()
    connection.close()
    wait_until(lambda: held_connections(stub) == 0, "the server to drop the connection")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == SERVER_LOGGER]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert repr(errors[0].exc_info[1]) == "RuntimeError('the recorder broke')"


def test_a_bug_while_answering_is_a_500_and_an_error(stub: StubServer, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any) -> None:
        raise KeyError("no such thing")

    assert stub._httpd is not None
    stub._httpd.answer = broken
    connection = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=60)
    connection.request("GET", "/api/models")
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    assert answer.status == 500 and b"hf_textgen stub error: KeyError('no such thing')" in body
    errors: List[logging.LogRecord] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and errors[0].exc_info is not None


def test_answers_leave_at_once_nagle_is_off(stub: StubServer) -> None:
    """Headers and body are separate writes: with Nagle's algorithm on, the second waits for the
    client's delayed ACK (~40 ms per answer on Linux loopback)."""
    connection = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=10)
    try:
        connection.request("GET", f"/api/models/{MODEL}")
        connection.getresponse().read()
        assert stub._httpd is not None
        [accepted] = list(stub._httpd._open)
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        connection.close()
