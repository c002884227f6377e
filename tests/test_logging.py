"""Logging as a library should: silent unless asked (a ``NullHandler``), each attempt at DEBUG
(provider, URL without secrets, status, time to the headers), sseclient-py's per-event lines not
forwarded, and no "trying the next one" or "(1 tried)" where there is no next one."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from hf_textgen import HuggingFaceAPI
from hf_textgen.errors import PaymentRequiredError
from hf_textgen.testing import Provider, StubServer

MODEL = "meta-llama/Llama-3.3-70B-Instruct"
MESSAGES = [{"role": "user", "content": "Hello"}]


def test_a_plain_script_prints_nothing_it_did_not_ask_for_on_failover() -> None:
    script = textwrap.dedent(
        f"""
        import os
        from hf_textgen import HuggingFaceAPI
        from hf_textgen.testing import StubServer
        with StubServer() as stub:
            os.environ.update(stub.env())
            print(HuggingFaceAPI.complete({MODEL!r}, [{{"role": "user", "content": "Hi"}}]).provider)
        """
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("HF_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "together\n"  # novita answered 402 first: the failover happened
    assert done.stderr == ""


def test_debug_logs_each_attempt_without_secrets(hf_stub: StubServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert HuggingFaceAPI.complete(MODEL, MESSAGES).provider == "together"
    attempts = [r.getMessage() for r in caplog.records if r.name == "hf_textgen" and r.getMessage().startswith("POST ")]
    assert len(attempts) == 2
    assert attempts[0].startswith(f"POST {hf_stub.url}/novita/v3/openai/chat/completions (provider novita): HTTP 402 after ")
    assert attempts[1].startswith(f"POST {hf_stub.url}/together/v1/chat/completions (provider together): HTTP 200, headers after ")
    assert all(" ms" in line for line in attempts)
    assert not any("hf_stub" in r.getMessage() for r in caplog.records)  # the stand-in's token


def test_sseclients_per_event_lines_are_not_forwarded(hf_stub: StubServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert HuggingFaceAPI.complete(MODEL, MESSAGES).text
    assert not [r for r in caplog.records if r.name.startswith("sseclient") or "Dispatching" in r.getMessage()]


def test_the_last_provider_failing_is_not_followed_by_a_next_one(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG, "hf_textgen")
    models = {MODEL: [Provider("novita", error_status=402), Provider("together", error_status=402, error_message="none left")]}
    with StubServer(models) as stub:
        for name, value in stub.env().items():
            monkeypatch.setenv(name, value)
        with pytest.raises(PaymentRequiredError) as raised:
            HuggingFaceAPI.complete(MODEL, MESSAGES)
    trying = [r.getMessage() for r in caplog.records if "trying" in r.getMessage()]
    assert len(trying) == 1 and trying[0].startswith(f"provider novita failed for {MODEL} (") and trying[0].endswith("; trying together")
    assert "2 tried" in str(raised.value) and "none left" in str(raised.value)


@pytest.mark.parametrize("model, provider", [(MODEL, "together"), (f"{MODEL}:cheapest", None)])
def test_a_single_request_that_fails_raises_its_own_error(model: str, provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    models = {MODEL: [Provider("together", error_status=402, error_message="none left")]}
    with StubServer(models) as stub:
        for name, value in stub.env().items():
            monkeypatch.setenv(name, value)
        with pytest.raises(PaymentRequiredError) as raised:
            HuggingFaceAPI.complete(model, MESSAGES, provider=provider)
    assert "every provider failed" not in str(raised.value) and "tried" not in str(raised.value)
    assert "HTTP 402" in str(raised.value) and "none left" in str(raised.value)
