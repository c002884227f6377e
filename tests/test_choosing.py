"""Choosing providers by the router's catalogue, end to end against the stand-in over loopback:
skipped providers (never POSTed to, reported as Attempts), ``prefer=`` orders with failover, the
Cost chunk, fallback when the catalogue fails, and the async API on asyncio and trio."""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, Iterator, List

import pytest

from hf_textgen import (
    Attempt,
    Client,
    ConfigurationError,
    Cost,
    ModelNotSupportedError,
    ProviderInfo,
    ResponseStatusError,
    Usage,
    capabilities,
)
from hf_textgen.testing import Provider, StubServer, default_models

LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
MODEL = "org/model"
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


@pytest.fixture
def stub() -> Iterator[StubServer]:
    models = default_models(delay=0)
    models[MODEL] = [
        Provider("alpha", pricing={"input": 1.0, "output": 3.0}, first_token_latency_ms=400, throughput=40),
        Provider("beta", pricing={"input": 0.2, "output": 0.6}, first_token_latency_ms=900, throughput=90),
        Provider("gamma", first_token_latency_ms=100),  # price and throughput unknown
    ]
    with StubServer(models) as server:
        yield server


def client(stub: StubServer, **settings: Any) -> Client:
    return Client(api_key="hf_test_token", hub_url=stub.url, router_url=stub.url, **settings)


def posts(stub: StubServer) -> List[str]:
    return [r.path.split("/")[1] for r in stub.requests if r.method == "POST"]


def catalogue_gets(stub: StubServer) -> int:
    return sum(1 for r in stub.requests if r.method == "GET" and r.path.startswith("/v1/models"))


def kinds(chunks: List[Any]) -> List[str]:
    return [type(chunk).__name__ for chunk in chunks if not isinstance(chunk, str)]


# ------------------------------------------------------------------------------------------ skip
def test_structured_output_goes_to_the_next_capable_provider_with_no_post_to_the_first(stub: StubServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "hf_textgen")
    chunks = list(client(stub).create_completion(LLAMA, MESSAGES, response_format={"type": "json_object"}))
    skipped = Attempt("novita", None, "no structured output (router catalogue)", skipped=True)
    assert chunks[0] == skipped and chunks[1] == ProviderInfo("HuggingFace (together)", LLAMA, "together")
    assert posts(stub) == ["together"]
    assert "skipping provider novita" in caplog.text
    result = client(stub).complete(LLAMA, MESSAGES, response_format=SCHEMA)
    assert result.provider == "together" and result.attempts == (skipped,)
    assert posts(stub) == ["together", "together"] and catalogue_gets(stub) == 1  # cached


@pytest.mark.parametrize("value, tried", [(False, ["beta"]), (True, ["alpha"]), (None, ["alpha"])])
def test_tools_skip_only_a_provider_known_to_lack_them(stub: StubServer, value: Any, tried: List[str]) -> None:
    stub.provider(MODEL, "alpha").update(supports_tools=value)
    result = client(stub).complete(MODEL, MESSAGES, tools=TOOLS)
    assert posts(stub) == tried and result.provider == tried[0]
    assert [a.skipped for a in result.attempts] == ([True] if value is False else [])


def test_a_conversation_too_long_for_a_provider_skips_it(stub: StubServer) -> None:
    stub.provider(MODEL, "alpha").update(context_length=100)
    result = client(stub).complete(MODEL, [{"role": "user", "content": "word " * 50}], max_tokens=50, prefer="order")
    assert result.provider == "alpha"  # ~70 + 50 > 100 is only known with the catalogue: not read for this call
    result = client(stub, catalog="always").complete(MODEL, [{"role": "user", "content": "word " * 50}], max_tokens=50)
    assert result.provider == "beta" and result.attempts[0].reason.startswith("context length 100 < ~")


def test_a_provider_in_error_in_the_catalogue_is_skipped(stub: StubServer) -> None:
    listing = {"id": MODEL, "providers": [{"provider": "alpha", "status": "error"}, {"provider": "beta", "status": "live"}]}
    stub.catalog_body = json.dumps(listing).encode()
    result = client(stub).complete(MODEL, MESSAGES, tools=TOOLS)
    assert result.provider == "beta" and result.attempts == (Attempt("alpha", None, "status 'error' in the router's catalogue", skipped=True),)


