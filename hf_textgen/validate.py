"""Every value a caller gives, checked before anything is sent: a wrong one raises
``ConfigurationError`` naming the parameter, what was received and what is accepted.

The OpenAI chat parameters are checked by the table :data:`PARAMETERS`; the rest of a call
(model, messages, media, headers, ...) by the functions below.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import ConfigurationError

__all__ = ["PARAMETERS", "check_params", "check_messages", "check_media", "check_headers", "check_model", "ROLES"]

ROLES = ("system", "developer", "user", "assistant", "tool")
Check = Callable[[str, Any], None]


def _received(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '…' if len(text) > 60 else text}"


def _refuse(name: str, accepted: str, value: Any) -> ConfigurationError:
    return ConfigurationError(f"{name} must be {accepted}, not {_received(value)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def number(low: float, high: float) -> Check:
    def check(name: str, value: Any) -> None:
        if not (_is_number(value) and low <= value <= high):
            raise _refuse(name, f"a number from {low:g} to {high:g}", value)

    return check


def integer(low: int = 0, high: Optional[int] = None, what: str = "") -> Check:
    def check(name: str, value: Any) -> None:
        if not (_is_int(value) and value >= low and (high is None or value <= high)):
            raise _refuse(name, what or (f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"), value)

    return check


def kind(types: Tuple[type, ...], what: str) -> Check:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool) and int in types):
            raise _refuse(name, what, value)

    return check


def one_of(*choices: str) -> Check:
    def check(name: str, value: Any) -> None:
        if value not in choices:
            raise _refuse(name, "one of " + ", ".join(repr(c) for c in choices), value)

    return check


def _stop(name: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise _refuse(name, "a string or a list of strings", value)


def _tools(name: str, value: Any) -> None:
    if not isinstance(value, (list, tuple)):
        raise _refuse(name, 'a list of {"type": "function", "function": {"name": ...}} tools', value)
    for index, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str) or tool.get("type", "function") != "function":
            raise _refuse(f"{name}[{index}]", 'a tool {"type": "function", "function": {"name": ..., "parameters": {...}}}', tool)


def _tool_choice(name: str, value: Any) -> None:
    if value in ("none", "auto", "required"):
        return
    function = value.get("function") if isinstance(value, Mapping) else None
    if not (isinstance(function, Mapping) and isinstance(function.get("name"), str)):
        raise _refuse(name, "'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}", value)


def _response_format(name: str, value: Any) -> None:
    kind_ = value.get("type") if isinstance(value, Mapping) else None
    if kind_ not in ("text", "json_object", "json_schema"):
        raise _refuse(name, "{\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": \"json_schema\", \"json_schema\": {...}}", value)
    if kind_ == "json_schema" and not isinstance(value.get("json_schema"), Mapping):
        raise _refuse(f"{name}['json_schema']", "a mapping with the schema ({\"name\": ..., \"schema\": {...}})", value.get("json_schema"))


def _n(name: str, value: Any) -> None:
    if value != 1 or not _is_int(value):
        raise _refuse(name, "1 (hf_textgen reads one choice per answer; make several calls for several answers)", value)


_MAPPING = kind((Mapping,), "a mapping (dict)")
_STRING = kind((str,), "a string")
_BOOL = kind((bool,), "True or False")

#: The OpenAI chat parameters a call accepts as keywords, each with its check.
PARAMETERS: Dict[str, Check] = {
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "stop": _stop,
    "seed": integer(-(2**63), 2**64, "an integer"),
    "tools": _tools,
    "tool_choice": _tool_choice,
    "response_format": _response_format,
    "reasoning_effort": _STRING,
    "frequency_penalty": number(-2, 2),
    "presence_penalty": number(-2, 2),
    "logprobs": _BOOL,
    "top_logprobs": integer(0, 20),
    "n": _n,
    "logit_bias": _MAPPING,
    "user": _STRING,
    "stream_options": _MAPPING,
    "parallel_tool_calls": _BOOL,
    "max_completion_tokens": integer(1),
    "top_k": integer(0),
    "repetition_penalty": number(0, math.inf),
    "min_p": number(0, 1),
    "metadata": _MAPPING,
    "modalities": kind((list, tuple), "a list of strings"),
    "prediction": _MAPPING,
    "service_tier": _STRING,
}


def check_params(params: Mapping[str, Any]) -> None:
    """Unknown keywords (a typo) are refused with a hint; known ones are checked; None is unset."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise ConfigurationError(
            f"unknown parameter(s) {', '.join(unknown)}: pass OpenAI chat parameters such as "
            "temperature or top_p, or put provider-specific fields in extra_body={...}"
        )
    for name, value in params.items():
        if value is not None:
            PARAMETERS[name](name, value)


