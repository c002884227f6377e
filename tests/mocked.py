"""Shared setup of the request-level unit tests (``responses``; nothing leaves the process).

Test modules import the fixtures they use, with those these depend on: ``backoffs`` (Hub backoff
sleeps recorded instead of slept), ``isolated`` (no token or URL from the environment, HF_HOME in
tmp_path, empty caches) and ``mock`` (a started ``responses`` mock on top of ``isolated``), and the
builders of Hub and router answers.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional

import pytest
import responses

from hf_textgen import errors, hub, transport

HUB = "https://huggingface.co"
ROUTER = "https://router.huggingface.co"
MODEL = "org/model"
TOKEN = "hf_SECRETsecretSECRET123"
MESSAGES = [{"role": "user", "content": "Hi"}]
MAPPING_URL = f"{HUB}/api/models/{MODEL}"
# SPEC.md's route table: provider -> path after "/{provider}" (hf-inference, which differs, apart).
ROUTES = [
    ("novita", "/v3/openai/chat/completions"),
    ("fireworks-ai", "/inference/v1/chat/completions"),
    ("groq", "/openai/v1/chat/completions"),
    ("cohere", "/compatibility/v1/chat/completions"),
    ("deepinfra", "/v1/openai/chat/completions"),
    ("zai-org", "/api/paas/v4/chat/completions"),
    ("together", "/v1/chat/completions"),
    ("sambanova", "/v1/chat/completions"),
    ("a-provider-nobody-knows", "/v1/chat/completions"),
]
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT", "HF_TEXTGEN_ROUTER_URL")


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    """The Hub GET backoff waits, recorded instead of slept (time.sleep is patched for the test)."""
    waits: List[float] = []
    monkeypatch.setattr(transport.time, "sleep", waits.append)
    return waits


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, backoffs: List[float]) -> Iterator[None]:
    """No token or URL from the environment, HF_HOME in tmp_path, empty caches and secret registry."""
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(errors, "_known_secrets", set())
    hub._mappings.clear()
    hub._listings.clear()
    yield
    hub._mappings.clear()
    hub._listings.clear()


@pytest.fixture
def mock(isolated: None) -> Iterator[responses.RequestsMock]:
    """A started ``responses`` mock: any request it was not told about fails as a connection error."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def entry(status: str = "live", task: str = "conversational", provider_id: str = "") -> Dict[str, str]:
    return {"status": status, "task": task, "providerId": provider_id}


def mapping_of(*names: str, **entries: Dict[str, str]) -> Dict[str, Dict[str, str]]:
    """A dict-shaped mapping: each name live and conversational with providerId ``<name>-id``,
    then ``entries`` as given (keyword names use ``_`` for ``-``)."""
    result = {name: entry(provider_id=f"{name}-id") for name in names}
    result.update({name.replace("_", "-"): value for name, value in entries.items()})
    return result


def as_list(mapping: Dict[str, Dict[str, str]]) -> List[Dict[str, str]]:
    """The same mapping in the Hub's list shape."""
    return [{"provider": name, **value} for name, value in mapping.items()]


def serve_mapping(mock: responses.RequestsMock, mapping: Any, model: str = MODEL, hub_url: str = HUB) -> None:
    mock.get(f"{hub_url}/api/models/{model}", json={"id": model, "inferenceProviderMapping": mapping})


def completion(content: str = "ok", finish: str = "stop", **message: Any) -> Dict[str, Any]:
    """A non-streamed chat.completion answer."""
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message}, "finish_reason": finish}],
    }


def chat_url(provider: str, route: str = "/v1/chat/completions", router: str = ROUTER) -> str:
    return f"{router}/{provider}{route}"


def answer_ok(mock: responses.RequestsMock, url: str, content: str = "ok", **headers: str) -> None:
    mock.post(url, json=completion(content), headers=headers or None)


def posts(mock: responses.RequestsMock) -> List[str]:
    return [call.request.url for call in mock.calls if call.request.method == "POST"]


def gets(mock: responses.RequestsMock) -> List[str]:
    return [call.request.url for call in mock.calls if call.request.method == "GET"]


def body_of(call: Any) -> Dict[str, Any]:
    return json.loads(call.request.body)


def last_post_body(mock: responses.RequestsMock) -> Dict[str, Any]:
    return body_of([call for call in mock.calls if call.request.method == "POST"][-1])


def text_of(chunks: List[Any]) -> str:
    return "".join(chunk for chunk in chunks if isinstance(chunk, str))


def auth_headers(mock: responses.RequestsMock) -> List[Optional[str]]:
    return [call.request.headers.get("Authorization") for call in mock.calls]
