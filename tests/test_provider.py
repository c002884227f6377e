"""HuggingFaceAPI at the request level (``responses``): models, routes, bodies, tokens, provider
choice and failover, and what is refused before anything is sent. On real loopback servers: what
streams (test_streaming), faults and failover on the wire (test_hostile)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import requests
import responses

from hf_textgen import Attempt, FinishReason, HuggingFaceAPI, ProviderInfo, Reasoning, Timeouts, ToolCalls, Trimmed, Usage, aio
from hf_textgen.errors import (
    ConfigurationError,
    ConnectError,
    InputTrimmedWarning,
    MissingAuthError,
    ModelNotSupportedError,
    PaymentRequiredError,
    RateLimitError,
    ResponseStatusError,
)

from mocked import backoffs, isolated, mock  # noqa: F401  (fixtures)
from mocked import (
    HUB,
    MESSAGES,
    MODEL,
    ROUTER,
    ROUTES,
    TOKEN,
    answer_ok,
    auth_headers,
    chat_url,
    completion,
    as_list,
    body_of,
    entry,
    gets,
    last_post_body,
    mapping_of,
    posts,
    serve_mapping,
    text_of,
)

OK = [FinishReason("stop")]


def complete(model: Any = MODEL, messages: List[Dict[str, Any]] = MESSAGES, **kw: Any) -> List[Any]:
    """Every chunk of a non-streamed completion (with the test token unless told otherwise)."""
    kw.setdefault("api_key", TOKEN)
    kw.setdefault("stream", False)
    return list(HuggingFaceAPI.create_completion(model, messages, **kw))


def complete_until_error(**kw: Any) -> "tuple[List[Any], Exception]":
    """The chunks yielded before the completion raised, and what it raised."""
    got: List[Any] = []
    with pytest.raises(Exception) as raised:
        for chunk in HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_key=TOKEN, stream=False, **kw):
            got.append(chunk)
    return got, raised.value


def info(provider: str, model: str = MODEL) -> ProviderInfo:
    return ProviderInfo(f"HuggingFace ({provider})", model, provider)


@pytest.fixture
def together(mock: responses.RequestsMock) -> responses.RequestsMock:
    """The Hub maps MODEL to together only, and together answers "ok"."""
    serve_mapping(mock, mapping_of("together"))
    answer_ok(mock, chat_url("together"))
    return mock


def refused_before_sending(mock: responses.RequestsMock, error: type, call: Callable[[], Any]) -> Exception:
    with pytest.raises(error) as raised:
        list(call())
    assert len(mock.calls) == 0
    return raised.value


# -- get_model ------------------------------------------------------------------------------------------


def test_get_model_resolves_aliases_and_defaults_without_network(mock: responses.RequestsMock) -> None:
    assert HuggingFaceAPI.get_model("llama-3.1-8b") == "meta-llama/Llama-3.1-8B-Instruct"
    assert HuggingFaceAPI.get_model("qwen-2.5-vl-7b") == HuggingFaceAPI.default_vision_model
    assert HuggingFaceAPI.get_model("") == HuggingFaceAPI.get_model(None) == HuggingFaceAPI.default_model
    assert HuggingFaceAPI.get_model("someone/unknown-model", api_key=TOKEN) == "someone/unknown-model"
    assert HuggingFaceAPI.get_model("not even valid ../") == "not even valid ../"
    assert len(mock.calls) == 0


def test_an_alias_is_resolved_before_routing(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together"), model=HuggingFaceAPI.default_model)
    answer_ok(mock, chat_url("together"))
    assert complete(None)[0] == info("together", HuggingFaceAPI.default_model)
    assert complete("llama-3.3-70b")[0] == info("together", HuggingFaceAPI.default_model)


def test_an_alias_with_a_routing_suffix_keeps_the_suffix(mock: responses.RequestsMock) -> None:
    assert HuggingFaceAPI.get_model("llama-3.3-70b:together") == f"{HuggingFaceAPI.default_model}:together"
    assert HuggingFaceAPI.get_model("llama-3.3-70b:cheapest") == f"{HuggingFaceAPI.default_model}:cheapest"
    answer_ok(mock, f"{ROUTER}/v1/chat/completions", **{"x-inference-provider": "together"})
    assert complete("llama-3.3-70b:together")[0] == info("together", f"{HuggingFaceAPI.default_model}:together")
    assert last_post_body(mock)["model"] == f"{HuggingFaceAPI.default_model}:together"


def test_no_model_with_media_takes_the_default_vision_model(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together"), model=HuggingFaceAPI.default_vision_model)
    answer_ok(mock, chat_url("together"))
    complete(None, media=["https://example.com/cat.png"])
    content = last_post_body(mock)["messages"][-1]["content"]
    assert content == [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]


# -- refused before anything is sent --------------------------------------------------------------------


@pytest.mark.parametrize("model", ["../x", "a?b", "a/b/c", "%2e%2e/x", "a--b", "x" * 97, "модель/x", "org/model:../x", "org/model:a/b", "org/model:X"])
def test_bad_model_ids_are_refused_before_any_request(mock: responses.RequestsMock, model: str) -> None:
    error = refused_before_sending(mock, ConfigurationError, lambda: complete(model))
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("provider", ["../x", "a/b", "x?y", "%2e%2e", "http://evil", "", ["together", "../x"], ("a/b",)])
def test_bad_provider_names_are_refused_before_any_request(mock: responses.RequestsMock, provider: Any) -> None:
    error = refused_before_sending(mock, ConfigurationError, lambda: complete(provider=provider))
    assert "invalid provider name" in str(error)


def test_an_unknown_keyword_is_refused_before_any_request(mock: responses.RequestsMock) -> None:
    error = refused_before_sending(mock, ConfigurationError, lambda: complete(temprature=0.5))
    assert "temprature" in str(error) and "extra_body" in str(error)


@pytest.mark.parametrize("messages", [[], [{"content": "no role"}], "Hi"])
def test_bad_messages_are_refused_before_any_request(mock: responses.RequestsMock, messages: Any) -> None:
    refused_before_sending(mock, ConfigurationError, lambda: complete(messages=messages))


def test_no_token_is_missing_auth_before_any_request(mock: responses.RequestsMock, tmp_path: Path) -> None:
    error = refused_before_sending(mock, MissingAuthError, lambda: complete(api_key=None))
    assert "HF_TOKEN" in str(error) and str(tmp_path / "hf_home" / "token") in str(error)


@pytest.mark.parametrize("call", [HuggingFaceAPI.create_completion, HuggingFaceAPI.create_async_generator], ids=["sync", "async"])
def test_the_checks_run_when_called_not_when_iterated(mock: responses.RequestsMock, call: Callable[..., Any]) -> None:
    with pytest.raises(ConfigurationError):
        call("../x", MESSAGES, api_key=TOKEN)
    with pytest.raises(ConfigurationError):
        call(MODEL, MESSAGES, api_key=TOKEN, provider="http://evil")
    with pytest.raises(MissingAuthError):
        call(MODEL, MESSAGES)
    assert len(mock.calls) == 0 and aio.live_workers() == 0  # nothing sent, no worker thread started


# -- routes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("provider, route", ROUTES)
def test_each_provider_gets_its_route_and_provider_id(mock: responses.RequestsMock, provider: str, route: str) -> None:
    serve_mapping(mock, {provider: entry(provider_id="their/model-id")})
    answer_ok(mock, chat_url(provider, route))
    assert complete() == [info(provider), "ok", *OK]
    assert posts(mock) == [chat_url(provider, route)]
    assert last_post_body(mock)["model"] == "their/model-id"


def test_hf_inference_takes_the_hub_id_in_path_and_body(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, {"hf-inference": entry(provider_id="ignored")})
    answer_ok(mock, chat_url("hf-inference", f"/models/{MODEL}/v1/chat/completions"))
    assert text_of(complete()) == "ok"
    assert posts(mock) == [f"{ROUTER}/hf-inference/models/org/model/v1/chat/completions"]
    assert last_post_body(mock)["model"] == MODEL


@pytest.mark.parametrize(
    "model, provider",
    [(MODEL, "auto"), (f"{MODEL}:cheapest", None), (f"{MODEL}:fastest", None), (f"{MODEL}:preferred", None), (f"{MODEL}:together", None), (f"{MODEL}:fastest", "auto")],
)
def test_server_side_routing_posts_to_the_router_and_reports_its_choice(mock: responses.RequestsMock, model: str, provider: Any) -> None:
    answer_ok(mock, f"{ROUTER}/v1/chat/completions", **{"x-inference-provider": "sambanova"})
    assert complete(model, provider=provider) == [info("sambanova", model), "ok", *OK]
    assert gets(mock) == [] and posts(mock) == [f"{ROUTER}/v1/chat/completions"]
    assert last_post_body(mock)["model"] == model
    assert auth_headers(mock) == [f"Bearer {TOKEN}"]


def test_a_model_the_router_does_not_know_is_model_not_supported(mock: responses.RequestsMock) -> None:
    mock.post(f"{ROUTER}/v1/chat/completions", status=404, json={"error": {"message": "The requested model 'org/model' does not exist.", "code": "model_not_found"}})
    with pytest.raises(ModelNotSupportedError, match="the router does not serve model 'org/model:fastest' .The requested model 'org/model' does not exist"):
        complete(f"{MODEL}:fastest")


def test_server_side_routing_without_the_header_reports_auto(mock: responses.RequestsMock) -> None:
    answer_ok(mock, f"{ROUTER}/v1/chat/completions")
    assert complete(provider="auto")[0] == info("auto")


@pytest.mark.parametrize("api_base", ["https://my.endpoint/v1", "https://my.endpoint/v1/", "http://127.0.0.1:8080/v1"])
def test_api_base_posts_to_its_chat_completions_without_the_hub(mock: responses.RequestsMock, api_base: str) -> None:
    url = api_base.rstrip("/") + "/chat/completions"
    answer_ok(mock, url)
    chunks = complete(api_base=api_base)
    assert text_of(chunks) == "ok" and isinstance(chunks[0], ProviderInfo)
    assert posts(mock) == [url] and gets(mock) == []
    assert last_post_body(mock)["model"] == MODEL and auth_headers(mock) == [f"Bearer {TOKEN}"]


def test_api_base_needs_no_token(mock: responses.RequestsMock) -> None:
    answer_ok(mock, "https://my.endpoint/v1/chat/completions")
    assert text_of(complete(api_base="https://my.endpoint/v1", api_key=None)) == "ok"
    assert auth_headers(mock) == [None]


@pytest.mark.parametrize(
    "api_base, sent",
    [
        ("http://example.com/v1", False),
        ("http://10.1.2.3:8000/v1", False),
        ("https://example.com/v1", True),
        ("http://127.0.0.1:8080/v1", True),
        ("http://localhost:8000/v1", True),
        ("http://[::1]:8000/v1", True),
    ],
)
def test_no_token_over_plain_http_to_a_non_loopback_api_base(mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture, api_base: str, sent: bool) -> None:
    caplog.set_level(logging.WARNING, "hf_textgen")
    answer_ok(mock, f"{api_base}/chat/completions")
    assert text_of(complete(api_base=api_base)) == "ok"
    assert auth_headers(mock) == [f"Bearer {TOKEN}" if sent else None]
    assert ("not sending the token" in caplog.text) is not sent and TOKEN not in caplog.text


def test_no_token_over_plain_http_to_the_hub_and_router(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.example")
    monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", "http://router.example")
    serve_mapping(mock, mapping_of("good"), hub_url="http://hub.example")
    answer_ok(mock, chat_url("good", router="http://router.example"))
    assert text_of(complete()) == "ok"
    assert auth_headers(mock) == [None, None]


def test_hub_and_router_urls_are_read_at_call_time(together: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    complete()
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example")
    monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", "https://router.example/")
    serve_mapping(together, mapping_of("together"), hub_url="https://mirror.example")
    answer_ok(together, chat_url("together", router="https://router.example"))
    complete()
    assert gets(together) == [f"{HUB}/api/models/{MODEL}?expand%5B%5D=inferenceProviderMapping", f"https://mirror.example/api/models/{MODEL}?expand%5B%5D=inferenceProviderMapping"]
    assert posts(together) == [chat_url("together"), chat_url("together", router="https://router.example")]


# -- body -----------------------------------------------------------------------------------------------


def test_the_body_carries_parameters_and_extra_body_without_none(together: responses.RequestsMock) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    complete(max_tokens=64, temperature=0.2, top_p=None, stop=["\n"], seed=7, tools=tools, extra_body={"top_k": 5, "seed": 8, "min_p": None})
    assert last_post_body(together) == {
        "model": "together-id",
        "messages": MESSAGES,
        "max_tokens": 64,
        "stream": False,
        "temperature": 0.2,
        "stop": ["\n"],
        "seed": 8,
        "tools": tools,
        "top_k": 5,
    }


def test_the_defaults_stream_with_2048_max_tokens(together: responses.RequestsMock) -> None:
    together.replace(responses.POST, chat_url("together"), body='data: {"choices": [{"delta": {"content": " hi "}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n', content_type="text/event-stream")
    assert list(HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_key=TOKEN)) == [info("together"), " hi ", *OK]
    body = last_post_body(together)
    assert (body["stream"], body["max_tokens"]) == (True, 2048)
    assert together.calls[-1].request.headers["Accept"] == "text/event-stream"


def test_max_tokens_none_leaves_it_to_the_server(together: responses.RequestsMock) -> None:
    complete(max_tokens=None)
    assert "max_tokens" not in last_post_body(together)


def test_long_conversations_are_trimmed_before_sending(together: responses.RequestsMock) -> None:
    messages = [{"role": "system", "content": "be brief"}] + [{"role": "user" if i % 2 else "assistant", "content": "x" * 100} for i in range(1, 10)]
    with pytest.warns(InputTrimmedWarning, match="8 message"):
        chunks = complete(messages=messages, max_inputs_lenght=300)
    assert last_post_body(together)["messages"] == [messages[0], messages[-1]]
    assert chunks[:2] == [Trimmed(dropped_messages=8, dropped_chars=800, limit=300), info("together")]


# -- tokens ---------------------------------------------------------------------------------------------

SOURCES: Dict[str, Callable[[pytest.MonkeyPatch, Path], None]] = {
    "HF_TOKEN": lambda monkeypatch, home: monkeypatch.setenv("HF_TOKEN", f"  {TOKEN}\n"),
    "HUGGING_FACE_HUB_TOKEN": lambda monkeypatch, home: monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", TOKEN),
    "HF_HOME token file": lambda monkeypatch, home: (home.mkdir(), (home / "token").write_text(f"{TOKEN}\n")),
    "HF_TOKEN_PATH": lambda monkeypatch, home: (
        (home.parent / "elsewhere").write_text(f" {TOKEN} "),
        monkeypatch.setenv("HF_TOKEN_PATH", str(home.parent / "elsewhere")),
    ),
}


@pytest.mark.parametrize("source", list(SOURCES))
def test_the_token_is_found_cleaned_and_sent_to_hub_and_router(together: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str) -> None:
    SOURCES[source](monkeypatch, tmp_path / "hf_home")
    complete(api_key=None)
    assert auth_headers(together) == [f"Bearer {TOKEN}"] * 2


def test_api_key_comes_first(together: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_environment")
    complete(api_key="hf_from_the_argument")
    assert auth_headers(together) == ["Bearer hf_from_the_argument"] * 2


def test_a_token_that_is_not_an_hf_token_goes_to_the_router_only(together: responses.RequestsMock) -> None:
    complete(api_key="sk-some-other-key")
    assert auth_headers(together) == [None, "Bearer sk-some-other-key"]


# -- provider choice ------------------------------------------------------------------------------------

MIXED = mapping_of(
    broken=entry(status="error", provider_id="broken-id"),
    staging=entry(status="staging", provider_id="staging-id"),
    textonly=entry(task="text-generation", provider_id="textonly-id"),
    d=entry(provider_id="d-id"),
    e=entry(provider_id="e-id"),
)


@pytest.fixture
def mixed(mock: responses.RequestsMock) -> responses.RequestsMock:
    serve_mapping(mock, MIXED)
    return mock


def test_automatic_order_is_the_mappings_skipping_unusable_entries(mixed: responses.RequestsMock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "hf_textgen")
    mixed.post(chat_url("d"), status=402, json={"error": "no credits"})
    answer_ok(mixed, chat_url("e"))
    assert complete() == [info("d"), Attempt("d", 402, "no credits"), info("e"), "ok", *OK]
    assert posts(mixed) == [chat_url("d"), chat_url("e")]
    assert [r.getMessage() for r in caplog.records if "skipping providers" in r.getMessage()] == [
        f"skipping providers of {MODEL} that are not live conversational: broken, staging, textonly"
    ]


def test_a_named_provider_is_used_whatever_its_status_with_a_warning(mixed: responses.RequestsMock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "hf_textgen")
    answer_ok(mixed, chat_url("staging"))
    assert complete(provider="staging")[0] == info("staging")
    assert last_post_body(mixed)["model"] == "staging-id"
    assert "using provider staging" in caplog.text and "'staging'" in caplog.text


def test_a_list_of_providers_is_tried_in_the_callers_order(mixed: responses.RequestsMock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "hf_textgen")
    mixed.post(chat_url("e"), status=503)
    answer_ok(mixed, chat_url("textonly"))
    assert complete(provider=["nowhere", "e", "textonly", "d"]) == [info("e"), Attempt("e", 503, "HTTP 503"), info("textonly"), "ok", *OK]
    assert posts(mixed) == [chat_url("e"), chat_url("textonly")]
    assert "provider nowhere does not serve org/model" in caplog.text


def test_named_providers_absent_from_the_mapping_say_what_it_holds(mixed: responses.RequestsMock) -> None:
    with pytest.raises(ModelNotSupportedError) as raised:
        complete(provider=["nowhere", "neither"])
    message = str(raised.value)
    assert "nowhere, neither" in message and "broken (error, conversational)" in message and "textonly (live, text-generation)" in message
    assert posts(mixed) == []


@pytest.mark.parametrize("mapping, held", [(mapping_of(a=entry(status="error"), b=entry(task="text-to-image")), "a (error, conversational), b (live, text-to-image)"), ({}, "no providers")])
def test_no_usable_provider_is_model_not_supported_saying_what_the_mapping_held(mock: responses.RequestsMock, mapping: Any, held: str) -> None:
    serve_mapping(mock, mapping)
    with pytest.raises(ModelNotSupportedError, match="no live conversational provider") as raised:
        complete()
    assert held in str(raised.value) and MODEL in str(raised.value)
    assert posts(mock) == []


HOSTILE_NAMES = ["../x", "a/b", "x?y", "%2e%2e", "http://evil", "x#y", "..", "X"]


@pytest.mark.parametrize("shape", ["dict", "list"])
def test_hostile_provider_names_in_the_mapping_never_reach_a_url(mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture, shape: str) -> None:
    caplog.set_level(logging.WARNING, "hf_textgen")
    entries = mapping_of(*HOSTILE_NAMES, good=entry(provider_id="g"))
    serve_mapping(mock, entries if shape == "dict" else as_list(entries))
    answer_ok(mock, chat_url("good"))
    assert complete() == [info("good"), "ok", *OK]
    assert posts(mock) == [chat_url("good")]
    for name in HOSTILE_NAMES:
        assert f"skipping provider entry {name!r}" in caplog.text


def test_a_provider_id_only_goes_into_the_body(mock: responses.RequestsMock) -> None:
    """Hostile providerIds from the Hub never change the request target (hf-inference's is ignored)."""
    serve_mapping(mock, {"good": entry(provider_id="../../x?y"), "hf-inference": entry(provider_id="../y")})
    mock.post(chat_url("good"), status=429, json={"error": "slow down"})
    answer_ok(mock, chat_url("hf-inference", f"/models/{MODEL}/v1/chat/completions"))
    assert text_of(complete()) == "ok"
    assert posts(mock) == [chat_url("good"), chat_url("hf-inference", f"/models/{MODEL}/v1/chat/completions")]
    assert [body_of(call)["model"] for call in mock.calls if call.request.method == "POST"] == ["../../x?y", MODEL]


# -- failover -------------------------------------------------------------------------------------------

TWO = mapping_of("first", "second")


@pytest.fixture
def two(mock: responses.RequestsMock) -> responses.RequestsMock:
    serve_mapping(mock, TWO)
    return mock


def fail(mock: responses.RequestsMock, provider: str, failure: Any) -> None:
    if isinstance(failure, int):
        mock.post(chat_url(provider), status=failure, json={"error": f"{provider} says {failure}"})
    else:
        mock.post(chat_url(provider), body=failure)


@pytest.mark.parametrize("failure", [402, 403, 404, 408, 429, 500, 502, 503, 504, requests.ConnectionError("reset by peer")], ids=str)
def test_these_failures_move_on_to_the_next_provider(two: responses.RequestsMock, failure: Any) -> None:
    fail(two, "first", failure)
    answer_ok(two, chat_url("second"))
    status = failure if isinstance(failure, int) else None
    reason = f"first says {failure}" if status else "connection to router.huggingface.co:443 failed: reset by peer"
    chunks = complete()
    assert chunks[:2] == [info("first"), Attempt("first", status, chunks[1].reason)] and chunks[2:] == [info("second"), "ok", *OK]
    assert chunks[1].reason.startswith(reason) and chunks[1].error is not None
    assert posts(two) == [chat_url("first"), chat_url("second")]
    assert last_post_body(two)["model"] == "second-id"


@pytest.mark.parametrize("status, error_type", [(400, ResponseStatusError), (401, MissingAuthError), (422, ResponseStatusError)])
def test_these_failures_raise_at_once(two: responses.RequestsMock, status: int, error_type: type) -> None:
    fail(two, "first", status)
    answer_ok(two, chat_url("second"))
    got, error = complete_until_error()
    assert got == [info("first")] and type(error) is error_type
    assert getattr(error, "status_code") == status and not hasattr(error, "attempts")
    assert posts(two) == [chat_url("first")]


def test_when_every_provider_answers_402_the_error_is_payment_required_listing_each(two: responses.RequestsMock) -> None:
    fail(two, "first", 402)
    fail(two, "second", 402)
    got, error = complete_until_error()
    assert got == [info("first"), Attempt("first", 402, "first says 402"), info("second")]
    assert type(error) is PaymentRequiredError and getattr(error, "status_code") == 402
    message = str(error)
    assert "every provider failed" in message and "2 tried" in message
    assert "first: HTTP 402" in message and "first says 402" in message and "second says 402" in message
    attempts = getattr(error, "attempts")
    assert [name for name, _ in attempts] == ["first", "second"]
    assert all(isinstance(failure, PaymentRequiredError) for _, failure in attempts)


@pytest.mark.parametrize(
    "failures, types",
    [
        ((429, 500), (RateLimitError, ResponseStatusError)),
        ((500, 429), (ResponseStatusError, RateLimitError)),
        ((402, requests.ConnectionError("down")), (PaymentRequiredError, ConnectError)),
    ],
    ids=["rate-limit-then-500", "500-then-rate-limit", "402-then-connection"],
)
def test_when_all_fail_the_error_is_of_the_last_providers_class(two: responses.RequestsMock, failures: tuple, types: tuple) -> None:
    fail(two, "first", failures[0])
    fail(two, "second", failures[1])
    _, error = complete_until_error()
    assert type(error) is types[-1]
    attempts = getattr(error, "attempts")
    assert [type(failure) for _, failure in attempts] == list(types)
    statuses = [failure if isinstance(failure, int) else None for failure in failures]
    assert [(name, getattr(failure, "status_code", None)) for name, failure in attempts] == list(zip(["first", "second"], statuses))
    assert all(name in str(error) for name in ("first", "second"))


# -- timeouts and connections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timeout, expected",
    [(None, (10.0, 120.0)), (5, (5.0, 5.0)), ((2, 30), (2.0, 30.0)), (Timeouts(connect=1, read=2), (1.0, 2.0))],
)
def test_connect_and_idle_timeouts_go_with_every_request(together: responses.RequestsMock, timeout: Any, expected: tuple) -> None:
    complete(timeout=timeout)
    assert [call.request.req_kwargs["timeout"] for call in together.calls] == [expected, expected]
    assert together.calls[-1].request.req_kwargs["stream"] is True  # the answer is read as it arrives


def test_a_bad_timeout_is_refused_before_any_request(mock: responses.RequestsMock) -> None:
    refused_before_sending(mock, ConfigurationError, lambda: complete(timeout=-1))


@pytest.mark.parametrize("cap", [-1, float("nan"), "5", True])
def test_a_bad_retry_cap_is_refused_before_any_request(mock: responses.RequestsMock, cap: Any) -> None:
    error = refused_before_sending(mock, ConfigurationError, lambda: complete(retry_rate_limited=cap))
    assert "retry_rate_limited" in str(error)


# -- non-stream answers ---------------------------------------------------------------------------------


def test_a_non_stream_answer_yields_the_same_chunk_types(together: responses.RequestsMock) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    answer = completion(" text\n", finish="tool_calls", reasoning_content="thinking", tool_calls=[call])
    answer["usage"] = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    together.replace(responses.POST, chat_url("together"), json=answer)
    assert complete() == [info("together"), Reasoning("thinking"), " text\n", ToolCalls([call]), FinishReason("tool_calls"), Usage(3, 4, 7)]
    assert together.calls[-1].request.headers["Accept"] == "application/json"
