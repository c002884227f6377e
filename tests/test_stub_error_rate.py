"""The stand-in's ``Provider.error_rate`` (a share of requests answered 429) and its stream counters."""
from __future__ import annotations

import time
from typing import Callable, Iterator, List

import pytest
import requests

from hf_textgen.testing import Provider, StubServer, route_for

MODEL = "org/Model"
AUTH = {"Authorization": "Bearer hf_test_token"}


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def statuses(http: requests.Session, stub: StubServer, name: str, count: int, **body: object) -> List[int]:
    provider_id = stub.provider(MODEL, name).provider_id
    url = stub.url + route_for(name, MODEL)
    payload = {"model": provider_id, "messages": [{"role": "user", "content": "hi"}], **body}
    return [http.post(url, json=payload, headers=AUTH).status_code for _ in range(count)]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_error_rate_answers_that_share_evenly(http: requests.Session) -> None:
    with StubServer({MODEL: [Provider("together", error_rate=0.3, retry_after=2)]}) as stub:
        answered = statuses(http, stub, "together", 20)
        assert answered == [200, 200, 200, 429, 200, 200, 429, 200, 200, 429] * 2
        provider_id = stub.provider(MODEL, "together").provider_id
        reply = http.post(stub.url + route_for("together", MODEL), headers=AUTH,
                          json={"model": provider_id, "messages": [{"role": "user", "content": "hi"}]})
        assert reply.status_code == 200  # the 21st, like the 1st


def test_error_rate_status_retry_after_and_error_status_first(http: requests.Session) -> None:
    with StubServer({MODEL: [Provider("together", error_rate=1.0, error_rate_status=503, retry_after=7)]}) as stub:
        provider_id = stub.provider(MODEL, "together").provider_id
        reply = http.post(stub.url + route_for("together", MODEL), headers=AUTH,
                          json={"model": provider_id, "messages": [{"role": "user", "content": "hi"}]})
        assert (reply.status_code, reply.headers["Retry-After"]) == (503, "7")
        stub.provider(MODEL, "together").update(error_status=402)
        assert statuses(http, stub, "together", 2) == [402, 402]


def test_the_count_survives_update_and_is_per_provider(http: requests.Session) -> None:
    with StubServer({MODEL: [Provider("together", error_rate=0.5), Provider("nebius", error_rate=0.5)]}) as stub:
        assert statuses(http, stub, "together", 1) == [200]
        stub.provider(MODEL, "together").update(text="changed")
        assert statuses(http, stub, "together", 1) == [429]
        assert statuses(http, stub, "nebius", 2) == [200, 429]


def test_server_side_routing_counts_each_provider_it_tries(http: requests.Session) -> None:
    providers = [Provider("together", error_rate=0.5), Provider("nebius")]
    with StubServer({MODEL: providers}) as stub:
        url = stub.url + "/v1/chat/completions"
        body = {"model": f"{MODEL}:preferred", "messages": [{"role": "user", "content": "hi"}]}
        answered = [http.post(url, json=body, headers=AUTH).headers["x-inference-provider"] for _ in range(4)]
        assert answered == ["together", "nebius", "together", "nebius"]


@pytest.mark.parametrize("bad", [{"error_rate": -0.1}, {"error_rate": 1.5}, {"error_rate_status": 200}, {"error_rate_status": "429"}])
def test_bad_error_rate_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="error_rate"):
        Provider("together", **bad)


def test_stream_counters_see_a_client_close_a_stream(http: requests.Session) -> None:
    slow = Provider("together", chunks=[f"w{n} " for n in range(400)], delay=0.01)
    with StubServer({MODEL: [slow]}) as stub:
        assert (stub.streams_open, stub.streams_abandoned) == (0, 0)
        answer = http.post(stub.url + route_for("together", MODEL), headers=AUTH, stream=True,
                           json={"model": slow.provider_id or stub.provider(MODEL, "together").provider_id,
                                 "messages": [{"role": "user", "content": "hi"}], "stream": True})
        next(answer.iter_content(64))
        assert stub.streams_open == 1
        answer.close()  # closes the connection mid-stream
        wait_until(lambda: stub.streams_open == 0, "the server to notice the closed stream")
        assert stub.streams_abandoned == 1
        assert statuses(http, stub, "together", 1, stream=False) == [200]
        assert stub.streams_abandoned == 1
