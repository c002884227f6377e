"""Helpers of the CLI tests: run ``hf_textgen.cli.main`` in-process against the stand-in, or as a
process (few tests), and check that the token never reaches the output.

Import the fixtures into a test module with ``from cli_support import cli, stub  # noqa: F401``.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
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
