"""The router's catalogue as values: parsing (missing = unknown, wrong types refused), and its
cache over loopback (per token, one GET for concurrent first calls, bounded, failures kept a
minute and logged once)."""
from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Iterator, List

import pytest

from hf_textgen import Client, ResponseError, ResponseStatusError, capabilities
from hf_textgen.capabilities import ModelCatalog, ProviderCapabilities, parse_listing, parse_model
from hf_textgen.deadlines import Deadlines
from hf_textgen.hub import ExpiringCache
from hf_textgen.testing import StubServer, default_models
from hf_textgen.types import Timeouts

LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
QWEN = "Qwen/Qwen2.5-72B-Instruct"
TOKEN = "hf_test_token"


# -------------------------------------------------------------------------------------- parsing
def entry(**fields: Any) -> Dict[str, Any]:
    return {"id": "org/model", "providers": [{"provider": "p", **fields}]}


def test_every_field_is_read() -> None:
    raw = entry(status="live", context_length=8192, pricing={"input": 0.5, "output": 1}, is_free=False, supports_tools=True,
                supports_structured_output=False, first_token_latency_ms=120, throughput=55.5, is_model_author=True)
    assert parse_model(raw, "org/model").providers == (
        ProviderCapabilities("p", "live", 8192, 0.5, 1.0, False, True, False, 120.0, 55.5, True),
    )


def test_missing_and_null_fields_are_unknown_and_extra_fields_ignored() -> None:
    raw = entry(status=None, pricing={"input": 0.2}, supports_tools=None, brand_new_field={"x": 1})
    raw["architecture"] = {"input_modalities": ["text", "image"]}
    raw["something_else"] = 3
    found = parse_model(raw)
    assert found.providers == (ProviderCapabilities("p", input_price=0.2),)
    assert found.input_modalities == ("text", "image") and found.get("p") is found.providers[0] and found.get("q") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"context_length": "131072"}, {"context_length": True}, {"context_length": 0}, {"context_length": 1.5},
        {"pricing": "cheap"}, {"pricing": {"input": "0.1"}}, {"pricing": {"output": -1}}, {"pricing": {"input": float("nan")}},
        {"supports_tools": "yes"}, {"supports_structured_output": 1}, {"is_free": "false"},
        {"first_token_latency_ms": "fast"}, {"throughput": [1]}, {"status": 5},
    ],
)
def test_a_field_of_the_wrong_type_makes_the_entry_unreadable(fields: Dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"providers\[0\] \(p\)"):
        parse_model(entry(**fields))


@pytest.mark.parametrize(
    "raw", [[], "text", {"id": "org/model"}, {"id": "org/model", "providers": {}}, {"providers": []},
            {"id": "org/model", "providers": [{"provider": "../x"}]}, {"id": "org/model", "providers": ["p"]}],
)
def test_an_unknown_shape_is_refused(raw: Any) -> None:
    with pytest.raises(ValueError):
        parse_model(raw)


def test_an_entry_for_another_model_is_refused() -> None:
    with pytest.raises(ValueError, match="describes"):
        parse_model(entry(), "org/other")


def test_the_listing_keeps_readable_models(caplog: pytest.LogCaptureFixture) -> None:
    raw = {"object": "list", "data": [entry(), {"id": "org/bad", "providers": [{"provider": "p", "throughput": "x"}]}, {"id": "org/c", "providers": []}]}
    assert [model.model for model in parse_listing(raw)] == ["org/model", "org/c"]
    assert "skipping entry 1" in caplog.text
    with pytest.raises(ValueError):
        parse_listing({"data": {}})


# ----------------------------------------------------------------------------------- the cache
def test_expiring_cache_is_bounded_and_evicts_expired_entries_first() -> None:
    cache: ExpiringCache[str] = ExpiringCache(60, max_size=2, ttl_of=lambda value: -1 if value == "stale" else 60)
    cache.put("a", "fresh a")
    cache.put("b", "stale")
    cache.put("c", "fresh c")
    assert len(cache) == 2 and cache.get("a") == "fresh a" and cache.get("c") == "fresh c"
    cache.put("d", "fresh d")  # nothing expired: the oldest goes
    assert cache.get("a") is None and len(cache) == 2
    assert cache.get_or_load("e", lambda: "loaded") == "loaded" and not cache._locks  # no lock kept after a load


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(default_models(delay=0)) as server:
        yield server


def catalogue_gets(stub: StubServer) -> List[str]:
    return [r.path for r in stub.requests if r.method == "GET" and r.path.startswith("/v1/models")]


