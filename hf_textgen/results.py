"""A finished answer as one value: :class:`ChatResult`, built from a completion's chunks by
:class:`ResultCollector`, and the stream objects that hand it over at the end of a stream
(:class:`ChatStream`, :class:`AsyncChatStream`), in the manner of openai's ``get_final_completion()``.

    with HuggingFaceAPI.stream(model, messages) as stream:
        for text in stream.text():                  # or: for chunk in stream
            print(text, end="")
    result = stream.result()                        # the same ChatResult complete() returns
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Tuple, Type

from .errors import ResponseError
from .types import Attempt, Chunk, Cost, FinishReason, Logprobs, ProviderInfo, Reasoning, ToolCalls, Trimmed, Usage

__all__ = ["ChatResult", "ResultCollector", "ChatStream", "AsyncChatStream"]


@dataclass(frozen=True)
class ChatResult:
    """A complete answer. ``attempts``: the providers the call moved on from before ``provider``
    answered, each with its reason; ``trimmed``: what was left out of the conversation, if anything;
    ``message``: the assistant message to append to ``messages`` for the next turn."""

    text: str
    model: str
    provider: Optional[str] = None
    reasoning: str = ""
    tool_calls: List[Dict[str, Any]] = field(default_factory=list)
    finish_reason: Optional[str] = None
    usage: Optional[Usage] = None
    cost: Optional[Cost] = None
    attempts: Tuple[Attempt, ...] = ()
    trimmed: Optional[Trimmed] = None
    logprobs: List[Any] = field(default_factory=list, repr=False)

    @property
    def message(self) -> Dict[str, Any]:
        """The OpenAI-shaped assistant message (``content`` is None for a tool-calls-only answer)."""
        message: Dict[str, Any] = {"role": "assistant", "content": self.text if self.text or not self.tool_calls else None}
        if self.tool_calls:
            message["tool_calls"] = copy.deepcopy(self.tool_calls)
        return message

    def __str__(self) -> str:
        return self.text


class ResultCollector:
    """Feed it every chunk of a completion (``add`` returns the chunk); ``result()`` is the answer.

        collector = ResultCollector(model)
        for chunk in HuggingFaceAPI.create_completion(model, messages):
            collector.add(chunk)
        result = collector.result()
    """

    def __init__(self, model: str = "") -> None:
        self.model = model
        self._text: List[str] = []
        self._reasoning: List[str] = []
        self._tool_calls: List[Dict[str, Any]] = []
        self._logprobs: List[Any] = []
        self._attempts: List[Attempt] = []
        self._fields: Dict[str, Any] = {}

    def add(self, chunk: Chunk) -> Chunk:
        kind = chunk.__class__
        if kind is str:
            self._text.append(chunk)  # type: ignore[arg-type]
        elif kind is Reasoning:
            self._reasoning.append(chunk.text)  # type: ignore[union-attr]
        elif kind is ProviderInfo:
            self._fields.update(provider=chunk.provider, model=chunk.model)  # type: ignore[union-attr]
        elif kind is ToolCalls:
            self._tool_calls += chunk.calls  # type: ignore[union-attr]
        elif kind is FinishReason:
            self._fields["finish_reason"] = chunk.reason  # type: ignore[union-attr]
        elif kind is Usage:
            self._fields["usage"] = chunk
        elif kind is Cost:
            self._fields["cost"] = chunk
        elif kind is Attempt:
            self._attempts.append(chunk)  # type: ignore[arg-type]
        elif kind is Trimmed:
            self._fields["trimmed"] = chunk
        elif kind is Logprobs:
            self._logprobs.append(chunk.content)  # type: ignore[union-attr]
        return chunk

    def result(self) -> ChatResult:
        fields = {"model": self.model, **self._fields}
        return ChatResult(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=list(self._tool_calls),
            attempts=tuple(self._attempts),
            logprobs=list(self._logprobs),
            **fields,
        )


_CLOSED_EARLY = "the stream was closed before it finished, so there is no complete result"


class ChatStream:
    """A completion's chunks (iterate it, or :meth:`text` for the text deltas only), then
    :meth:`result`, which reads whatever is left. ``with`` closes the connection on exit."""

    def __init__(self, chunks: Iterator[Chunk], model: str) -> None:
        self._chunks = chunks
        self._collector = ResultCollector(model)
        self._finished = self._closed = False

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> Chunk:
        if self._closed:
            raise StopIteration
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._finished = True
            raise
        return self._collector.add(chunk)

    def text(self) -> Iterator[str]:
        """Only the text deltas (every chunk is still collected for :meth:`result`)."""
        for chunk in self:
            if chunk.__class__ is str:
                yield chunk  # type: ignore[misc]

    def result(self) -> ChatResult:
        """The complete answer; reads the rest of the stream first. Raises what the stream raised."""
        for _ in self:
            pass
        if not self._finished:
            raise ResponseError(_CLOSED_EARLY)
        return self._collector.result()

    def close(self) -> None:
        """Stop reading and close the connection (nothing happens once the stream has finished)."""
        if not self._finished:
            self._closed = True
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.close()


class AsyncChatStream:
    """The async :class:`ChatStream`: ``async for`` chunks (or :meth:`text`), ``await result()``,
    ``async with`` closes it. Works on asyncio and trio."""

    def __init__(self, chunks: Any, model: str) -> None:
        self._chunks = chunks  # an async iterator with aclose() (hf_textgen.aio.ThreadIterator)
        self._collector = ResultCollector(model)
        self._finished = self._closed = False

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> Chunk:
        if self._closed:
            raise StopAsyncIteration
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._finished = True
            raise
        return self._collector.add(chunk)

    async def text(self) -> AsyncIterator[str]:
        """Only the text deltas (every chunk is still collected for :meth:`result`)."""
        async for chunk in self:
            if chunk.__class__ is str:
                yield chunk  # type: ignore[misc]

    async def result(self) -> ChatResult:
        """The complete answer; reads the rest of the stream first. Raises what the stream raised."""
        async for _ in self:
            pass
        if not self._finished:
            raise ResponseError(_CLOSED_EARLY)
        return self._collector.result()

    async def aclose(self) -> None:
        """Stop reading and close the connection (nothing happens once the stream has finished)."""
        if not self._finished:
            self._closed = True
            await self._chunks.aclose()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        await self.aclose()
