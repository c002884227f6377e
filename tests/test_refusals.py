"""The 400/422 rule: a provider refusing a feature the request carried may be left for the next
one; any other bad request still fails at once. Real bodies (pure), then the stand-in's four
refusal shapes end to end, with the catalogue down so that only the answer can tell."""
from __future__ import annotations

import json
from typing import Any, Dict, Iterator, Optional

import pytest

from hf_textgen import Client, ResponseStatusError
from hf_textgen.failover import allows_failover
from hf_textgen.refusals import refused_feature
from hf_textgen.testing import UNSUPPORTED_SHAPES, Provider, StubServer
from hf_textgen.transport.statuses import status_error
from hf_textgen.types import PreparedRequest

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
PLAIN: Dict[str, Any] = {"messages": MESSAGES, "max_tokens": 100, "stream": True}
WITH_TOOLS = {**PLAIN, "tools": TOOLS}
WITH_SCHEMA = {**PLAIN, "response_format": SCHEMA}
WITH_JSON = {**PLAIN, "response_format": {"type": "json_object"}}
WITH_TEXT_FORMAT = {**PLAIN, "response_format": {"type": "text"}}
WITH_STORE = {**PLAIN, "store": True}


def error(status: int, body: Any) -> ResponseStatusError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return status_error(status, "Bad Request", {"Content-Type": "application/json"}, raw, "provider 'p', model 'm'", "p")


def openai(message: str, param: Optional[str] = None) -> Dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}


