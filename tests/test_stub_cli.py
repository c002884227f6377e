"""``python -m hf_textgen.testing``: what it prints, for loopback, wildcard and other bind addresses."""
from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from hf_textgen.config import may_carry_token
from hf_textgen.testing import StubServer
from hf_textgen.testing.cli import banner

LLAMA = "meta-llama/Llama-3.3-70B-Instruct"


def exported(line: str, name: str) -> str:
    match = re.search(rf"{name}=(\S+)", line)
    assert match, line
    return match.group(1)


def banner_of(host: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The banner a stub bound to ``host`` on port 8080 would print (nothing is bound)."""
    monkeypatch.setattr(StubServer, "port", property(lambda self: 8080))
    stub = StubServer({}, host=host)
    return banner(stub.host, stub.connect_host, stub.url, stub.env())


@pytest.mark.parametrize("host, url", [("0.0.0.0", "http://127.0.0.1:8080"), ("", "http://127.0.0.1:8080"),
                                       ("::", "http://[::1]:8080")])
def test_a_wildcard_bind_prints_the_loopback_address_to_connect_to(host: str, url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    line = banner_of(host, monkeypatch)
    assert line.startswith(f"hf_textgen stub serving on {url} (bound to all interfaces, {host or '0.0.0.0'}) ;")
    assert exported(line, "HF_ENDPOINT") == exported(line, "HF_TEXTGEN_ROUTER_URL") == url
    assert may_carry_token(exported(line, "HF_ENDPOINT"))  # the library sends the token there
    assert "//0.0.0.0" not in line and "//[::]" not in line and "//:" not in line
    assert "need an https front" in line


def test_a_loopback_bind_says_nothing_more(monkeypatch: pytest.MonkeyPatch) -> None:
    line = banner_of("127.0.0.1", monkeypatch)
    assert line == ("hf_textgen stub serving on http://127.0.0.1:8080 ; export HF_ENDPOINT=http://127.0.0.1:8080 "
                    "HF_TEXTGEN_ROUTER_URL=http://127.0.0.1:8080 HF_TOKEN=hf_stub_token ; Ctrl-C to stop")


def test_another_address_is_printed_with_the_https_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    line = banner_of("192.0.2.10", monkeypatch)
    assert exported(line, "HF_ENDPOINT") == "http://192.0.2.10:8080"
    assert not may_carry_token(exported(line, "HF_ENDPOINT"))
    assert "bound to" not in line and "need an https front" in line


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_documented_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    command = [sys.executable, "-m", "hf_textgen.testing", "--port", str(port), "--mapping-shape", "list",
               "--host", "127.0.0.1", "-v"]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        assert line.startswith(f"hf_textgen stub serving on {url} ;") and exported(line, "HF_ENDPOINT") == url
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{url}/api/models/{LLAMA}", timeout=60) as answer:
            mapping = json.load(answer)["inferenceProviderMapping"]
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert [entry["provider"] for entry in mapping] == ["novita", "together"]
    assert process.returncode == 0
    assert f'"GET /api/models/{LLAMA} HTTP/1.1" 200' in stderr  # -v logs each request
    assert "Traceback" not in stderr
