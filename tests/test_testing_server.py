"""The offline Hub + router stub (hf_textgen.testing), tested over real HTTP on 127.0.0.1."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Iterator, List, Optional

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from hf_textgen.testing import Provider, StubServer, main, route_for, split_text

LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
MESSAGES = [{"role": "user", "content": "Say hello"}]
AUTH = {"Authorization": "Bearer hf_test_token"}


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # no proxy for 127.0.0.1
        yield session


@pytest.fixture
def stub() -> Iterator[StubServer]:
    models = {LLAMA: [Provider("novita", error_status=402), Provider("together")]}
    with StubServer(models) as server:
        yield server


def chat(http: requests.Session, stub: StubServer, path: str, model: str, lazy: bool = False,
         **body: Any) -> requests.Response:
    """POST a chat request; ``lazy``: do not read the body yet."""
    json_body = {"model": model, "messages": MESSAGES, **body}
    return http.post(stub.url + path, json=json_body, headers=AUTH, stream=lazy)


def provider_chat(http: requests.Session, stub: StubServer, model: str, name: str, lazy: bool = False,
                  **body: Any) -> requests.Response:
    """POST to the provider's own route with its providerId."""
    return chat(http, stub, route_for(name, model), str(stub.provider(model, name).provider_id), lazy, **body)


def sse_payloads(text: str) -> List[Any]:
    """The data of each SSE event ("[DONE]" kept as a string)."""
    datas = [line[len("data: "):] for event in text.split("\n\n") for line in event.split("\n") if line.startswith("data: ")]
    return [data if data == "[DONE]" else json.loads(data) for data in datas]


def deltas(payloads: List[Any], key: str = "content") -> List[str]:
    return [p["choices"][0]["delta"][key] for p in payloads
            if isinstance(p, dict) and p.get("choices") and key in p["choices"][0]["delta"]]


# ------------------------------------------------------------------------------------------------- hub
@pytest.mark.parametrize("shape", ["dict", "list"])
def test_mapping_in_both_shapes_keeps_provider_order(http: requests.Session, shape: str) -> None:
    providers = [Provider("together"), Provider("hf-inference", status="staging"), Provider("groq", task="text-generation")]
    with StubServer({LLAMA: providers}, mapping_shape=shape) as stub:
        answer = http.get(f"{stub.url}/api/models/{LLAMA}", params={"expand[]": "inferenceProviderMapping"}).json()
    mapping = answer["inferenceProviderMapping"]
    assert answer["id"] == LLAMA
    if shape == "dict":
        assert list(mapping) == ["together", "hf-inference", "groq"]
        assert mapping["together"] == {"providerId": "together/llama-3.3-70b-instruct", "status": "live", "task": "conversational"}
        assert mapping["hf-inference"]["providerId"] == LLAMA
    else:
        assert [entry["provider"] for entry in mapping] == ["together", "hf-inference", "groq"]
        assert mapping[1] == {"provider": "hf-inference", "providerId": LLAMA, "status": "staging", "task": "conversational"}
        assert mapping[2]["task"] == "text-generation"


def test_unknown_model_is_404_repository_not_found(http: requests.Session, stub: StubServer) -> None:
    response = http.get(f"{stub.url}/api/models/nobody/nothing")
    assert response.status_code == 404
    assert response.json() == {"error": "Repository Not Found"}


