"""Helpers of the batch tests: input files, reading an output, a stand-in with three providers."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

import pytest

from hf_textgen import clear_caches
from hf_textgen.testing import Provider, StubServer

MODEL = "org/Model"
THREE = ("together", "nebius", "sambanova")  # all on the default route


def write_rows(path: Path, rows: Iterable[Any]) -> Path:
    """One line per item: a dict as JSON, a str as it is."""
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def prompts(count: int, start: int = 0, **extra: Any) -> List[Dict[str, Any]]:
    return [{"id": f"row-{n}", "prompt": f"Say hello to {n}", **extra} for n in range(start, start + count)]


def read_output(path: Path) -> List[Dict[str, Any]]:
    """Every line of the output, parsed (a torn or broken line fails the test)."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"torn last line: {data[-80:]!r}"
    return [json.loads(line) for line in data.splitlines()]


def ids_of(records: List[Dict[str, Any]]) -> List[Any]:
    return [record["id"] for record in records]


def posts(stub: StubServer, provider: Optional[str] = None) -> int:
    return sum(1 for r in stub.requests if r.method == "POST" and (provider is None or r.path.startswith(f"/{provider}/")))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def lines_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def three_providers(**first: Any) -> Dict[str, List[Provider]]:
    """The model on three providers, the first with ``first``'s settings."""
    return {MODEL: [Provider(THREE[0], **first), Provider(THREE[1]), Provider(THREE[2])]}


def stub_env(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_caches()
    for name, value in stub.env().items():
        monkeypatch.setenv(name, value)


def child_env(stub: StubServer) -> Dict[str, str]:
    """The environment of a child process that talks to ``stub``."""
    return {**os.environ, **stub.env(), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    with StubServer(three_providers()) as server:
        stub_env(server, monkeypatch)
        yield server
    clear_caches()