def test_every_provider_skipped_names_each_and_sends_nothing(stub: StubServer) -> None:
    for name in ("alpha", "beta", "gamma"):
        stub.provider(MODEL, name).update(supports_tools=False)
    stub.provider(MODEL, "gamma").update(supports_tools=None, context_length=10)
    with pytest.raises(ModelNotSupportedError) as raised:
        list(client(stub).create_completion(MODEL, MESSAGES, tools=TOOLS))
    message = str(raised.value)
    assert "alpha: no tool calling" in message and "beta: no tool calling" in message and "gamma: context length 10" in message
    assert posts(stub) == []


def test_a_named_provider_is_tried_anyway_with_a_warning(stub: StubServer, caplog: pytest.LogCaptureFixture) -> None:
    client(stub).get_catalog_sync(LLAMA)  # named providers use a cached catalogue only
    with pytest.raises(ResponseStatusError):
        client(stub).complete(LLAMA, MESSAGES, provider="novita", response_format=SCHEMA)
    assert posts(stub) == ["novita"]
    assert "trying provider novita" in caplog.text and "no structured output" in caplog.text


def test_skipped_then_failed_lists_both_in_the_error(stub: StubServer) -> None:
    stub.provider(MODEL, "alpha").update(supports_tools=False)
    stub.provider(MODEL, "beta").update(error_status=503)
    stub.provider(MODEL, "gamma").update(error_status=502)
    with pytest.raises(ResponseStatusError) as raised:
        client(stub).complete(MODEL, MESSAGES, tools=TOOLS)
    assert raised.value.status_code == 502 and "skipped alpha: no tool calling" in str(raised.value)
    assert posts(stub) == ["beta", "gamma"]


# ---------------------------------------------------------------------------------------- prefer
@pytest.mark.parametrize(
    "prefer, order",
    [("order", ["alpha", "beta", "gamma"]), ("cheapest", ["beta", "alpha", "gamma"]), ("fastest", ["gamma", "alpha", "beta"]),
     ("throughput", ["beta", "alpha", "gamma"])],
)
def test_prefer_orders_the_providers_and_still_fails_over(stub: StubServer, prefer: str, order: List[str]) -> None:
    for name in order[:2]:
        stub.provider(MODEL, name).update(error_status=503)
    result = client(stub).complete(MODEL, MESSAGES, prefer=prefer)
    assert posts(stub) == order and result.provider == order[2]
    assert [a.provider for a in result.attempts] == order[:2]


def test_a_client_default_prefer_applies_unless_a_call_names_providers(stub: StubServer) -> None:
    cheap = client(stub, prefer="cheapest")
    assert cheap.complete(MODEL, MESSAGES).provider == "beta"
    assert cheap.complete(MODEL, MESSAGES, provider=["gamma", "beta"]).provider == "gamma"  # the names are the order
    assert cheap.complete(MODEL, MESSAGES, prefer="order").provider == "alpha"


@pytest.mark.parametrize(
    "model, kwargs",
    [(MODEL, {"prefer": "priciest"}), (MODEL, {"prefer": 1}), (MODEL, {"prefer": "cheapest", "provider": "alpha"}),
     (MODEL, {"prefer": "fastest", "provider": "auto"}), (f"{MODEL}:cheapest", {"prefer": "cheapest"}),
     (MODEL, {"prefer": "cheapest", "api_base": "http://127.0.0.1:9/v1"})],
)
def test_prefer_is_checked_before_anything_is_sent(stub: StubServer, model: str, kwargs: Dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="prefer"):
        client(stub).create_completion(model, MESSAGES, **kwargs)
    assert stub.requests == []


@pytest.mark.parametrize("settings", [{"prefer": "best"}, {"prefer": "cheapest", "provider": "alpha"}, {"catalog": "sometimes"},
                                      {"catalog": "never", "prefer": "fastest"}])