def test_hub_refuses_a_bad_token_but_not_anonymous_calls(http: requests.Session, stub: StubServer) -> None:
    assert http.get(f"{stub.url}/api/models/{LLAMA}").status_code == 200
    assert http.get(f"{stub.url}/api/models/{LLAMA}", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_listing_pages_with_link_headers(http: requests.Session) -> None:
    models = {f"org/model-{n}": [Provider("together")] for n in range(5)}
    models["org/unserved"] = []
    query = "inference_provider=all&pipeline_tag=text-generation&expand[]=inferenceProviderMapping"
    with StubServer(models, page_size=2) as stub:
        url: Optional[str] = f"{stub.url}/api/models?{query}"
        pages: List[List[str]] = []
        while url:
            response = http.get(url)
            pages.append([item["id"] for item in response.json()])
            url = response.links.get("next", {}).get("url")
            assert url is None or url.startswith(stub.url + "/api/models?") and "pipeline_tag=text-generation" in url
        limited = http.get(f"{stub.url}/api/models", params={"limit": 1})
        by_provider = http.get(f"{stub.url}/api/models", params={"inference_provider": "groq"})
    assert pages == [["org/model-0", "org/model-1"], ["org/model-2", "org/model-3"], ["org/model-4"]]
    assert [item["id"] for item in limited.json()] == ["org/model-0"] and "next" in limited.links
    assert by_provider.json() == []
    assert pages[0] and "inferenceProviderMapping" in limited.json()[0]


def test_hub_answers_carry_the_pipeline_tag(http: requests.Session) -> None:
    vision = "Qwen/Qwen2.5-VL-7B-Instruct"
    with StubServer() as stub:  # the default models: one of them takes images
        llama = http.get(f"{stub.url}/api/models/{LLAMA}", params={"expand[]": "pipelineTag"}).json()
        qwen_vl = http.get(f"{stub.url}/api/models/{vision}").json()
        listed = http.get(f"{stub.url}/api/models", params={"inference_provider": "all"}).json()
        vlms = http.get(f"{stub.url}/api/models", params={"pipeline_tag": "image-text-to-text"}).json()
        stub.set_model("org/now-vision", [Provider("together", vision=True)])
        updated = http.get(f"{stub.url}/api/models/org/now-vision").json()
    assert (llama["pipeline_tag"], qwen_vl["pipeline_tag"]) == ("text-generation", "image-text-to-text")
    assert {item["id"]: item["pipeline_tag"] for item in listed}[vision] == "image-text-to-text"
    assert all(item["pipeline_tag"] == "text-generation" for item in listed if item["id"] != vision)
    assert [item["id"] for item in vlms] == [vision]
    assert updated["pipeline_tag"] == "image-text-to-text"


def test_openai_models_list(http: requests.Session, stub: StubServer) -> None:
    data = http.get(f"{stub.url}/v1/models").json()["data"]
    assert data[0]["id"] == LLAMA
    assert [p["provider"] for p in data[0]["providers"]] == ["novita", "together"]


# ---------------------------------------------------------------------------------------------- router
ROUTE_TABLE = {
    "novita": "/novita/v3/openai/chat/completions",
    "fireworks-ai": "/fireworks-ai/inference/v1/chat/completions",
    "groq": "/groq/openai/v1/chat/completions",
    "cohere": "/cohere/compatibility/v1/chat/completions",
    "deepinfra": "/deepinfra/v1/openai/chat/completions",
    "zai-org": "/zai-org/api/paas/v4/chat/completions",
    "hf-inference": "/hf-inference/models/org/Model/v1/chat/completions",
    "together": "/together/v1/chat/completions",
    "brand-new-provider": "/brand-new-provider/v1/chat/completions",
}


@pytest.mark.parametrize("name", sorted(ROUTE_TABLE))
def test_every_provider_answers_on_its_route_only(http: requests.Session, name: str) -> None:
    with StubServer({"org/Model": [Provider(name)]}) as stub:
        provider_id = str(stub.provider("org/Model", name).provider_id)
        assert route_for(name, "org/Model") == ROUTE_TABLE[name]
        ok = chat(http, stub, ROUTE_TABLE[name], provider_id)
        wrong_route = chat(http, stub, f"/{name}/chat/completions", provider_id)
        wrong_model = chat(http, stub, ROUTE_TABLE[name], "org/Other" if name == "hf-inference" else "org/Model")
    assert ok.status_code == 200, ok.text
    assert ok.headers["x-inference-provider"] == name
    assert ok.json()["choices"][0]["message"]["content"] == f"Hello from {name}!"
    assert ok.json()["model"] == provider_id
    assert wrong_route.status_code == 404 and "error" in wrong_route.json()
    assert wrong_model.status_code == 400 and provider_id in wrong_model.json()["error"]


def test_router_requires_an_hf_token_unless_told_otherwise(http: requests.Session) -> None:
    body = {"model": "together/model", "messages": MESSAGES}
    with StubServer({"org/Model": [Provider("together")]}) as stub:
        url = stub.url + "/together/v1/chat/completions"
        missing = http.post(url, json=body)
        not_hf = http.post(url, json=body, headers={"Authorization": "Bearer sk-123"})
    with StubServer({"org/Model": [Provider("together")]}, require_token=False) as open_stub:
        anonymous = http.post(open_stub.url + "/together/v1/chat/completions", json=body)
    with StubServer({"org/Model": [Provider("together")]}, token="hf_exact") as strict:
        url = strict.url + "/together/v1/chat/completions"
        statuses = [http.post(url, json=body, headers={"Authorization": f"Bearer {t}"}).status_code
                    for t in ("hf_other", "hf_exact")]
    assert (missing.status_code, not_hf.status_code, anonymous.status_code) == (401, 401, 200)
    assert statuses == [401, 200]
    assert missing.json() == {"error": "Invalid credentials in Authorization header"}


def test_body_without_messages_is_400(http: requests.Session, stub: StubServer) -> None:
    response = http.post(stub.url + "/together/v1/chat/completions", data=b"not json", headers=AUTH)
    assert response.status_code == 400


@pytest.mark.parametrize("suffix", ["", ":fastest", ":cheapest", ":preferred", ":together"])
def test_server_side_routing_names_the_provider_that_answered(http: requests.Session, stub: StubServer, suffix: str) -> None:
    response = chat(http, stub, "/v1/chat/completions", LLAMA + suffix)  # novita's 402 fails over on the router
    assert response.headers["x-inference-provider"] == "together" and response.status_code == 200


def test_server_side_routing_to_a_named_provider_does_not_fail_over(http: requests.Session, stub: StubServer) -> None:
    response = chat(http, stub, "/v1/chat/completions", LLAMA + ":novita")
    assert response.headers["x-inference-provider"] == "novita" and response.status_code == 402


def test_server_side_routing_skips_providers_that_are_not_live(http: requests.Session) -> None:
    providers = [Provider("nebius", status="error"), Provider("groq", task="text-to-image"), Provider("together")]
    with StubServer({LLAMA: providers}) as stub:
        picked = chat(http, stub, "/v1/chat/completions", LLAMA)
        unknown = chat(http, stub, "/v1/chat/completions", "nobody/nothing")
        absent = chat(http, stub, "/v1/chat/completions", LLAMA + ":sambanova")
    assert picked.headers["x-inference-provider"] == "together" and picked.status_code == 200
    assert unknown.status_code == 404 and "nobody/nothing" in unknown.json()["error"]["message"]
    assert absent.status_code == 400


# ---------------------------------------------------------------------------------------------- answers
def test_stream_events_roles_deltas_finish_usage_done(http: requests.Session, stub: StubServer) -> None:
    with provider_chat(http, stub, LLAMA, "together", stream=True) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Transfer-Encoding"] == "chunked"
        payloads = sse_payloads(response.text)
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert deltas(payloads)[1:] == ["Hello", " from", " together", "!"]
    assert payloads[-3]["choices"][0]["finish_reason"] == "stop"
    assert payloads[-2]["choices"] == [] and payloads[-2]["usage"]["completion_tokens"] == 4
    assert payloads[-1] == "[DONE]"
    assert all(p["object"] == "chat.completion.chunk" for p in payloads[:-1])


def test_usage_only_when_configured_or_asked(http: requests.Session, stub: StubServer) -> None:
    stub.provider(LLAMA, "together").update(usage=False)
    without = sse_payloads(provider_chat(http, stub, LLAMA, "together", stream=True).text)
    asked = sse_payloads(provider_chat(http, stub, LLAMA, "together", stream=True,
                                       stream_options={"include_usage": True}).text)
    plain = provider_chat(http, stub, LLAMA, "together").json()
    assert not any("usage" in p for p in without[:-1])
    assert asked[-2]["usage"]["prompt_tokens"] == 2
    assert "usage" not in plain


def test_close_framing_ends_the_body_with_the_connection(http: requests.Session, stub: StubServer) -> None:
    stub.provider(LLAMA, "together").update(framing="close", chunks=["a", "b"])
    with provider_chat(http, stub, LLAMA, "together", stream=True) as response:
        assert response.headers["Connection"] == "close"
        assert "Content-Length" not in response.headers and "Transfer-Encoding" not in response.headers
        payloads = sse_payloads(response.text)
    assert deltas(payloads) == ["", "a", "b"] and payloads[-1] == "[DONE]"


def test_reasoning_and_tool_calls(http: requests.Session) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    model = "deepseek-ai/DeepSeek-R1"
    with StubServer({model: [Provider("fireworks-ai", reasoning=["Think", "ing"], text="", tool_calls=[call])]}) as stub:
        payloads = sse_payloads(provider_chat(http, stub, model, "fireworks-ai", stream=True).text)
        message = provider_chat(http, stub, model, "fireworks-ai").json()["choices"][0]
    assert deltas(payloads, "reasoning_content") == ["Think", "ing"]
    streamed = [p["choices"][0]["delta"]["tool_calls"][0] for p in payloads[1:-3]
                if "tool_calls" in p["choices"][0]["delta"]]
    assert streamed[0]["function"] == {"name": "get_weather", "arguments": ""} and streamed[0]["id"] == "call_stub_0"
    assert streamed[1] == {"index": 0, "function": {"arguments": '{"city": "Paris"}'}}
    assert payloads[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["reasoning_content"] == "Thinking" and message["message"]["content"] is None
    assert message["message"]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'


@pytest.mark.parametrize("style, check", [
    ("json", lambda r: r.json() == {"error": "Slow down"}),
    ("json_object", lambda r: r.json()["error"]["message"] == "Slow down"),
    ("html", lambda r: r.headers["Content-Type"].startswith("text/html") and "<p>Slow down</p>" in r.text),
    ("text", lambda r: r.text == "Slow down"),
    ("header", lambda r: r.headers["X-Error-Message"] == "Slow down" and r.content == b""),
])
def test_error_statuses_and_bodies(http: requests.Session, stub: StubServer, style: str, check: Any) -> None:
    stub.provider(LLAMA, "together").update(error_status=429, error_message="Slow down", error_body=style, retry_after=7)
    response = provider_chat(http, stub, LLAMA, "together", stream=True)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert check(response)


def test_default_error_messages(http: requests.Session, stub: StubServer) -> None:
    response = provider_chat(http, stub, LLAMA, "novita")
    assert response.status_code == 402 and "credits" in response.json()["error"]
    stub.provider(LLAMA, "novita").update(error_status=503, error_body="html")
    assert "Service Unavailable" in provider_chat(http, stub, LLAMA, "novita").text


@pytest.mark.parametrize("frame", ["data", "event"])
def test_error_in_stream(http: requests.Session, stub: StubServer, frame: str) -> None:
    stub.provider(LLAMA, "together").update(error_in_stream=2, error_frame=frame, error_message="boom")
    text = provider_chat(http, stub, LLAMA, "together", stream=True).text
    assert deltas(sse_payloads(text)) == ["", "Hello", " from"]
    assert sse_payloads(text)[-1] == {"error": {"message": "boom", "type": "server_error"}}
    assert ("event: error\n" in text) == (frame == "event") and "[DONE]" not in text
    assert provider_chat(http, stub, LLAMA, "together").json()["error"]["message"] == "boom"


def test_cut_after_breaks_a_chunked_stream(http: requests.Session, stub: StubServer) -> None:
    stub.provider(LLAMA, "together").update(cut_after=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        provider_chat(http, stub, LLAMA, "together", stream=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        provider_chat(http, stub, LLAMA, "together")


def test_cut_after_ends_a_close_framed_stream_without_done(http: requests.Session, stub: StubServer) -> None:
    stub.provider(LLAMA, "together").update(cut_after=3, framing="close")
    payloads = sse_payloads(provider_chat(http, stub, LLAMA, "together", stream=True).text)
    assert deltas(payloads) == ["", "Hello", " from", " together"] and "[DONE]" not in payloads


# ---------------------------------------------------------------------------------- configuration, records
def test_requests_are_recorded_with_the_token_redacted(http: requests.Session, stub: StubServer) -> None:
    http.get(f"{stub.url}/api/models/{LLAMA}?expand[]=inferenceProviderMapping")
    provider_chat(http, stub, LLAMA, "together")
    first, second = stub.requests
    assert (first.method, first.path, first.body) == ("GET", f"/api/models/{LLAMA}?expand%5B%5D=inferenceProviderMapping", b"")
    assert second.path == "/together/v1/chat/completions"
    assert second.headers["Authorization"] == "Bearer ***"
    assert second.body == {"model": "together/llama-3.3-70b-instruct", "messages": MESSAGES}
    assert "hf_test_token" not in repr(stub.requests)
    stub.clear_requests()
    assert stub.requests == []


def test_runtime_configuration(http: requests.Session, stub: StubServer) -> None:
    stub.set_model("org/New", [Provider("groq", provider_id="new-model", chunks=["x ", " y"])])
    stub.provider(LLAMA, "together").update(status="error")
    new = http.get(f"{stub.url}/api/models/org/New").json()
    answer = chat(http, stub, "/groq/openai/v1/chat/completions", "new-model").json()
    llama = http.get(f"{stub.url}/api/models/{LLAMA}").json()["inferenceProviderMapping"]
    stub.remove_model("org/New")
    assert new["inferenceProviderMapping"]["groq"]["providerId"] == "new-model"
    assert answer["choices"][0]["message"]["content"] == "x  y"
    assert llama["together"]["status"] == "error"
    assert http.get(f"{stub.url}/api/models/org/New").status_code == 404
    with pytest.raises(KeyError):
        stub.provider(LLAMA, "groq")


def test_provider_validation() -> None:
    with pytest.raises(TypeError):
        Provider("together").update(colour="red")
    with pytest.raises(ValueError):
        Provider("together").update(framing="carrier-pigeon")
    with pytest.raises(ValueError):
        Provider("a/b")
    with pytest.raises(ValueError):
        Provider("together", vision="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        StubServer({}, mapping_shape="tuple")


@given(st.text())
def test_split_text_joins_back_exactly(text: str) -> None:
    pieces = split_text(text)
    assert "".join(pieces) == text and all(pieces)


def test_split_text_keeps_spaces_on_the_following_word() -> None:
    assert split_text("Hello from together!") == ["Hello", " from", " together", "!"]


# ----------------------------------------------------------------------------------------------- lifecycle
def test_stop_is_prompt_during_a_slow_stream(http: requests.Session, stub: StubServer) -> None:
    stub.provider(LLAMA, "together").update(delay=30)
    with provider_chat(http, stub, LLAMA, "together", lazy=True, stream=True) as response:
        lines = response.iter_lines()
        assert b'"role": "assistant"' in next(lines)  # the first event arrived, flushed
        started = time.monotonic()
        stub.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            list(lines)


def test_stop_closes_idle_keep_alive_connections(http: requests.Session, stub: StubServer) -> None:
    http.get(f"{stub.url}/api/models")
    started = time.monotonic()
    stub.stop()
    stub.stop()  # idempotent
    assert time.monotonic() - started < 2
    with pytest.raises(RuntimeError):
        stub.url


def test_start_stop_without_context_manager_and_env(http: requests.Session) -> None:
    stub = StubServer().start()
    try:
        assert stub.hub_url == stub.router_url == stub.url == f"http://127.0.0.1:{stub.port}"
        assert stub.env() == {"HF_ENDPOINT": stub.url, "HF_TEXTGEN_ROUTER_URL": stub.url, "HF_TOKEN": "hf_stub_token"}
        assert http.get(f"{stub.url}/api/models/deepseek-ai/DeepSeek-R1").status_code == 200
    finally:
        stub.stop()


def test_hf_stub_fixture_serves_the_default_models_fast(hf_stub: StubServer, http: requests.Session) -> None:
    assert os.environ["HF_ENDPOINT"] == os.environ["HF_TEXTGEN_ROUTER_URL"] == hf_stub.url
    assert os.environ["HF_TOKEN"] == "hf_stub_token"
    assert list(hf_stub.models) == [LLAMA, "Qwen/Qwen2.5-72B-Instruct", "deepseek-ai/DeepSeek-R1", "Qwen/Qwen2.5-VL-7B-Instruct"]
    assert provider_chat(http, hf_stub, LLAMA, "novita").status_code == 402
    started = time.monotonic()
    payloads = sse_payloads(provider_chat(http, hf_stub, LLAMA, "together", stream=True).text)
    assert time.monotonic() - started < 1 and len(deltas(payloads)) > 20
    assert deltas(sse_payloads(provider_chat(http, hf_stub, "deepseek-ai/DeepSeek-R1", "fireworks-ai", stream=True).text),
                  "reasoning_content")


# --------------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(http: requests.Session, stop_signal: int) -> None:
    command = [sys.executable, "-m", "hf_textgen.testing", "--mapping-shape", "list"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found, line
        url = found.group(0)
        assert f"HF_ENDPOINT={url}" in line and "HF_TOKEN=hf_stub_token" in line
        mapping = http.get(f"{url}/api/models/{LLAMA}").json()["inferenceProviderMapping"]
        assert [entry["provider"] for entry in mapping] == ["novita", "together"]
        process.send_signal(stop_signal)
        assert process.wait(timeout=5) == 0
        assert process.stderr.read() == ""


def test_cli_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["--port", str(busy.getsockname()[1])]) == 1
    assert "cannot listen" in capsys.readouterr().err
