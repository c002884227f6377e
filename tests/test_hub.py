"""The Hub at the request level (``responses``): the model listing and one model's provider mapping,
their caches, retries and failure modes."""
from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Tuple

import pytest
import requests
import responses

from hf_textgen import HuggingFaceAPI, hub
from hf_textgen.errors import ConfigurationError, ConnectError, MissingAuthError, ModelNotSupportedError, ResponseError, ResponseStatusError

from mocked import backoffs, isolated, mock  # noqa: F401  (fixtures)
from mocked import HUB, MAPPING_URL, MODEL, TOKEN, as_list, auth_headers, entry, gets, mapping_of, serve_mapping


LISTING_URL = f"{HUB}/api/models?inference_provider=all&expand[]=inferenceProviderMapping&limit=1000"
FALLBACK = HuggingFaceAPI.fallback_models
LIVE = mapping_of("together")
NORMALIZED_LIVE = {"together": {"providerId": "together-id", "status": "live", "task": "conversational"}}


def item(model: str, mapping: Any = LIVE) -> Dict[str, Any]:
    return {"id": model, "inferenceProviderMapping": mapping}


def page_link(url: str) -> Dict[str, str]:
    return {"Link": f'<{url}>; rel="next"'}


class Clock:
    """Stands in for the ``time`` module of hf_textgen.hub: ``monotonic()`` returns ``now``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(hub, "time", fake)
    return fake


def get_mapping(model: str = MODEL, api_key: str = TOKEN) -> Dict[str, Dict[str, str]]:
    return HuggingFaceAPI.get_mapping_sync(model, api_key=api_key)


# -- listing --------------------------------------------------------------------------------------------


def test_listing_follows_next_links_and_keeps_live_conversational_models_in_order(mock: responses.RequestsMock) -> None:
    mock.get(
        LISTING_URL,
        json=[
            item("org/a"),
            item("org/staging", {"x": entry(status="staging")}),
            item("org/b", as_list(mapping_of("novita", "groq"))),
            item("org/text-only", mapping_of(x=entry(task="text-generation"))),
            item("org/none", None),
            item("org/empty", []),
        ],
        headers=page_link(f"{HUB}/api/models?cursor=2"),
    )
    mock.get(
        f"{HUB}/api/models?cursor=2",
        json=[item("org/a"), item("org/c", as_list(mapping_of(x=entry(status="error"), y=entry())))],
        headers={"Link": f'<{HUB}/api/models?cursor=1>; rel="prev", <{HUB}/api/models?cursor=3>; rel="next"'},
    )
    mock.get(f"{HUB}/api/models?cursor=3", json=[item("org/d")])
    assert HuggingFaceAPI.get_models(api_key=TOKEN) == ["org/a", "org/b", "org/c", "org/d"]
    assert len(gets(mock)) == 3
    assert "expand%5B%5D=inferenceProviderMapping" in gets(mock)[0]
    assert auth_headers(mock) == [f"Bearer {TOKEN}"] * 3


def test_a_relative_next_link_is_followed_on_the_hub(mock: responses.RequestsMock) -> None:
    mock.get(LISTING_URL, json=[item("org/a")], headers=page_link("/api/models?cursor=2"))
    mock.get(f"{HUB}/api/models?cursor=2", json=[item("org/b")])
    assert HuggingFaceAPI.get_models() == ["org/a", "org/b"]


class WithOwnMappings(HuggingFaceAPI):
    provider_mapping = {"mine/first": mapping_of("together"), "org/a": mapping_of("novita"), "mine/second": {}}


def test_provider_mapping_keys_join_the_list_without_duplicates(mock: responses.RequestsMock) -> None:
    mock.get(LISTING_URL, json=[item("org/a"), item("org/b"), item("org/a")])
    assert WithOwnMappings.get_models() == ["org/a", "org/b", "mine/first", "mine/second"]


def test_listing_stops_after_max_pages(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(hub, "MAX_PAGES", 3)

    def endless(request: requests.PreparedRequest) -> Tuple[int, Dict[str, str], str]:
        number = len(mock.calls)
        return 200, page_link(f"{HUB}/api/models?cursor={number + 1}"), f'[{{"id": "org/m{number}", "inferenceProviderMapping": {{"p": {{"status": "live", "task": "conversational"}}}}}}]'

    mock.add_callback(responses.GET, f"{HUB}/api/models", callback=endless, content_type="application/json")
    caplog.set_level(logging.WARNING, "hf_textgen")
    assert HuggingFaceAPI.get_models() == ["org/m0", "org/m1", "org/m2"]
    assert len(mock.calls) == 3
    assert "3 pages" in caplog.text


FAILURES: Dict[str, Callable[[responses.RequestsMock], None]] = {
    "connection error": lambda mock: mock.get(LISTING_URL, body=requests.ConnectionError("refused")),
    "500 after retries": lambda mock: mock.get(LISTING_URL, status=500, json={"error": "down"}),
    "404": lambda mock: mock.get(LISTING_URL, status=404, json={"error": "no"}),
    "401": lambda mock: mock.get(LISTING_URL, status=401, json={"error": "bad token"}),
    "invalid json": lambda mock: mock.get(LISTING_URL, body="[{not json", content_type="application/json"),
    "html": lambda mock: mock.get(LISTING_URL, body="<html>maintenance</html>", content_type="text/html"),
    "a dict": lambda mock: mock.get(LISTING_URL, json={"models": []}),
    "items not objects": lambda mock: mock.get(LISTING_URL, json=["org/a", 3]),
    "a mapping of the wrong type": lambda mock: mock.get(LISTING_URL, json=[item("org/a", "together")]),
    "an item without id": lambda mock: mock.get(LISTING_URL, json=[{"inferenceProviderMapping": LIVE}]),
    "an id that is not a string": lambda mock: mock.get(LISTING_URL, json=[item(["org/a"])]),  # type: ignore[arg-type]
    "second page fails": lambda mock: (
        mock.get(LISTING_URL, json=[item("org/x")], headers=page_link(f"{HUB}/api/models?cursor=2")),
        mock.get(f"{HUB}/api/models?cursor=2", status=404),
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_any_listing_failure_returns_the_fallback_and_is_not_cached(mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture, failure: str) -> None:
    caplog.set_level(logging.WARNING, "hf_textgen")
    FAILURES[failure](mock)
    models = HuggingFaceAPI.get_models(api_key=TOKEN)
    assert models == FALLBACK and models is not FALLBACK
    assert "model listing failed" in caplog.text and TOKEN not in caplog.text
    mock.reset()
    mock.get(LISTING_URL, json=[item("org/recovered")])
    assert HuggingFaceAPI.get_models(api_key=TOKEN) == ["org/recovered"]


def test_listing_retries_5xx_and_connection_errors_a_bounded_number_of_times(mock: responses.RequestsMock, backoffs: List[float]) -> None:
    mock.get(LISTING_URL, status=503)
    assert HuggingFaceAPI.get_models() == FALLBACK
    assert len(mock.calls) == 3 and backoffs == [0.25, 0.5]


def test_a_successful_listing_is_cached_and_refresh_refetches(mock: responses.RequestsMock) -> None:
    mock.get(LISTING_URL, json=[item("org/a")])
    assert HuggingFaceAPI.get_models() == HuggingFaceAPI.get_models() == ["org/a"]
    assert len(mock.calls) == 1
    mock.replace(responses.GET, LISTING_URL, json=[item("org/b")])
    assert HuggingFaceAPI.get_models(refresh=True) == ["org/b"]
    assert HuggingFaceAPI.get_models() == ["org/b"] and len(mock.calls) == 2


def test_a_cached_listing_expires(mock: responses.RequestsMock, clock: Clock) -> None:
    mock.get(LISTING_URL, json=[item("org/a")])
    HuggingFaceAPI.get_models()
    clock.now += hub._listings.ttl - 1
    HuggingFaceAPI.get_models()
    assert len(mock.calls) == 1
    clock.now += 2
    HuggingFaceAPI.get_models()
    assert len(mock.calls) == 2


def test_the_listing_follows_hf_endpoint_at_call_time(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    mock.get(LISTING_URL, json=[item("org/a")])
    mock.get("https://mirror.example/api/models", json=[item("org/mirrored")])
    assert HuggingFaceAPI.get_models() == ["org/a"]
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example")
    assert HuggingFaceAPI.get_models() == ["org/mirrored"]


def test_only_hf_tokens_go_to_the_hub(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    mock.get(LISTING_URL, json=[item("org/a")])
    HuggingFaceAPI.get_models(api_key="sk-not-a-hub-token")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    HuggingFaceAPI.get_models()
    assert auth_headers(mock) == [None, f"Bearer {TOKEN}"]


# -- mapping --------------------------------------------------------------------------------------------

ORDERED = mapping_of("novita", "together", "groq", cohere=entry(status="staging", provider_id="c"))


@pytest.mark.parametrize("shape", [ORDERED, as_list(ORDERED)], ids=["dict", "list"])
def test_both_mapping_shapes_become_one_shape_in_the_hubs_order(mock: responses.RequestsMock, shape: Any) -> None:
    serve_mapping(mock, shape)
    mapping = get_mapping()
    assert list(mapping) == ["novita", "together", "groq", "cohere"]
    assert mapping["cohere"] == {"providerId": "c", "status": "staging", "task": "conversational"}
    assert gets(mock) == [f"{MAPPING_URL}?expand%5B%5D=inferenceProviderMapping"]
    assert auth_headers(mock) == [f"Bearer {TOKEN}"]


def test_aliases_are_resolved_before_the_lookup(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, LIVE, model="meta-llama/Llama-3.1-8B-Instruct")
    assert get_mapping("llama-3.1-8b") == NORMALIZED_LIVE


def test_a_model_without_providers_has_an_empty_mapping(mock: responses.RequestsMock) -> None:
    mock.get(MAPPING_URL, json={"id": MODEL})
    assert get_mapping() == {}


@pytest.mark.parametrize("model", ["../x", "a?b", "a/b/c", "a--b", "x" * 97, "модель/x", "org/x#y", "%2e%2e/x"])
def test_a_bad_model_id_is_refused_before_any_request(mock: responses.RequestsMock, model: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid model id"):
        get_mapping(model)
    assert len(mock.calls) == 0


def test_an_unknown_model_is_model_not_supported_naming_it(mock: responses.RequestsMock) -> None:
    mock.get(MAPPING_URL, status=404, json={"error": "Repository not found"})
    with pytest.raises(ModelNotSupportedError, match=f"'{MODEL}'.*HTTP 404"):
        get_mapping()
    assert len(mock.calls) == 1  # a 404 is not retried


def test_401_with_an_hf_token_is_missing_auth(mock: responses.RequestsMock) -> None:
    mock.get(MAPPING_URL, status=401, json={"error": "Invalid credentials in Authorization header"})
    with pytest.raises(MissingAuthError, match="refused the token") as raised:
        get_mapping()
    assert TOKEN not in str(raised.value)


def test_401_without_an_hf_token_is_a_gated_or_unknown_model(mock: responses.RequestsMock) -> None:
    mock.get(MAPPING_URL, status=401, json={"error": "Repository not found"})
    with pytest.raises(ModelNotSupportedError, match="gated or private"):
        get_mapping(api_key="sk-elsewhere")
    assert auth_headers(mock) == [None]


@pytest.mark.parametrize(
    "answer, error",
    [
        ({"body": "{oops", "content_type": "application/json"}, "invalid JSON"),
        ({"json": ["not", "a", "model"]}, "unexpected answer"),
        ({"json": {"id": MODEL, "inferenceProviderMapping": "together"}}, "unexpected provider mapping"),
    ],
)
def test_an_unreadable_mapping_is_a_response_error(mock: responses.RequestsMock, answer: Dict[str, Any], error: str) -> None:
    mock.get(MAPPING_URL, **answer)
    with pytest.raises(ResponseError, match=error):
        get_mapping()


def test_a_mapping_is_cached_per_model(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, LIVE)
    serve_mapping(mock, mapping_of("groq"), model="org/other")
    assert get_mapping() == get_mapping() == NORMALIZED_LIVE
    assert list(get_mapping("org/other")) == ["groq"]
    assert len(mock.calls) == 2


def test_a_mapping_is_cached_per_token(mock: responses.RequestsMock) -> None:
    def per_token(request: requests.PreparedRequest) -> Tuple[int, Dict[str, str], str]:
        name = "alpha" if request.headers.get("Authorization") == f"Bearer {TOKEN}" else "beta"
        return 200, {}, f'{{"inferenceProviderMapping": {{"{name}": {{"status": "live"}}}}}}'

    mock.add_callback(responses.GET, MAPPING_URL, callback=per_token, content_type="application/json")
    assert list(get_mapping()) == ["alpha"]
    assert list(get_mapping(api_key="hf_another_token")) == ["beta"]
    assert list(get_mapping()) == ["alpha"] and list(get_mapping(api_key="hf_another_token")) == ["beta"]
    assert len(mock.calls) == 2


def test_a_mapping_is_cached_per_hub(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_mapping(mock, LIVE)
    serve_mapping(mock, mapping_of("groq"), hub_url="https://mirror.example")
    assert list(get_mapping()) == ["together"]
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    assert list(get_mapping()) == ["groq"]


def test_a_cached_mapping_expires(mock: responses.RequestsMock, clock: Clock) -> None:
    serve_mapping(mock, LIVE)
    get_mapping()
    clock.now += hub._mappings.ttl - 1
    get_mapping()
    assert len(mock.calls) == 1
    clock.now += 2
    get_mapping()
    assert len(mock.calls) == 2


def test_concurrent_first_calls_for_one_model_make_one_request(mock: responses.RequestsMock) -> None:
    threads_count = 8
    started = threading.Barrier(threads_count)
    slow = threading.Event()

    def slowly(request: requests.PreparedRequest) -> Tuple[int, Dict[str, str], str]:
        slow.wait(0.1)  # the others arrive meanwhile and must wait for this answer
        return 200, {}, '{"inferenceProviderMapping": {"together": {"status": "live", "task": "conversational"}}}'

    mock.add_callback(responses.GET, MAPPING_URL, callback=slowly, content_type="application/json")
    results: List[Any] = []

    def call() -> None:
        started.wait()
        results.append(get_mapping())

    threads = [threading.Thread(target=call) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(results) == threads_count and all(result == results[0] for result in results)
    assert len(mock.calls) == 1


@pytest.mark.parametrize(
    "failures, error, calls",
    [
        ([500, 502, 503], ResponseStatusError, 3),
        ([requests.ConnectionError("reset")] * 3, ConnectError, 3),
        ([503, requests.ConnectionError("reset")], None, 3),
        ([429], ResponseStatusError, 1),
        ([403], ResponseStatusError, 1),
    ],
)
def test_mapping_gets_retry_connection_errors_and_5xx_a_bounded_number_of_times(
    mock: responses.RequestsMock, backoffs: List[float], failures: List[Any], error: Any, calls: int
) -> None:
    for failure in failures:
        if isinstance(failure, int):
            mock.get(MAPPING_URL, status=failure, json={"error": f"hub says {failure}"})
        else:
            mock.get(MAPPING_URL, body=failure)
    serve_mapping(mock, LIVE)  # what a further attempt would get
    if error is None:
        assert get_mapping() == NORMALIZED_LIVE
    else:
        with pytest.raises(error) as raised:
            get_mapping()
        assert MAPPING_URL in str(raised.value)
    assert len(mock.calls) == calls
    assert backoffs == [0.25, 0.5][: calls - 1]


def test_a_failed_mapping_is_not_cached(mock: responses.RequestsMock) -> None:
    mock.get(MAPPING_URL, status=404)
    with pytest.raises(ModelNotSupportedError):
        get_mapping()
    mock.replace(responses.GET, MAPPING_URL, json={"inferenceProviderMapping": LIVE})
    assert get_mapping() == NORMALIZED_LIVE
    assert len(mock.calls) == 2


def test_a_class_level_provider_mapping_needs_no_network(mock: responses.RequestsMock) -> None:
    assert WithOwnMappings.get_mapping_sync("mine/first") == NORMALIZED_LIVE
    assert WithOwnMappings.get_mapping_sync("mine/second") == {}
    assert len(mock.calls) == 0


def test_the_cache_loads_once_per_key_and_keeps_nothing_on_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    cache: hub.ExpiringCache[str] = hub.ExpiringCache(ttl=60)
    monkeypatch.setattr(hub, "time", SimpleNamespace(monotonic=lambda: 0.0))
    loads: List[str] = []

    def failing() -> str:
        loads.append("fail")
        raise ValueError("no")

    with pytest.raises(ValueError):
        cache.get_or_load("k", failing)
    assert cache.get("k") is None
    assert cache.get_or_load("k", lambda: loads.append("ok") or "value") == "value"
    assert cache.get_or_load("k", failing) == "value" and loads == ["fail", "ok"]
