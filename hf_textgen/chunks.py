"""OpenAI-compatible JSON -> what a completion yields: ``str`` text deltas (exactly as received)
and typed chunks. Pure functions over payloads: no I/O."""
from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Mapping, Optional

from . import errors
from .errors import ResponseError
from .types import Chunk, FinishReason, Logprobs, Reasoning, ToolCalls, Usage


class StreamChunks:
    """Payloads of a streamed answer in, chunks out: ``add(payload)`` for each, ``take()`` the
    chunks made since the last take, then ``end()`` and ``cut(done)``.

    Usage is given once, last; tool-call deltas are assembled and given before the finish reason,
    which is given once. A payload of an unexpected shape raises ``ResponseError`` naming it (the
    chunks before it stay to be taken)."""

    def __init__(self, place: str) -> None:
        self.place = place
        self._tools = ToolCallAssembler(place)
        self._usage: Optional[Mapping[str, Any]] = None
        self._found: List[Chunk] = []
        self._append = self._found.append  # bound once: add() runs per event
        self.finished = False  # a finish reason has arrived

    def take(self) -> List[Chunk]:
        found = self._found[:]
        self._found.clear()
        return found

    def add(self, payload: Any) -> None:
        add = self._append
        if type(payload) is not dict:
            raise _unexpected("stream payload", payload, self.place)
        choices = payload.get("choices")
        if choices:
            if type(choices) is not list or type(choices[0]) is not dict:
                raise _unexpected("choices", choices, self.place)
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                if type(delta) is not dict:
                    raise _unexpected("delta", delta, self.place)
                content = delta.get("content")
                if content:
                    if type(content) is str:
                        add(content)
                    else:
                        text = _text_of(content, self.place)
                        if text:
                            add(text)
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if reasoning:
                    if type(reasoning) is not str:
                        raise _unexpected("reasoning", reasoning, self.place)
                    add(Reasoning(reasoning))
                if delta.get("tool_calls"):
                    self._tools.add(delta["tool_calls"])
            if choice.get("logprobs"):
                add(Logprobs(choice["logprobs"]))
            finish_reason = choice.get("finish_reason")
            if finish_reason and not self.finished:
                if self._tools:
                    add(self._tools.pop())
                add(FinishReason(str(finish_reason)))
                self.finished = True
        if payload.get("usage"):
            usage = payload["usage"]
            if not isinstance(usage, Mapping):
                raise _unexpected("usage", usage, self.place)
            self._usage = usage

    def end(self) -> List[Chunk]:
        """What is left once the stream is over: assembled tool calls, then usage."""
        found: List[Chunk] = []
        if self._tools:
            found.append(self._tools.pop())
        if self._usage:
            found.append(make_usage(self._usage))
        return found

    def cut(self, done: bool) -> Optional[ResponseError]:
        """The error for a stream that ended with neither ``[DONE]`` (``done``) nor a finish reason."""
        if done or self.finished:
            return None
        return ResponseError(f"the stream was cut before it finished ({self.place}): no [DONE] and no finish_reason arrived")


def completion_chunks(payload: Any, place: str) -> Iterator[Chunk]:
    """The same chunk types from one non-streamed ``chat.completion`` answer."""
    if isinstance(payload, dict) and (payload.get("error") or payload.get("object") == "error"):  # OpenAI, TGI / vLLM
        raise ResponseError(f"the server reported an error ({place}): {errors.shorten(errors.error_text(payload))}")
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        raise _unexpected("answer", payload, place)
    choice = payload["choices"][0] if payload["choices"] else {}
    message = (choice.get("message") or {}) if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise _unexpected("choice", choice, place)
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        if not isinstance(reasoning, str):
            raise _unexpected("reasoning", reasoning, place)
        yield Reasoning(reasoning)
    content = message.get("content")
    if content:
        text = content if isinstance(content, str) else _text_of(content, place)
        if text:
            yield text
    if choice.get("logprobs"):
        yield Logprobs(choice["logprobs"])
    if message.get("tool_calls"):
        if not isinstance(message["tool_calls"], list):
            raise _unexpected("tool_calls", message["tool_calls"], place)
        yield ToolCalls(list(message["tool_calls"]))
    if choice.get("finish_reason"):
        yield FinishReason(str(choice["finish_reason"]))
    usage = payload.get("usage")
    if usage:
        if not isinstance(usage, Mapping):
            raise _unexpected("usage", usage, place)
        yield make_usage(usage)


def _text_of(content: Any, place: str) -> str:
    """The text of content given as OpenAI content parts (``[{"type": "text", "text": ...}]``)."""
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        return "".join(part["text"] for part in content if isinstance(part.get("text"), str))
    raise _unexpected("content", content, place)


def _unexpected(what: str, value: Any, place: str) -> ResponseError:
    return ResponseError(f"unexpected {what} in the answer ({place}): {errors.shorten(json.dumps(value, default=repr), 120)}")


def make_usage(raw: Mapping[str, Any]) -> Usage:
    def count(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) else 0

    return Usage(count("prompt_tokens"), count("completion_tokens"), count("total_tokens"), dict(raw))


class ToolCallAssembler:
    """Joins streamed tool-call deltas (by ``index``) into complete OpenAI tool calls. A delta
    without ``index`` continues the last call, unless it brings a new ``id``."""

    def __init__(self, place: str = "the stream") -> None:
        self.place = place
        self._calls: Dict[int, Dict[str, Any]] = {}
        self._last: Optional[int] = None

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, deltas: Any) -> None:
        if not isinstance(deltas, list):
            raise _unexpected("tool_calls", deltas, self.place)
        for delta in deltas:
            if not isinstance(delta, dict):
                raise _unexpected("tool call", delta, self.place)
            index = delta.get("index")
            if not isinstance(index, int):
                new_id = delta.get("id") and all(call["id"] != delta["id"] for call in self._calls.values())
                index = self._last if self._last is not None and not new_id else len(self._calls)
            self._last = index
            call = self._calls.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
            if delta.get("id"):
                call["id"] = delta["id"]
            if delta.get("type"):
                call["type"] = delta["type"]
            function = delta.get("function") or {}
            if not isinstance(function, dict):
                raise _unexpected("tool call", delta, self.place)
            name = function.get("name")
            if name and name != call["function"]["name"]:  # some servers repeat the whole name
                call["function"]["name"] += str(name)
            if function.get("arguments"):
                arguments = function["arguments"]
                call["function"]["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)

    def pop(self) -> ToolCalls:
        calls = [self._calls[index] for index in sorted(self._calls)]
        self._calls, self._last = {}, None
        return ToolCalls(calls)
