"""What a provider answers, as values: chat completions, SSE events, error bodies. No I/O; the one
state touched is a provider's request count, for ``Provider.error_rate``.

A :class:`Reply` is a whole answer (status, body, headers, a delay before it); a :class:`Stream` is a
200 whose server-sent events the server writes one by one, ``provider.delay`` apart.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from http import HTTPStatus
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from .config import CREATED, Provider

DEFAULT_ERROR_MESSAGES = {
    401: "Invalid credentials in Authorization header",
    402: "You have exceeded your monthly included credits for Inference Providers. "
    "Subscribe to PRO to get 20x more monthly included credits.",
    403: "You have reached your monthly spending limit for Inference Providers.",
    429: "Rate limit reached. Please retry later.",
}


@dataclass
class Reply:
    """A complete answer."""

    status: int
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Stream:
    """A streamed 200: ``events`` in order; ``None`` means "close the connection here"."""

    provider: Provider
    events: List[Optional[bytes]]
    headers: Dict[str, str]


Answer = Union[Reply, Stream, None]  # None: hang up without an answer


def json_reply(status: int, payload: Any, headers: Optional[Mapping[str, str]] = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(),
                 {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _html(status: int, message: str) -> bytes:
    title = f"{status} {phrase(status)}"
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{escape(message)}</p></body></html>".encode()


ERROR_BODY_BUILDERS: Dict[str, Callable[[int, str], Reply]] = {
    "json": lambda status, message: json_reply(status, {"error": message}),
    "json_object": lambda status, message: json_reply(
        status, {"error": {"message": message, "type": "invalid_request_error", "code": status}}),
    "html": lambda status, message: Reply(status, _html(status, message), {"Content-Type": "text/html; charset=utf-8"}),
    "text": lambda status, message: Reply(status, message.encode(), {"Content-Type": "text/plain; charset=utf-8"}),
    "header": lambda status, message: Reply(status, b"", {"X-Error-Message": message}),
}


def error_reply(provider: Provider, status: Optional[int] = None) -> Reply:
    """``status`` (default ``provider.error_status``) with its message in the configured body style."""
    status = status or provider.error_status or 500
    message = provider.error_message or DEFAULT_ERROR_MESSAGES.get(status) or phrase(status)
    reply = ERROR_BODY_BUILDERS[provider.error_body](status, message)
    if provider.retry_after is not None:
        reply.headers["Retry-After"] = str(provider.retry_after)
    return reply


# How real servers refuse a feature, by ``Provider.unsupported_shape``: status, message per feature, body.
# openai: OpenAI's API (and most OpenAI-compatible providers); vllm: vLLM's OpenAI server; tgi:
# text-generation-inference (hf-inference), whose validation errors are 422; novita: its raw body.
_REFUSALS: Dict[str, Tuple[int, Dict[str, str], Callable[[int, str], Any]]] = {
    "openai": (400, {
        "tools": "tools is not supported in this model.",
        "response_format": "Invalid parameter: 'response_format' of type '{kind}' is not supported with this model.",
    }, lambda status, message: {"error": {"message": message, "type": "invalid_request_error",
                                                 "param": None, "code": None}}),
    "vllm": (400, {
        "tools": '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        "response_format": "response_format of type '{kind}' is not supported by this server",
    }, lambda status, message: {"object": "error", "message": message, "type": "BadRequestError",
                                       "param": None, "code": status}),
    "tgi": (422, {
        "tools": "Input validation error: tools are not supported by this model",
        "response_format": "Input validation error: grammar is not supported",
    }, lambda status, message: {"error": message, "error_type": "validation"}),
    "novita": (400, {
        "tools": "model features function calling not support",
        "response_format": "model features structured outputs not support",
    }, lambda status, message: {"code": status, "reason": "INVALID_REQUEST_BODY", "message": message,
                                       "metadata": {}}),
}


def refusal(provider: Provider, request: Mapping[str, Any]) -> Optional[Reply]:
    """The error ``provider`` answers for a feature its catalogue entry says it lacks, else ``None``."""
    response_format = request.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if provider.supports_tools is False and (request.get("tools") or request.get("tool_choice") is not None):
        param = "tools"
    elif provider.supports_structured_output is False and kind in ("json_object", "json_schema"):
        param = "response_format"
    else:
        return None
    status, messages, body = _REFUSALS[provider.unsupported_shape]
    return json_reply(status, body(status, messages[param].format(kind=kind)))


def _envelope(kind: str, provider: Provider, choices: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"id": f"chatcmpl-stub-{provider.name}", "object": kind, "created": CREATED,
            "model": provider.provider_id, "choices": choices}


def _chunk(provider: Provider, delta: Dict[str, Any], finish_reason: Optional[str] = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return _sse(_envelope("chat.completion.chunk", provider, [choice]))


def _sse(payload: Any, event: Optional[str] = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def _in_band_error(provider: Provider) -> Dict[str, Any]:
    message = provider.error_message or "The provider failed while generating."
    return {"error": {"message": message, "type": "server_error"}}


def _usage(provider: Provider, request: Mapping[str, Any]) -> Dict[str, int]:
    if isinstance(provider.usage, dict):
        return dict(provider.usage)
    prompt = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", ()) if isinstance(m, dict))
    completion = len(provider.deltas())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(provider: Provider, request: Mapping[str, Any]) -> Dict[str, Any]:
    """The non-stream ``chat.completion`` answer of ``provider`` to ``request``."""
    message: Dict[str, Any] = {"role": "assistant", "content": "".join(provider.content()) or None}
    if provider.reasoning:
        message[provider.reasoning_field] = "".join(provider.reasoning_deltas())
    if provider.tool_calls:
        message["tool_calls"] = provider.calls()
    answer = _envelope("chat.completion", provider,
                       [{"index": 0, "message": message, "finish_reason": provider.finish()}])
    if provider.usage:
        answer["usage"] = _usage(provider, request)
    return answer


def stream_events(provider: Provider, request: Mapping[str, Any]) -> List[Optional[bytes]]:
    """The SSE events of a streamed answer, in order; a final ``None`` means "close the connection"."""
    events: List[Optional[bytes]] = [_chunk(provider, {"role": "assistant", "content": ""})]
    events += [_chunk(provider, delta) for delta in provider.deltas()]
    if provider.error_in_stream is not None:
        event = "error" if provider.error_frame == "event" else None
        return events[: provider.error_in_stream + 1] + [_sse(_in_band_error(provider), event)]
    if provider.cut_after is not None:
        return events[: provider.cut_after + 1] + [None]
    events.append(_chunk(provider, {}, provider.finish()))
    options = request.get("stream_options")
    if provider.usage or (isinstance(options, dict) and options.get("include_usage")):
        events.append(_sse({**_envelope("chat.completion.chunk", provider, []), "usage": _usage(provider, request)}))
    return events + [b"data: [DONE]\n\n"]


def answer_chat(provider: Provider, request: Mapping[str, Any]) -> Answer:
    """What ``provider`` answers to a chat ``request``: its configured error, a refusal, or the answer."""
    headers = {"x-inference-provider": provider.name}
    failing = provider.failure_status()
    refused = None if failing else refusal(provider, request)
    if failing:
        reply = error_reply(provider, failing)
    elif refused is not None:
        reply = refused
    elif request.get("stream"):
        return Stream(provider, stream_events(provider, request),
                      {**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    elif provider.cut_after is not None:
        return None
    elif provider.error_in_stream is not None:
        reply = json_reply(200, _in_band_error(provider))
    else:
        reply = json_reply(200, completion(provider, request))
    reply.headers.update(headers)
    reply.delay = provider.delay
    return reply