def check_call(
    *,
    stream: Any,
    max_tokens: Any,
    max_inputs_lenght: Any,
    max_event_bytes: Any,
    extra_body: Any,
    api_base: Any,
    api_key: Any,
) -> None:
    """The call's own parameters (beside the OpenAI ones)."""
    if not isinstance(stream, bool):
        raise _refuse("stream", "True or False", stream)
    if max_tokens is not None:
        integer(1, what="a positive integer or None")("max_tokens", max_tokens)
    if max_inputs_lenght is not None:
        integer(1, what="a positive integer, or None to turn trimming off")("max_inputs_lenght", max_inputs_lenght)
    integer(1, what="a positive integer (bytes)")("max_event_bytes", max_event_bytes)
    if extra_body is not None:
        _MAPPING("extra_body", extra_body)
    if api_base is not None and not isinstance(api_base, str):
        raise _refuse("api_base", "a URL string such as 'http://127.0.0.1:8080/v1'", api_base)
    if api_key is not None and not isinstance(api_key, str):
        raise _refuse("api_key", "a token string (hf_...)", api_key)


def check_model(model: Any) -> None:
    if model is not None and not isinstance(model, str):
        raise _refuse("model", "a model id such as 'meta-llama/Llama-3.3-70B-Instruct', an alias, or None", model)


def check_messages(messages: Any) -> List[Dict[str, Any]]:
    """The OpenAI message shape: roles, content (a string or a list of parts; None only for an
    assistant message with tool calls), tool results with their ``tool_call_id``."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise _refuse("messages", "a non-empty list of {'role': ..., 'content': ...} dicts", messages)
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise _refuse(where, "a dict with 'role' and 'content'", message)
        role = message.get("role")
        if role not in ROLES:
            raise _refuse(f"{where}['role']", "one of " + ", ".join(repr(r) for r in ROLES), role)
        content = message.get("content")
        if content is None:
            if not (role == "assistant" and (message.get("tool_calls") or message.get("function_call"))):
                raise _refuse(f"{where}['content']", "a string or a list of content parts (None only for an assistant message with tool_calls)", content)
        elif isinstance(content, (list, tuple)):
            for part_index, part in enumerate(content):
                if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                    raise _refuse(f"{where}['content'][{part_index}]", "a content part such as {'type': 'text', 'text': ...}", part)
        elif not isinstance(content, str):
            raise _refuse(f"{where}['content']", "a string or a list of content parts", content)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise _refuse(f"{where}['tool_call_id']", "the id (a string) of the tool call this message answers", message.get("tool_call_id"))
        if message.get("tool_calls") is not None and not isinstance(message["tool_calls"], (list, tuple)):
            raise _refuse(f"{where}['tool_calls']", "a list of tool calls", message["tool_calls"])
    return list(messages)


def check_media(media: Any) -> List[Any]:
    """One item (a URL or path string, bytes, a path, or a ``(data, filename)`` pair) or a list of
    them; a single string is one item, never iterated character by character."""
    if media is None:
        return []
    items = [media] if isinstance(media, (str, bytes, bytearray, tuple, os.PathLike)) else media
    if not isinstance(items, (list, Sequence)) or isinstance(items, (str, bytes)):
        raise _refuse("media", "an image (URL, data: URI, path, bytes or a (data, filename) pair) or a list of them", media)
    for index, item in enumerate(items):
        data = item[0] if isinstance(item, tuple) and len(item) == 2 else item
        if isinstance(item, tuple) and len(item) != 2:
            raise _refuse(f"media[{index}]", "a (data, filename) pair", item)
        if not isinstance(data, (str, bytes, bytearray, os.PathLike)):
            raise _refuse(f"media[{index}]", "a URL, data: URI, path, bytes or a (data, filename) pair", item)
    return list(items)


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED = {"authorization": "pass the token with api_key=", "content-length": "it is computed", "host": "use api_base="}


def check_headers(headers: Any, name: str = "headers") -> Dict[str, str]:
    """Extra HTTP headers: names and values are strings without line breaks; the token goes by
    ``api_key=``, never a header."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise _refuse(name, "a mapping of header names to string values", headers)
    checked = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
            raise _refuse(f"{name} key", "a header name (letters, digits, '-')", key)
        if key.lower() in _RESERVED:
            raise ConfigurationError(f"{name} must not set {key}: {_RESERVED[key.lower()]}")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise _refuse(f"{name}[{key!r}]", "a string without line breaks", value)
        checked[key] = value
    return checked