OPENAI_SCHEMA = openai("Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.", "response_format")
OPENAI_TOOLS = openai("tools is not supported in this model.", "tools")
VLLM_TOOLS = {"object": "error", "message": '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', "type": "BadRequestError", "code": 400}
TGI_GRAMMAR_INVALID = {"error": "Input validation error: grammar is not valid: unknown keyword `minLen`", "error_type": "validation"}
TGI_UNKNOWN_VARIANT = {"error": "Failed to deserialize the JSON body into the target type: response_format: unknown variant `json_schema`, expected `json` or `regex` at line 1 column 98", "error_type": "validation"}
NOVITA_TOOLS = {"code": 400, "reason": "INVALID_REQUEST_BODY", "message": "model features function calling not support", "metadata": {}}
GROQ_STORE = openai("property 'store' is unsupported, please remove it", None)
OLLAMA_TOOLS = {"error": "registry.ollama.ai/library/gemma:2b does not support tools"}
ROUTER_ACCOUNT = openai("The requested model 'org/model' is not supported by any provider you have enabled.")
OPENAI_MAX_TOKENS = openai("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "max_tokens")
BAD_MAX_TOKENS = openai("max_tokens must be at least 1, got -5.", "max_tokens")
CONTEXT = openai("This model's maximum context length is 8192 tokens. However, you requested 9000 tokens. Please reduce the length of the messages.", "messages")
INVALID_SCHEMA = openai("Invalid schema for response_format 'answer': In context=('properties', 'name'), 'minLength' is not supported.", "response_format")


@pytest.mark.parametrize(
    "status, body, request_body, feature",
    [
        (400, OPENAI_SCHEMA, WITH_SCHEMA, "response_format"),
        (400, OPENAI_SCHEMA, WITH_JSON, "response_format"),
        (400, OPENAI_TOOLS, WITH_TOOLS, "tools"),
        (400, VLLM_TOOLS, WITH_TOOLS, "tools"),
        (422, TGI_UNKNOWN_VARIANT, WITH_SCHEMA, "response_format"),
        (400, NOVITA_TOOLS, WITH_TOOLS, "tools"),
        (400, GROQ_STORE, WITH_STORE, "store"),
        (400, OLLAMA_TOOLS, WITH_TOOLS, "tools"),
        (400, OPENAI_MAX_TOKENS, PLAIN, "max_tokens"),
        (400, {"error": "Input validation error: grammar is not supported"}, WITH_JSON, "response_format"),
        (400, {"code": 400, "message": "model features structured outputs not support"}, WITH_SCHEMA, "response_format"),
    ],
)
def test_a_refused_feature_the_request_carried_moves_on(status: int, body: Any, request_body: Dict[str, Any], feature: str) -> None:
    refusal = error(status, body)
    assert refused_feature(refusal, request_body) == feature
    assert allows_failover(refusal, request("p", request_body))


@pytest.mark.parametrize(
    "status, body, request_body",
    [
        (400, OPENAI_SCHEMA, PLAIN),  # the request did not carry response_format: not this provider's lack
        (400, OPENAI_SCHEMA, WITH_TEXT_FORMAT),  # a text response_format is not structured output
        (400, OPENAI_TOOLS, WITH_SCHEMA),
        (400, VLLM_TOOLS, PLAIN),
        (400, NOVITA_TOOLS, WITH_SCHEMA),
        (400, GROQ_STORE, PLAIN),  # 'store' was not sent
        (422, TGI_GRAMMAR_INVALID, WITH_SCHEMA),  # the schema is wrong: every provider would refuse it
        (400, INVALID_SCHEMA, WITH_SCHEMA),
        (400, ROUTER_ACCOUNT, WITH_TOOLS),  # account-wide: no provider of yours would do better
        (400, BAD_MAX_TOKENS, WITH_TOOLS),
        (400, CONTEXT, WITH_TOOLS),
        (400, openai("Invalid value for 'temperature': must be at most 2."), WITH_TOOLS),
        (401, OPENAI_TOOLS, WITH_TOOLS),  # only 400 and 422
        (403, OPENAI_TOOLS, PLAIN),
        (400, b"<html><title>400 Bad Request</title></html>", WITH_TOOLS),
    ],
)
def test_any_other_bad_request_fails_at_once(status: int, body: Any, request_body: Dict[str, Any]) -> None:
    refusal = error(status, body)
    assert refused_feature(refusal, request_body) is None
    assert allows_failover(refusal, request("p", request_body)) is (status == 403)  # 403 moves on for its own reason


def test_the_param_of_an_openai_error_is_kept() -> None:
    assert error(400, OPENAI_SCHEMA).param == "response_format"
    assert error(400, NOVITA_TOOLS).param is None and error(400, b"not json").param is None


def request(provider: str, body: Dict[str, Any]) -> PreparedRequest:
    return PreparedRequest(url="http://127.0.0.1/x", headers={}, body=body, provider=provider, model="org/model")


# ------------------------------------------------------------------------------------- stand-in
MODEL = "org/model"


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer({MODEL: [Provider("first"), Provider("second", text="from second")]}) as server:
        server.catalog_status = 503  # the catalogue is down: only the refusal can tell
        yield server


def client(stub: StubServer) -> Client:
    return Client(api_key="hf_test_token", hub_url=stub.url, router_url=stub.url)


def posts(stub: StubServer) -> list:
    return [r.path.split("/")[1] for r in stub.requests if r.method == "POST"]


@pytest.mark.parametrize("shape", UNSUPPORTED_SHAPES)
@pytest.mark.parametrize("feature, params", [("supports_tools", {"tools": TOOLS}), ("supports_structured_output", {"response_format": SCHEMA})])
def test_every_refusal_shape_of_the_stand_in_fails_over(stub: StubServer, shape: str, feature: str, params: Dict[str, Any]) -> None:
    stub.provider(MODEL, "first").update(unsupported_shape=shape, **{feature: False})
    result = client(stub).complete(MODEL, MESSAGES, **params)
    assert (result.provider, result.text) == ("second", "from second")
    [attempt] = result.attempts
    assert (attempt.provider, attempt.status, attempt.skipped) == ("first", 422 if shape == "tgi" else 400, False)
    assert posts(stub) == ["first", "second"]


def test_a_plain_400_still_fails_at_once(stub: StubServer) -> None:
    stub.provider(MODEL, "first").update(error_status=400, error_body="json_object", error_message="max_tokens is too large: 999999")
    with pytest.raises(ResponseStatusError) as raised:
        client(stub).complete(MODEL, MESSAGES, tools=TOOLS)
    assert raised.value.status_code == 400 and "max_tokens is too large" in str(raised.value)
    assert posts(stub) == ["first"]