def test_client_settings_are_checked(stub: StubServer, settings: Dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        client(stub, **settings)


def test_catalog_never_reads_nothing_and_skips_nothing(stub: StubServer) -> None:
    result = client(stub, catalog="never").complete(LLAMA, MESSAGES, response_format=SCHEMA)
    assert posts(stub) == ["novita", "together"] and result.cost is None and catalogue_gets(stub) == 0
    with pytest.raises(ConfigurationError):
        client(stub, catalog="never").create_completion(MODEL, MESSAGES, prefer="cheapest")


# ------------------------------------------------------------------------------------------ cost
def expected_cost(usage: Usage, provider: str, input_price: float, output_price: float) -> Cost:
    given, made = input_price * usage.prompt_tokens / 1e6, output_price * usage.completion_tokens / 1e6
    return Cost(given, made, given + made, provider)


@pytest.mark.parametrize("stream", [True, False])
def test_the_cost_comes_last_after_usage(stub: StubServer, stream: bool) -> None:
    chunks = list(client(stub, catalog="always").create_completion(MODEL, MESSAGES, stream=stream))
    assert kinds(chunks)[-2:] == ["Usage", "Cost"]
    usage, cost = chunks[-2], chunks[-1]
    assert cost == expected_cost(usage, "alpha", 1.0, 3.0) and cost.total_usd > 0


def test_no_cost_when_the_answering_provider_has_no_prices(stub: StubServer) -> None:
    result = client(stub, catalog="always").complete(MODEL, MESSAGES, provider="gamma")
    assert result.usage is not None and result.cost is None


def test_a_plain_call_reads_no_catalogue_but_uses_a_cached_one(stub: StubServer) -> None:
    assert client(stub).complete(MODEL, MESSAGES).cost is None and catalogue_gets(stub) == 0
    client(stub).get_catalog_sync(MODEL)
    result = client(stub).complete(MODEL, MESSAGES)
    assert result.cost == expected_cost(result.usage, "alpha", 1.0, 3.0)  # type: ignore[arg-type]
    assert catalogue_gets(stub) == 1


def test_server_side_routing_is_priced_by_the_provider_that_answered_when_cached(stub: StubServer) -> None:
    assert client(stub).complete(f"{MODEL}:cheapest", MESSAGES).cost is None  # never fetched for server-side routing
    assert catalogue_gets(stub) == 0
    client(stub).get_catalog_sync(MODEL)
    result = client(stub).complete(f"{MODEL}:cheapest", MESSAGES)
    assert result.provider == "beta" and result.cost == expected_cost(result.usage, "beta", 0.2, 0.6)  # type: ignore[arg-type]


def test_api_base_reads_no_catalogue(stub: StubServer) -> None:
    with StubServer({MODEL: [Provider("alpha")]}, require_token=False) as other:
        base = f"{other.url}/alpha/v1"
        result = client(stub, catalog="always").complete("alpha/model", MESSAGES, api_base=base, tools=TOOLS)
        assert result.cost is None
    assert catalogue_gets(stub) == 0


# -------------------------------------------------------------------------------------- fallback
@pytest.mark.parametrize(
    "status, body, delay",
    [(503, None, 0.0), (401, None, 0.0), (None, b"{truncated", 0.0), (None, b'{"id": "meta-llama/Llama-3.3-70B-Instruct", "providers": [{"provider": "novita", "supports_structured_output": "no"}]}', 0.0),
     (None, b'{"object": "list", "data": []}', 0.0), (None, None, 30.0)],
)
def test_a_failing_catalogue_falls_back_to_the_mapping_with_no_error(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, status: Any, body: Any, delay: float
) -> None:
    monkeypatch.setattr(capabilities, "CATALOG_TIMEOUT", 0.3)
    monkeypatch.setattr(capabilities, "_warned", set())
    stub.catalog_status, stub.catalog_body, stub.catalog_delay = status, body, delay
    for _ in range(2):
        result = client(stub).complete(LLAMA, MESSAGES, response_format=SCHEMA)
        assert result.provider == "together" and [(a.provider, a.status, a.skipped) for a in result.attempts] == [("novita", 402, False)]
    assert catalogue_gets(stub) == 1  # the failure is kept for a minute
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "catalogue is unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "hf_test_token" not in caplog.text


# ----------------------------------------------------------------------------------------- async
@pytest.mark.anyio
async def test_complete_async_skips_and_prices(stub: StubServer, anyio_backend: str) -> None:
    result = await client(stub, catalog="always").complete_async(LLAMA, MESSAGES, response_format=SCHEMA, max_tokens=100)
    assert result.provider == "together" and result.attempts[0].skipped
    assert result.cost is not None and result.cost.provider == "together"
    assert posts(stub) == ["together"]
    found = await client(stub).get_catalog(LLAMA)
    assert found.get("together").throughput == 88.3  # type: ignore[union-attr]
    assert [m.model for m in await client(stub).list_catalog_async()] == list(stub.models)
