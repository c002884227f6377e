"""Helpers of the CLI tests: run ``hf_textgen.cli.main`` in-process against the stand-in, or as a
process (few tests), and check that the token never reaches the output.

Import the fixtures into a test module with ``from cli_support import cli, stub  # noqa: F401``.
"""
from __future__ import annotations

import io
import os
import pty
import re
import select
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from hf_textgen.cli import main
from hf_textgen.testing import Provider, StubServer

TOKEN = "hf_cliTestSecret0123456789"
LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
WAIT = 30.0  # seconds a process test waits for anything before it fails
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16

MODELS: Dict[str, List[Provider]] = {
    "org/ok": [Provider("together", text="Hello there, friend!")],
    "org/slow-words": [Provider("together", text="one two three", delay=0.5)],
    "org/all-402": [Provider("novita", error_status=402), Provider("together", error_status=402)],
    "org/402-then-500": [Provider("novita", error_status=402), Provider("together", error_status=500)],
    "org/401": [Provider("together", error_status=401)],
    "org/429": [Provider("together", error_status=429)],
    "org/500": [Provider("together", error_status=500, error_body="html")],
    "org/stalls": [Provider("together", delay=10.0)],
    "org/cut": [Provider("together", cut_after=1)],
    "org/echoes-token": [Provider("together", error_status=500, error_message=f"bad key Bearer {TOKEN} ({TOKEN})")],
    "org/thinks": [Provider("fireworks-ai", reasoning="Let me think.", text="42")],
    "org/no-live": [Provider("nebius", status="error")],
    "org/length": [Provider("together", text="cut short", finish_reason="length")],
}


@dataclass
class Done:
    """What one run of the CLI left: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one ``hf-textgen: error:`` line (asserts there is exactly one, and no traceback)."""
        errors = [line for line in self.err.splitlines() if line.startswith("hf-textgen: error: ")]
        assert len(errors) == 1, self.err
        assert "Traceback" not in self.err
        return errors[0]


class FakeStdin(io.StringIO):
    """stdin with a chosen answer to ``isatty()``."""

    def __init__(self, text: str = "", tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def stub(hf_stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    """The ``hf_stub`` stand-in (default models) plus the models above, with TOKEN as the token."""
    for model_id, providers in MODELS.items():
        hf_stub.set_model(model_id, providers)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("NO_COLOR", "1")
    for name in ("HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    yield hf_stub


Cli = Callable[..., Done]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``cli("chat", "hi", stdin="...", tty=False)``: ``main()`` in this process, its output captured."""

    def run(*argv: str, stdin: str = "", tty: bool = False) -> Done:
        capsys.readouterr()  # start clean
        monkeypatch.setattr(sys, "stdin", FakeStdin(stdin, tty))
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert TOKEN not in out + err
        return Done(code, out, err)

    return run


def last_post(stub: StubServer) -> Any:
    return [request for request in stub.requests if request.method == "POST"][-1]


def posts(stub: StubServer) -> List[Any]:
    return [request for request in stub.requests if request.method == "POST"]


def process_env(stub: Optional[StubServer] = None, **overrides: str) -> Dict[str, str]:
    """This environment for a child process, pointed at ``stub`` (token TOKEN), without colours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    if stub is not None:
        env.update(stub.env(TOKEN))
    env.update(NO_COLOR="1", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


def run_process(args: List[str], env: Dict[str, str], **kw: Any) -> "subprocess.CompletedProcess[str]":
    """``python -m hf_textgen ARGS`` as a process; asserts the token appears nowhere in its output."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    done = subprocess.run([sys.executable, "-m", "hf_textgen", *args], env=env, capture_output=True, text=True,
                          timeout=WAIT, **kw)
    assert TOKEN not in done.stdout + done.stderr
    return done


# ------------------------------------------------------------------------------ a relay that sees closes


@dataclass
class Relayed:
    """One client connection through :class:`Relay`: what the client sent, and whether it closed."""

    sent: bytearray
    client_closed: "threading.Event"


class Relay:
    """A TCP relay on 127.0.0.1 in front of ``port``: the CLI talks to it as to the router, and the
    test sees each connection's bytes and the moment the client closes it."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.conns: List[Relayed] = []
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def carrying(self, marker: bytes) -> List[Relayed]:
        """The connections whose client sent ``marker``."""
        with self._lock:
            return [conn for conn in self.conns if marker in conn.sent]

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            conn = Relayed(bytearray(), threading.Event())
            with self._lock:
                self.conns.append(conn)
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, conn), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, conn: Optional[Relayed]) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                if conn is not None:
                    conn.client_closed.set()
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if conn is not None:
                with self._lock:
                    conn.sent += data
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            sock.close()


# ------------------------------------------------------------------------------ a pseudo-terminal

# The child makes the pty its controlling terminal, so that Ctrl-C typed there is a real SIGINT.
_LAUNCH = ("import fcntl, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
           "from hf_textgen.cli import main; sys.exit(main(sys.argv[1:]))")
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


class Terminal:
    """``hf-textgen ARGS`` on a pseudo-terminal (stdin, stdout and stderr), driven like a user."""

    def __init__(self, args: List[str], env: Dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.process = subprocess.Popen([sys.executable, "-c", _LAUNCH, *args], stdin=slave, stdout=slave,
                                        stderr=slave, env={**env, "TERM": "dumb"}, start_new_session=True)
        os.close(slave)
        self.master = master
        self.screen = ""  # everything shown, escape sequences and carriage returns removed
        self.seen = 0  # how much of it expect() has consumed

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, text: str, wait: float = WAIT) -> str:
        """Everything shown up to and including ``text``; fails after ``wait`` seconds without it."""
        until = time.monotonic() + wait
        while text not in self.screen[self.seen:]:
            left = until - time.monotonic()
            assert left > 0, f"{text!r} did not show within {wait} s; the screen after what was expected:\n{self.screen[self.seen:]}"
            readable, _, _ = select.select([self.master], [], [], left)
            if readable:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    data = b""
                if not data:
                    assert text in self.screen[self.seen:], f"the session ended without showing {text!r}:\n{self.screen[self.seen:]}"
                    break
                self.screen += _ESCAPES.sub("", data.decode("utf-8", "replace"))
        end = self.screen.index(text, self.seen) + len(text)
        shown, self.seen = self.screen[self.seen:end], end
        return shown

    def wait(self, wait: float = WAIT) -> int:
        """The exit code, draining the terminal meanwhile."""
        until = time.monotonic() + wait
        while self.process.poll() is None:
            assert time.monotonic() < until, f"the session did not end within {wait} s:\n{self.screen[self.seen:]}"
            readable, _, _ = select.select([self.master], [], [], 0.05)
            if readable:
                try:
                    self.screen += _ESCAPES.sub("", os.read(self.master, 65536).decode("utf-8", "replace"))
                except OSError:
                    pass
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT)
        os.close(self.master)
