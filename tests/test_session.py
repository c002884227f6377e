"""The shared Session: credentials come from api_key / HF_TOKEN only (requests' per-request ~/.netrc
look-up is switched off), and keep-alive connections are pooled."""
import threading
from pathlib import Path
from typing import Any, List, Optional

import pytest
import responses

from hf_textgen import HuggingFaceAPI, transport

from mocked import backoffs, isolated, mock  # noqa: F401  (fixtures)

MESSAGES = [{"role": "user", "content": "Hi"}]
ANSWER = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}


@pytest.mark.parametrize("api_key, sent", [(None, None), ("hf_abcdefgh", "Bearer hf_abcdefgh")])
def test_a_netrc_file_is_not_used_and_the_token_still_travels(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, api_key: Optional[str], sent: Optional[str]) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret-value\n")
    monkeypatch.setenv("NETRC", str(netrc))
    mock.post("http://127.0.0.1:9/v1/chat/completions", json=ANSWER)
    chunks = list(HuggingFaceAPI.create_completion("m", MESSAGES, api_base="http://127.0.0.1:9/v1", api_key=api_key, stream=False))
    assert "ok" in chunks
    assert mock.calls[0].request.headers.get("Authorization") == sent


def test_one_pooled_session_serves_every_call_and_thread() -> None:
    seen: List[Any] = []
    threads = [threading.Thread(target=lambda: seen.append(transport.session())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    session = transport.session()
    assert len(seen) == 4 and all(other is session for other in seen)
    adapter = session.get_adapter("https://router.huggingface.co")
    assert adapter is session.get_adapter("http://127.0.0.1")
    assert getattr(adapter, "_pool_maxsize") == transport.POOL_SIZE >= 256


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
