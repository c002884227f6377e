"""The router's catalogue (``GET /v1/models[/{id}]``) and the refusals it predicts, over 127.0.0.1."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

from hf_textgen.testing import Provider, StubServer

LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
VISION = "Qwen/Qwen2.5-VL-7B-Instruct"
AUTH = {"Authorization": "Bearer hf_test_token", "Content-Type": "application/json"}
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for 127.0.0.1


def get(url: str, timeout: float = 60) -> Tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def post(stub: StubServer, path: str, body: Dict[str, Any]) -> Tuple[int, Any, Dict[str, str]]:
    request = urllib.request.Request(stub.url + path, json.dumps(body).encode(), AUTH, method="POST")
    try:
        with OPENER.open(request, timeout=60) as answer:
            raw, status, headers = answer.read(), answer.status, dict(answer.headers)
    except urllib.error.HTTPError as error:
        with error:
            raw, status, headers = error.read(), error.code, dict(error.headers)
    is_json = headers.get("Content-Type", "").startswith("application/json")
    return status, json.loads(raw) if is_json else raw.decode(), headers


def catalog(stub: StubServer, model: Optional[str] = None) -> Any:
    status, raw = get(f"{stub.url}/v1/models" + (f"/{model}" if model else ""))
    assert status == 200, raw
    return json.loads(raw)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:  # the default models
        yield server


# ---------------------------------------------------------------------------------------- catalogue
def test_the_catalog_lists_each_chat_model_with_every_known_field(stub: StubServer) -> None:
    listing = catalog(stub)
    assert listing["object"] == "list"
    assert [model["id"] for model in listing["data"]] == list(stub.models)
    llama = listing["data"][0]
    assert llama == {
        "id": LLAMA, "object": "model", "created": 1700000000, "owned_by": "meta-llama",
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "providers": [
            {"provider": "novita", "status": "live", "context_length": 131072,
             "pricing": {"input": 0.135, "output": 0.4}, "is_free": False, "supports_tools": True,
             "supports_structured_output": False, "first_token_latency_ms": 742.0, "throughput": 31.6,
             "is_model_author": False},
            {"provider": "together", "status": "live", "context_length": 131072,
             "pricing": {"input": 0.88, "output": 0.88}, "is_free": False, "supports_tools": True,
             "supports_structured_output": True, "first_token_latency_ms": 412.0, "throughput": 88.3,
             "is_model_author": False},
        ],
    }
    assert list(llama["providers"][0]) == [  # the order hub-docs shows
        "provider", "status", "context_length", "pricing", "is_free", "supports_tools",
        "supports_structured_output", "first_token_latency_ms", "throughput", "is_model_author"]
    for model in listing["data"]:
        for entry in model["providers"]:
            assert entry["status"] in ("live", "error")
            assert "context_length" in entry and "supports_tools" in entry  # the defaults give every field


def test_one_model_and_a_vision_model(stub: StubServer) -> None:
    one = catalog(stub, VISION)
    assert one == catalog(stub)["data"][3]
    assert one["architecture"] == {"input_modalities": ["text", "image"], "output_modalities": ["text"]}
    nebius, hyperbolic = one["providers"]
    assert nebius["status"] == "error" and "throughput" not in nebius and "first_token_latency_ms" not in nebius
    assert hyperbolic["provider"] == "hyperbolic" and hyperbolic["throughput"] == 45.2


def test_unknown_figures_are_left_out_and_only_chat_providers_are_listed() -> None:
    models = {
        "org/plain": [Provider("together"), Provider("groq", is_free=True, supports_tools=False)],
        "org/mixed": [Provider("nebius", status="staging"), Provider("fal-ai", task="text-to-image"),
                      Provider("novita", status="error")],
        "org/staging-only": [Provider("nebius", status="staging")],
        "org/unserved": [],
    }
    with StubServer(models) as stub:
        listing = catalog(stub)
        plain, mixed = listing["data"]
        staging_only = get(f"{stub.url}/v1/models/org/staging-only")
    assert [model["id"] for model in listing["data"]] == ["org/plain", "org/mixed"]
    assert plain["providers"] == [{"provider": "together", "status": "live"},
                                  {"provider": "groq", "status": "live", "is_free": True, "supports_tools": False}]
    assert mixed["providers"] == [{"provider": "novita", "status": "error"}]
    assert staging_only[0] == 404


def test_an_unknown_model_is_a_404_in_the_routers_shape(stub: StubServer) -> None:
    status, raw = get(f"{stub.url}/v1/models/nobody/nothing")
    assert status == 404
    assert json.loads(raw) == {"error": {"message": "The model 'nobody/nothing' does not exist",
                                         "type": "invalid_request_error", "param": "model",
                                         "code": "model_not_found"}}


def test_the_catalog_follows_run_time_changes(stub: StubServer) -> None:
    stub.provider(LLAMA, "together").update(throughput=12.5, pricing={"input": 0.1, "output": 0.2}, supports_tools=None)
    together = catalog(stub, LLAMA)["providers"][1]
    assert (together["throughput"], together["pricing"]) == (12.5, {"input": 0.1, "output": 0.2})
    assert "supports_tools" not in together


# ---------------------------------------------------------------------------------------- breaking it
@pytest.mark.parametrize("path", ["/v1/models", f"/v1/models/{LLAMA}"])
def test_catalog_status_and_body_break_both_endpoints(stub: StubServer, path: str) -> None:
    stub.catalog_status = 503
    unavailable = get(stub.url + path)
    stub.catalog_body = b'{"data": [truncated'
    with_bytes = get(stub.url + path)
    stub.catalog_status = None
    invalid = get(stub.url + path)
    stub.catalog_body = None
    healthy = get(stub.url + path)
    assert unavailable[0] == 503
    assert json.loads(unavailable[1]) == {"error": {"message": "Service Unavailable", "type": "server_error"}}
    assert with_bytes == (503, b'{"data": [truncated') and invalid == (200, b'{"data": [truncated')
    assert healthy[0] == 200 and json.loads(healthy[1])
    assert [r.path for r in stub.requests] == [path] * 4  # recorded like every other request
    assert get(f"{stub.url}/api/models/{LLAMA}")[0] == 200  # the Hub is not the catalogue


def test_catalog_delay_holds_the_answer_back(stub: StubServer) -> None:
    stub.catalog_delay = 30.0
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
        get(f"{stub.url}/v1/models", timeout=0.5)
    assert get(f"{stub.url}/api/models/{LLAMA}")[0] == 200  # only the catalogue waits
    stub.catalog_delay = 0.0
    assert get(f"{stub.url}/v1/models")[0] == 200
    assert [r.path for r in stub.requests] == ["/v1/models", f"/api/models/{LLAMA}", "/v1/models"]


@pytest.mark.parametrize("changes", [
    {"pricing": {"input": -1.0}}, {"pricing": {"prompt": 1.0}}, {"pricing": [1.0, 2.0]},
    {"pricing": {"output": float("nan")}}, {"context_length": 0}, {"context_length": 8.5},
    {"throughput": "fast"}, {"first_token_latency_ms": True}, {"supports_tools": "yes"}, {"is_free": 1},
    {"unsupported_shape": "anthropic"},
])
def test_catalog_fields_are_checked(changes: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Provider("together", **changes)
    with pytest.raises(ValueError):
        Provider("together").update(**changes)


# ------------------------------------------------------------------------------- what it predicts
SHAPES = {
    "openai": (400, {"error": {"message": "tools is not supported in this model.", "type": "invalid_request_error",
                               "param": None, "code": None}}),
    "vllm": (400, {"object": "error", "type": "BadRequestError", "param": None, "code": 400,
                   "message": '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'}),
    "tgi": (422, {"error": "Input validation error: tools are not supported by this model", "error_type": "validation"}),
    "novita": (400, {"code": 400, "reason": "INVALID_REQUEST_BODY", "message": "model features function calling not support",
                     "metadata": {}}),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_provider_without_tools_refuses_them_in_its_shape(shape: str) -> None:
    with StubServer({"org/Model": [Provider("together", supports_tools=False, unsupported_shape=shape)]}) as stub:
        model = stub.provider("org/Model", "together").provider_id
        path = "/together/v1/chat/completions"
        with_tools = post(stub, path, {"model": model, "messages": MESSAGES, "tools": TOOLS})
        streamed = post(stub, path, {"model": model, "messages": MESSAGES, "tools": TOOLS, "stream": True})
        tool_choice = post(stub, path, {"model": model, "messages": MESSAGES, "tool_choice": "none"})
        plain = post(stub, path, {"model": model, "messages": MESSAGES, "tools": []})
    assert with_tools[:2] == streamed[:2] == tool_choice[:2] == SHAPES[shape]
    assert with_tools[2]["x-inference-provider"] == "together"
    assert plain[0] == 200 and plain[1]["choices"][0]["message"]["content"] == "Hello from together!"


@pytest.mark.parametrize("response_format, refused", [
    ({"type": "json_object"}, True), (SCHEMA, True), ({"type": "text"}, False), (None, False),
])
def test_a_provider_without_structured_output_refuses_json_formats(response_format: Any, refused: bool) -> None:
    with StubServer({"org/Model": [Provider("groq", supports_structured_output=False)]}) as stub:
        body = {"model": "groq/model", "messages": MESSAGES, "response_format": response_format}
        status, answer, _ = post(stub, "/groq/openai/v1/chat/completions", body)
    if refused:
        kind = response_format["type"]
        assert status == 400 and answer == {"error": {
            "message": f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model.",
            "type": "invalid_request_error", "param": None, "code": None}}
    else:
        assert status == 200


def test_the_other_refusal_shapes_for_response_format() -> None:
    models = {f"org/{shape}": [Provider("together", supports_structured_output=False, unsupported_shape=shape)]
              for shape in ("vllm", "tgi", "novita")}
    with StubServer(models) as stub:
        answers = {shape: post(stub, "/together/v1/chat/completions",
                               {"model": f"together/{shape}", "messages": MESSAGES, "response_format": SCHEMA})[:2]
                   for shape in ("vllm", "tgi", "novita")}
    assert answers["vllm"][0] == 400 and answers["vllm"][1]["message"] == (
        "response_format of type 'json_schema' is not supported by this server")
    assert answers["tgi"] == (422, {"error": "Input validation error: grammar is not supported", "error_type": "validation"})
    assert answers["novita"][1]["message"] == "model features structured outputs not support"


def test_unknown_or_true_capabilities_accept_everything_and_errors_come_first() -> None:
    models = {"org/Model": [Provider("together"), Provider("groq", supports_tools=True, supports_structured_output=True),
                            Provider("novita", supports_tools=False, error_status=402)]}
    body = {"messages": MESSAGES, "tools": TOOLS, "response_format": SCHEMA}
    with StubServer(models) as stub:
        unknown = post(stub, "/together/v1/chat/completions", {**body, "model": "together/model"})
        supported = post(stub, "/groq/openai/v1/chat/completions", {**body, "model": "groq/model"})
        payment = post(stub, "/novita/v3/openai/chat/completions", {**body, "model": "novita/model"})
    assert unknown[0] == supported[0] == 200
    assert payment[0] == 402 and "credits" in payment[1]["error"]
