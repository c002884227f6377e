"""The shared Session: credentials come from api_key / HF_TOKEN only (requests' per-request ~/.netrc
look-up is switched off), and keep-alive connections are pooled."""
from pathlib import Path

import pytest
import responses

from hf_textgen import HuggingFaceAPI, transport

from mocked import backoffs, isolated, mock  # noqa: F401  (fixtures)

MESSAGES = [{"role": "user", "content": "Hi"}]
ANSWER = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}


def test_a_netrc_file_is_not_used(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret-value\n")
    monkeypatch.setenv("NETRC", str(netrc))
    mock.post("http://127.0.0.1:9/v1/chat/completions", json=ANSWER)
    chunks = list(HuggingFaceAPI.create_completion("m", MESSAGES, api_base="http://127.0.0.1:9/v1", stream=False))
    assert "ok" in chunks
    assert "Authorization" not in mock.calls[0].request.headers


def test_the_token_still_travels_in_the_authorization_header(mock: responses.RequestsMock) -> None:
    mock.post("http://127.0.0.1:9/v1/chat/completions", json=ANSWER)
    list(HuggingFaceAPI.create_completion("m", MESSAGES, api_base="http://127.0.0.1:9/v1", api_key="hf_abcdefgh", stream=False))
    assert mock.calls[0].request.headers["Authorization"] == "Bearer hf_abcdefgh"


def test_one_pooled_session_is_shared() -> None:
    assert transport.session() is transport.session()
    adapter = transport.session().get_adapter("https://router.huggingface.co")
    assert adapter._pool_maxsize == transport.POOL_SIZE


def test_proxy_variables_still_take_effect_at_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    session = transport.session()
    url = "http://example.invalid/v1/chat/completions"
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert session.merge_environment_settings(url, {}, True, None, None)["proxies"] == {}
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert session.merge_environment_settings(url, {}, True, None, None)["proxies"]["http"] == "http://proxy.invalid:3128"
    monkeypatch.setenv("NO_PROXY", "example.invalid")
    assert session.merge_environment_settings(url, {}, True, None, None)["proxies"] == {}


def test_the_cached_settings_are_not_shared_with_callers() -> None:
    session = transport.session()
    url = "http://example.invalid/v1/chat/completions"
    session.merge_environment_settings(url, {}, True, None, None)["proxies"]["http"] = "http://mutated.invalid"
    assert "mutated" not in str(session.merge_environment_settings(url, {}, True, None, None)["proxies"])
