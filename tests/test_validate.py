"""Every parameter checked before anything is sent: a table of good and bad values per parameter.

A bad value raises ``ConfigurationError`` (also a ``ValueError``) naming the parameter and what was
received, never an ``AttributeError`` or ``TypeError`` from inside, and no request is made.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
import responses

from hf_textgen import Client, HuggingFaceAPI
from hf_textgen.errors import ConfigurationError
from hf_textgen.validate import PARAMETERS

from mocked import isolated, mock, backoffs  # noqa: F401  (fixtures)
from mocked import MESSAGES, MODEL, TOKEN, answer_ok, chat_url, last_post_body, mapping_of, serve_mapping

TOOL = {"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}
CALL = {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}

# parameter -> (good values, bad values); each bad value must be refused naming the parameter.
TABLE: Dict[str, "tuple[List[Any], List[Any]]"] = {
    "model": ([MODEL, "llama-3.3-70b", None], [5, b"org/model", ["org/model"], "../x", "a?b", "a/b/c"]),
    "stream": ([True, False], ["no", 1, None]),
    "max_tokens": ([1, 4096, None], [0, -1, 2.5, "100", True]),
    "max_inputs_lenght": ([1, 10000, None], [0, -5, "10", 1.5]),
    "temperature": ([0, 0.7, 2], [-0.1, 2.5, "hot", float("nan"), True]),
    "top_p": ([0, 0.9, 1], [1.5, -1, "x"]),
    "stop": (["\n", ["a", "b"]], [5, ["a", 5], {"a": 1}]),
    "seed": ([0, 42, -1], [1.5, "42", True]),
    "tools": ([[TOOL]], [TOOL, ["look"], [{"type": "function"}], "tools"]),
    "tool_choice": (["auto", "none", "required", {"type": "function", "function": {"name": "look"}}], ["always", {"type": "function"}, 1]),
    "response_format": ([{"type": "json_object"}, {"type": "text"}, {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}],
                        ["json", {"type": "yaml"}, {"type": "json_schema"}]),
    "extra_body": ([{"top_k": 5}, None], ["top_k=5", [("top_k", 5)]]),
    "headers": ([{"X-Trace": "1"}, None], [{"X-Trace": 1}, {"X-Trace": "a\r\nb"}, {"Authorization": "Bearer x"}, "X-Trace: 1", {"bad name": "1"}]),
    "media": (["https://example.invalid/cat.png", b"\x89PNG....", ("data:image/png;base64,AA==", "a.png"), ["https://example.invalid/a.png"]],
              [5, [5], ("a", "b", "c"), {"url": "x"}]),
    "provider": (["together", ["together"], None], [5, ["together", 5], "Bad Name", "../x"]),
    "logprobs": ([True, False], ["yes", 1]),
    "top_logprobs": ([0, 5], [21, -1, "5"]),
    "n": ([1], [2, 0, "1"]),
    "frequency_penalty": ([0, -2, 2], [3, "0"]),
    "presence_penalty": ([0.5], [-3]),
    "max_completion_tokens": ([10], [0, "10"]),
    "user": (["someone"], [5]),
    "parallel_tool_calls": ([True], ["true"]),
    "max_event_bytes": ([1024], [0, "big", 1.5]),
    "timeout": ([5, (2, 30)], [-1, "5", (1, 2, 3), 0]),
    "api_base": (["http://127.0.0.1:9/v1"], [5, "ftp://x/v1", "not a url"]),
    "api_key": ([TOKEN], [5]),
}
MESSAGE_TABLE = (
    [
        [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
        [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "c1", "content": "42"}],
    ],
    [
        None, [], "Hi", {"role": "user", "content": "Hi"}, ["Hi"], [{"content": "Hi"}], [{"role": "robot", "content": "Hi"}],
        [{"role": "user", "content": None}], [{"role": "user", "content": 5}], [{"role": "user", "content": ["text"]}],
        [{"role": "tool", "content": "42"}], [{"role": "assistant", "content": "x", "tool_calls": "look"}],
    ],
)


def call(name: str, value: Any) -> List[Any]:
    """A non-streamed call with ``name=value`` (the other parameters good)."""
    arguments: Dict[str, Any] = {"api_key": TOKEN, "stream": False, "provider": "together"}
    if name == "model":
        return list(HuggingFaceAPI.create_completion(value, MESSAGES, **arguments))
    if name in ("api_base", "provider"):
        arguments.pop("provider")
    if name == "api_base":
        arguments["api_base"] = value
    else:
        arguments[name] = value
    return list(HuggingFaceAPI.create_completion(MODEL, MESSAGES, **arguments))


@pytest.mark.parametrize("name, value", [(name, value) for name, (_, bad) in TABLE.items() for value in bad], ids=repr)
def test_a_bad_value_is_refused_naming_the_parameter_before_anything_is_sent(mock: responses.RequestsMock, name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as raised:
        call(name, value)
    shown = {"max_inputs_lenght": "max_inputs_lenght", "api_base": "api_base", "model": "model"}.get(name, name)
    assert shown in str(raised.value) or (name == "model" and "model id" in str(raised.value)), str(raised.value)
    assert len(mock.calls) == 0


@pytest.mark.parametrize("name, value", [(name, value) for name, (good, _) in TABLE.items() for value in good], ids=repr)
def test_a_good_value_is_accepted(mock: responses.RequestsMock, name: str, value: Any) -> None:
    serve_mapping(mock, mapping_of("together"), model=HuggingFaceAPI.get_model(value) if name == "model" and value else MODEL)
    if name == "model" and not value:
        serve_mapping(mock, mapping_of("together"), model=HuggingFaceAPI.default_model)
    if name == "media":
        serve_mapping(mock, mapping_of("together"))
    answer_ok(mock, chat_url("together"))
    answer_ok(mock, "http://127.0.0.1:9/v1/chat/completions")
    assert "ok" in call(name, value)


@pytest.mark.parametrize("messages", MESSAGE_TABLE[1], ids=repr)
def test_bad_messages_are_refused_naming_the_message(mock: responses.RequestsMock, messages: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"messages"):
        list(HuggingFaceAPI.create_completion(MODEL, messages, api_key=TOKEN))
    assert len(mock.calls) == 0


@pytest.mark.parametrize("messages", MESSAGE_TABLE[0], ids=repr)
def test_good_messages_are_sent_as_given(mock: responses.RequestsMock, messages: Any) -> None:
    serve_mapping(mock, mapping_of("together"))
    answer_ok(mock, chat_url("together"))
    assert "ok" in list(HuggingFaceAPI.create_completion(MODEL, messages, api_key=TOKEN, stream=False))
    assert last_post_body(mock)["messages"] == messages


def test_every_openai_parameter_has_a_row_or_a_check() -> None:
    checked = {name for name in PARAMETERS if name in TABLE}
    assert {"temperature", "top_p", "stop", "seed", "tools", "tool_choice", "response_format", "n", "logprobs"} <= checked


def test_a_single_media_string_is_one_item_never_its_characters(mock: responses.RequestsMock, tmp_path: Path) -> None:
    serve_mapping(mock, mapping_of("together"))
    answer_ok(mock, chat_url("together"))
    call("media", "https://example.invalid/cat.png")
    parts = last_post_body(mock)["messages"][-1]["content"]
    assert [part["type"] for part in parts] == ["text", "image_url"] and parts[1]["image_url"]["url"] == "https://example.invalid/cat.png"


def test_the_message_says_what_was_received_and_what_is_accepted() -> None:
    with pytest.raises(ConfigurationError) as raised:
        HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_key=TOKEN, temperature="hot")
    assert str(raised.value) == "temperature must be a number from 0 to 2, not str 'hot'"


@pytest.mark.parametrize(
    "settings",
    [{"api_key": 5}, {"api_key": " "}, {"hub_url": "huggingface.co"}, {"router_url": 5}, {"timeout": -1}, {"provider": "Bad Name"},
     {"headers": {"Authorization": "x"}}, {"bill_to": ""}, {"bill_to": "org\nX-Evil: 1"}],
    ids=repr,
)
def test_bad_client_settings_are_refused_when_the_client_is_made(settings: Dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Client(**settings)