def client(stub: StubServer, token: str = TOKEN) -> Client:
    return Client(api_key=token, hub_url=stub.url, router_url=stub.url)


def test_get_catalog_reads_the_model_with_the_token_sent_as_for_chat(stub: StubServer) -> None:
    found = client(stub).get_catalog_sync(LLAMA)
    assert isinstance(found, ModelCatalog) and [p.provider for p in found.providers] == ["novita", "together"]
    assert found.get("novita").supports_structured_output is False  # type: ignore[union-attr]
    [request] = [r for r in stub.requests if r.path.startswith("/v1/models")]
    assert request.path == f"/v1/models/{LLAMA}" and request.headers["Authorization"] == "Bearer ***"


def test_the_cache_is_keyed_by_token(stub: StubServer) -> None:
    client(stub).get_catalog_sync(LLAMA)
    client(stub).get_catalog_sync(LLAMA)
    assert len(catalogue_gets(stub)) == 1
    client(stub, "hf_another_token").get_catalog_sync(LLAMA)
    assert len(catalogue_gets(stub)) == 2
    client(stub).get_catalog_sync(QWEN)
    assert len(catalogue_gets(stub)) == 3
    client(stub).get_catalog_sync(LLAMA, refresh=True)
    assert len(catalogue_gets(stub)) == 4


def test_concurrent_first_calls_make_one_get(stub: StubServer) -> None:
    stub.catalog_delay = 0.3  # the first GET is still out when the others ask
    start, found = threading.Barrier(8), []

    def ask() -> None:
        start.wait()
        found.append(client(stub).get_catalog_sync(LLAMA))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and all(item == found[0] for item in found)
    assert len(catalogue_gets(stub)) == 1


def test_the_cache_is_bounded(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    small: ExpiringCache[Any] = ExpiringCache(600, max_size=2)
    monkeypatch.setattr(capabilities, "_models", small)
    for model in (LLAMA, QWEN, "deepseek-ai/DeepSeek-R1"):
        client(stub).get_catalog_sync(model)
    assert len(small) == 2
    client(stub).get_catalog_sync(LLAMA)  # the oldest was evicted: asked again
    assert len(catalogue_gets(stub)) == 4


@pytest.mark.parametrize(
    "status, body, error",
    [(503, None, ResponseStatusError), (404, None, ResponseStatusError), (None, b"{not json", ResponseError),
     (None, b'{"id": "meta-llama/Llama-3.3-70B-Instruct", "providers": [{"provider": "novita", "context_length": "big"}]}', ResponseError),
     (None, b"[]", ResponseError)],
)
def test_a_failure_raises_from_get_catalog_and_is_kept_a_minute(stub: StubServer, status: Any, body: Any, error: type) -> None:
    stub.catalog_status, stub.catalog_body = status, body
    with pytest.raises(error) as raised:
        client(stub).get_catalog_sync(LLAMA)
    assert TOKEN not in str(raised.value)
    stub.catalog_status = stub.catalog_body = None
    with pytest.raises(error):
        client(stub).get_catalog_sync(LLAMA)  # kept: no second GET within FAILURE_TTL
    assert len(catalogue_gets(stub)) == 1
    assert client(stub).get_catalog_sync(LLAMA, refresh=True).model == LLAMA


def test_a_failure_is_logged_once_per_router_and_model(stub: StubServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "hf_textgen")
    stub.catalog_status = 500
    plan = Deadlines.start(Timeouts())
    for _ in range(3):
        found = capabilities.lookup(stub.url, "org/never-seen-1", TOKEN, plan, {}, refresh=True)
        assert isinstance(found, ResponseStatusError)
    records = [r for r in caplog.records if "catalogue is unavailable" in r.getMessage()]
    assert [r.levelno for r in records] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert TOKEN not in caplog.text


def test_a_slow_catalogue_is_cut_by_its_own_cap(stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capabilities, "CATALOG_TIMEOUT", 0.2)
    stub.catalog_delay = 30.0
    found = capabilities.lookup(stub.url, LLAMA, TOKEN, Deadlines.start(Timeouts()), {})
    assert isinstance(found, ResponseError) and "deadline" in str(found)


def test_list_catalog_reads_every_model(stub: StubServer) -> None:
    listed = client(stub).list_catalog()
    assert [model.model for model in listed] == list(stub.models)
    client(stub).list_catalog()
    assert catalogue_gets(stub) == ["/v1/models"]


def test_a_bad_model_id_is_refused_before_anything_is_sent(stub: StubServer) -> None:
    with pytest.raises(ValueError):
        client(stub).get_catalog_sync("../x")
    assert stub.requests == []
