"""Request building (pure): URL, headers and body of each kind of chat request, as values."""
from __future__ import annotations

import logging
from typing import Any, Dict

import pytest

from hf_textgen import build, config
from hf_textgen.errors import ConfigurationError

from mocked import MESSAGES, MODEL, ROUTER, ROUTES, TOKEN

BODY = {"messages": MESSAGES, "stream": True}


@pytest.mark.parametrize("provider, route", ROUTES)
def test_provider_requests_follow_the_route_table(provider: str, route: str) -> None:
    request = build.provider_request(provider, "their/id", MODEL, BODY, TOKEN, ROUTER)
    assert request.url == f"{ROUTER}/{provider}{route}"
    assert request.body == {"model": "their/id", **BODY}
    assert (request.provider, request.model) == (provider, MODEL)


def test_hf_inference_takes_the_hub_id_in_its_path_and_body() -> None:
    request = build.provider_request("hf-inference", "ignored-id", MODEL, BODY, TOKEN, ROUTER)
    assert request.url == f"{ROUTER}/hf-inference/models/{MODEL}/v1/chat/completions"
    assert request.body["model"] == MODEL


def test_the_hub_id_in_a_path_is_quoted() -> None:
    request = build.provider_request("hf-inference", "", "org/a b?#", BODY, None, ROUTER)
    assert request.url == f"{ROUTER}/hf-inference/models/org/a%20b%3F%23/v1/chat/completions"


def test_a_provider_id_goes_only_into_the_body() -> None:
    request = build.provider_request("together", "../../x?y", MODEL, BODY, TOKEN, ROUTER)
    assert request.url == f"{ROUTER}/together/v1/chat/completions" and request.body["model"] == "../../x?y"


@pytest.mark.parametrize("model", [MODEL, f"{MODEL}:cheapest", f"{MODEL}:fastest", f"{MODEL}:together"])
def test_server_side_requests_go_to_the_routers_own_route_with_the_model_as_given(model: str) -> None:
    request = build.server_side_request(model, BODY, TOKEN, ROUTER)
    assert request.url == f"{ROUTER}/v1/chat/completions"
    assert request.body == {"model": model, **BODY} and request.provider == "auto"


@pytest.mark.parametrize("api_base", ["https://my.endpoint/v1", "https://my.endpoint/v1/", "http://127.0.0.1:8080/v1"])
def test_api_base_requests_post_to_its_chat_completions(api_base: str) -> None:
    request = build.api_base_request(api_base, MODEL, BODY, TOKEN)
    assert request.url == api_base.rstrip("/") + "/chat/completions"
    assert request.body == {"model": MODEL, **BODY}


def test_an_api_base_query_stays_after_the_path() -> None:
    request = build.api_base_request("https://my.endpoint/openai/v1/?api-version=2024-10", MODEL, BODY, TOKEN)
    assert request.url == "https://my.endpoint/openai/v1/chat/completions?api-version=2024-10"


@pytest.mark.parametrize("api_base", ["ftp://my.endpoint/v1", "my.endpoint/v1", "localhost:8080/v1", "http:///v1", "https://"])
def test_an_api_base_that_is_no_http_url_is_refused(api_base: str) -> None:
    with pytest.raises(ConfigurationError, match="api_base"):
        build.api_base_request(api_base, MODEL, BODY, TOKEN)


def test_the_body_drops_none_and_merges_extra_body_last() -> None:
    params = {"temperature": 0.5, "top_p": None, "stop": ["\n"], "seed": 0}
    body = build.chat_body(MESSAGES, 64, False, params, {"temperature": 0.1, "top_k": 5, "repetition_penalty": None})
    assert body == {"messages": MESSAGES, "max_tokens": 64, "stream": False, "temperature": 0.1, "stop": ["\n"], "seed": 0, "top_k": 5}


def test_max_tokens_none_is_left_out() -> None:
    assert build.chat_body(MESSAGES, None, True, {}) == {"messages": MESSAGES, "stream": True}


@pytest.mark.parametrize("stream, accept", [(True, "text/event-stream"), (False, "application/json")])
def test_headers(stream: bool, accept: str) -> None:
    headers = build.headers_for("https://router.example/v1/chat/completions", TOKEN, stream)
    assert headers == {"User-Agent": config.USER_AGENT, "Accept": accept, "Authorization": f"Bearer {TOKEN}"}
    assert "Authorization" not in build.headers_for("https://router.example/v1", None, stream)


@pytest.mark.parametrize("url", ["http://example.com/v1", "http://10.0.0.8:8080/v1", "http://127.evil.com/v1"])
def test_no_token_over_plain_http_to_another_host(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "hf_textgen")
    request = build.api_base_request(url, MODEL, BODY, TOKEN)
    assert "Authorization" not in request.headers
    assert "not sending the token" in caplog.text and TOKEN not in caplog.text


def test_repr_of_a_request_hides_the_token() -> None:
    request = build.provider_request("together", "id", MODEL, BODY, TOKEN, ROUTER)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}" and TOKEN not in repr(request)
