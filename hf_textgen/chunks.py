"""OpenAI-compatible JSON -> what a completion yields: ``str`` text deltas (exactly as received)
and typed chunks. Pure functions over payloads: no I/O."""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional

from . import errors
from .errors import ResponseError
from .sse import DONE
from .types import Chunk, FinishReason, Reasoning, ToolCalls, Usage


def stream_chunks(payloads: Iterable[Any], place: str) -> Iterator[Chunk]:
    """Chunks of a streamed answer. Usage is yielded once, last; tool-call deltas are assembled
    and yielded before the finish reason. A stream that ends before ``[DONE]`` and before any
    finish reason raises ``ResponseError`` after what arrived was yielded."""
    tools = ToolCallAssembler()
    usage: Optional[Mapping[str, Any]] = None
    finished = done = False
    for payload in payloads:
        if payload is DONE:
            done = True
            break
        if type(payload) is not dict:
            raise ResponseError(f"unexpected stream payload ({place}): {errors.shorten(json.dumps(payload), 120)}")
        choices = payload.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    yield content
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if reasoning:
                    yield Reasoning(reasoning)
                if delta.get("tool_calls"):
                    tools.add(delta["tool_calls"])
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                if tools:
                    yield tools.pop()
                yield FinishReason(finish_reason)
                finished = True
        if payload.get("usage"):
            usage = payload["usage"]
    if tools:
        yield tools.pop()
    if usage:
        yield make_usage(usage)
    if not done and not finished:
        raise ResponseError(f"the stream was cut before it finished ({place}): no [DONE] and no finish_reason arrived")


def completion_chunks(payload: Any, place: str) -> Iterator[Chunk]:
    """The same chunk types from one non-streamed ``chat.completion`` answer."""
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        if isinstance(payload, dict) and payload.get("error"):
            raise ResponseError(f"the server reported an error ({place}): {errors.shorten(errors.error_text(payload))}")
        raise ResponseError(f"unexpected answer ({place}): {errors.shorten(json.dumps(payload), 160)}")
    choice = payload["choices"][0] if payload["choices"] else {}
    message = choice.get("message") or {}
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        yield Reasoning(reasoning)
    if message.get("content"):
        yield message["content"]
    if message.get("tool_calls"):
        yield ToolCalls(list(message["tool_calls"]))
    if choice.get("finish_reason"):
        yield FinishReason(choice["finish_reason"])
    if payload.get("usage"):
        yield make_usage(payload["usage"])


def make_usage(raw: Mapping[str, Any]) -> Usage:
    def count(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) else 0

    return Usage(count("prompt_tokens"), count("completion_tokens"), count("total_tokens"), dict(raw))


class ToolCallAssembler:
    """Joins streamed tool-call deltas (by ``index``) into complete OpenAI tool calls."""

    def __init__(self) -> None:
        self._calls: Dict[int, Dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, deltas: List[Dict[str, Any]]) -> None:
        for delta in deltas:
            index = delta.get("index", len(self._calls))
            call = self._calls.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
            if delta.get("id"):
                call["id"] = delta["id"]
            if delta.get("type"):
                call["type"] = delta["type"]
            function = delta.get("function") or {}
            if function.get("name"):
                call["function"]["name"] += function["name"]
            if function.get("arguments"):
                arguments = function["arguments"]
                call["function"]["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)

    def pop(self) -> ToolCalls:
        calls = [self._calls[index] for index in sorted(self._calls)]
        self._calls = {}
        return ToolCalls(calls)
