"""Server-side routing in the stand-in: the policies' orders and the router's own failover."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Dict, List, Tuple

import pytest

from hf_textgen import HuggingFaceAPI, ProviderInfo
from hf_textgen.testing import RETRY_STATUSES, Provider, StubServer, policy_order

MODEL = "org/Model"
LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
AUTH = {"Authorization": "Bearer hf_test_token", "Content-Type": "application/json"}
MESSAGES = [{"role": "user", "content": "Say hello"}]
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for 127.0.0.1


def routed(stub: StubServer, model: str, **body: Any) -> Tuple[int, str, bytes]:
    """POST to the router's own route: (status, x-inference-provider, body)."""
    data = json.dumps({"model": model, "messages": MESSAGES, **body}).encode()
    request = urllib.request.Request(f"{stub.url}/v1/chat/completions", data, AUTH, method="POST")
    try:
        with OPENER.open(request, timeout=60) as answer:
            return answer.status, answer.headers["x-inference-provider"], answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["x-inference-provider"], error.read()


def names(providers: List[Provider]) -> List[str]:
    return [p.name for p in providers]


# ---------------------------------------------------------------------------------------- the orders
FIGURES = [  # mapping (the user's) order
    Provider("slow-cheap", pricing={"input": 0.1, "output": 0.2}, throughput=20.0, first_token_latency_ms=900.0),
    Provider("unknown"),
    Provider("fast-dear", pricing={"input": 2.0, "output": 3.0}, throughput=150.0, first_token_latency_ms=1500.0),
    Provider("prompt", pricing={"input": 0.5, "output": 0.6}, throughput=60.0, first_token_latency_ms=200.0),
    Provider("free", is_free=True, throughput=60.0, first_token_latency_ms=350.0),
    Provider("down", status="error", pricing={"input": 0.0, "output": 0.0}, throughput=999.0),
    Provider("staging", status="staging", throughput=999.0),
    Provider("images", task="text-to-image", throughput=999.0),
]


def test_fastest_is_the_highest_throughput_then_the_first_token() -> None:
    assert names(policy_order("fastest", FIGURES)) == ["fast-dear", "prompt", "free", "slow-cheap", "unknown"]


def test_cheapest_is_the_lowest_output_price_then_input_price() -> None:
    assert names(policy_order("cheapest", FIGURES)) == ["free", "slow-cheap", "prompt", "fast-dear", "unknown"]


def test_preferred_is_the_mapping_order_of_the_live_chat_providers() -> None:
    assert names(policy_order("preferred", FIGURES)) == ["slow-cheap", "unknown", "fast-dear", "prompt", "free"]


def test_ties_and_unknowns_keep_the_mapping_order() -> None:
    same = [Provider("a", throughput=50.0), Provider("b"), Provider("c", throughput=50.0), Provider("d")]
    assert names(policy_order("fastest", same)) == ["a", "c", "b", "d"]
    assert names(policy_order("cheapest", same)) == ["a", "b", "c", "d"]
    half = [Provider("in-only", pricing={"input": 0.1}), Provider("out", pricing={"output": 5.0})]
    assert names(policy_order("cheapest", half)) == ["out", "in-only"]


# -------------------------------------------------------------------------------- over the wire
@pytest.mark.parametrize("suffix, expected", [("", "fast-dear"), (":fastest", "fast-dear"), (":cheapest", "free"),
                                              (":preferred", "slow-cheap"), (":down", "down")])
def test_each_policy_picks_its_provider(suffix: str, expected: str) -> None:
    with StubServer({MODEL: FIGURES}) as stub:
        status, provider, body = routed(stub, MODEL + suffix)
    assert (status, provider) == (200, expected)
    assert json.loads(body)["choices"][0]["message"]["content"] == f"Hello from {expected}!"


@pytest.mark.parametrize("failure", [402, 408, 429, 500, 503])
@pytest.mark.parametrize("stream", [False, True])
def test_the_router_fails_over_to_the_policys_next_provider(failure: int, stream: bool) -> None:
    with StubServer({MODEL: FIGURES}) as stub:
        stub.provider(MODEL, "free").update(error_status=failure)
        stub.provider(MODEL, "slow-cheap").update(error_status=failure, error_body="html")
        status, provider, body = routed(stub, MODEL + ":cheapest", stream=stream)
        requests = stub.requests
    assert (status, provider) == (200, "prompt")
    assert b"Hello" in body and (b"data: [DONE]" in body) == stream
    assert len(requests) == 1  # the router's own attempts are not requests to the stand-in


def test_errors_that_are_not_retried_reach_the_client_as_they_are() -> None:
    with StubServer({MODEL: FIGURES}) as stub:
        stub.provider(MODEL, "fast-dear").update(error_status=401)
        unauthorized = routed(stub, MODEL)
        stub.provider(MODEL, "fast-dear").update(error_status=None, supports_tools=False)
        refused = routed(stub, MODEL, tools=[{"type": "function", "function": {"name": "f"}}])
    assert unauthorized[:2] == (401, "fast-dear")
    assert refused[:2] == (400, "fast-dear") and b"tools is not supported" in refused[2]


def test_when_every_provider_fails_the_last_answer_is_sent() -> None:
    providers = [Provider("a", error_status=402), Provider("b", error_status=503, error_message="b is down")]
    with StubServer({MODEL: providers}) as stub:
        status, provider, body = routed(stub, MODEL + ":preferred")
    assert (status, provider, json.loads(body)) == (503, "b", {"error": "b is down"})


def test_a_named_provider_is_not_failed_over() -> None:
    with StubServer({MODEL: [Provider("a", error_status=429), Provider("b")]}) as stub:
        assert routed(stub, MODEL + ":a")[:2] == (429, "a")


def test_router_retry_statuses_decide_what_fails_over() -> None:
    providers = [Provider("a", error_status=402), Provider("b", error_status=400), Provider("c")]
    with StubServer({MODEL: providers}, router_retry_statuses=frozenset()) as stub:
        never = routed(stub, MODEL + ":preferred")
        stub.router_retry_statuses = RETRY_STATUSES | {400}
        also_400 = routed(stub, MODEL + ":preferred")
    assert never[:2] == (402, "a") and also_400[:2] == (200, "c")
    assert {402, 408, 429, 500, 599} <= RETRY_STATUSES and not {400, 401, 403, 404} & RETRY_STATUSES


def test_the_default_models_fail_over_on_the_routers_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library's server-side routing, end to end: novita is the cheapest and answers 402."""
    with StubServer() as stub:
        for name, value in stub.env().items():
            monkeypatch.setenv(name, value)
        cheapest = list(HuggingFaceAPI.create_completion(f"{LLAMA}:cheapest", MESSAGES))
        fastest = list(HuggingFaceAPI.create_completion(LLAMA, MESSAGES, provider="auto"))
        posted = [request.path for request in stub.requests if request.method == "POST"]
    for chunks in (cheapest, fastest):
        assert [c.provider for c in chunks if isinstance(c, ProviderInfo)] == ["together"]
        assert "".join(c for c in chunks if isinstance(c, str)).startswith("Hello! I am Llama 3.3 70B")
    assert posted == ["/v1/chat/completions", "/v1/chat/completions"]
    body: Dict[str, Any] = stub.requests[-1].body
    assert body["model"] == LLAMA
