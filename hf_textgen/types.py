"""Values that flow through hf_textgen: the typed chunks a completion yields, and a built request.

A completion yields ``str`` for each text delta (exactly as received) and these typed chunks:
``Trimmed`` (what was left out of a long conversation, before anything else), ``ProviderInfo``
(which provider is answering), ``Attempt`` (a provider the call moved on from, and why),
``Reasoning``, ``ToolCalls``, ``Logprobs``, ``FinishReason``, ``Usage`` and ``Cost``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

__all__ = [
    "ProviderInfo",
    "Attempt",
    "Trimmed",
    "Logprobs",
    "Cost",
    "Usage",
    "FinishReason",
    "ToolCalls",
    "Reasoning",
    "Chunk",
    "Timeouts",
    "PreparedRequest",
]


@dataclass(frozen=True)
class ProviderInfo:
    """The provider about to answer (yielded before its content)."""

    label: str
    model: str
    provider: str


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the server; ``raw`` keeps every field it sent."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class FinishReason:
    """Why generation stopped: ``stop``, ``length``, ``tool_calls``, ..."""

    reason: str


@dataclass(frozen=True)
class ToolCalls:
    """Complete tool calls, assembled from the stream's deltas (OpenAI shape)."""

    calls: List[Dict[str, Any]]


@dataclass(frozen=True)
class Reasoning:
    """A delta of the model's reasoning (``reasoning_content`` or ``reasoning``)."""

    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Attempt:
    """A provider the call moved on from: it failed (``error``, ``status`` when HTTP) or was
    skipped before being tried (``skipped``: it cannot serve this request). ``reason`` is one
    short line, such as ``"402 You have exceeded your monthly included credits..."``."""

    provider: str
    status: Optional[int]
    reason: str
    error: Optional[Exception] = field(default=None, compare=False, repr=False)
    skipped: bool = False


@dataclass(frozen=True)
class Trimmed:
    """The conversation was longer than ``max_inputs_lenght``: ``dropped_messages`` messages
    holding ``dropped_chars`` characters of content were left out before sending (yielded first)."""

    dropped_messages: int
    dropped_chars: int
    limit: int


@dataclass(frozen=True)
class Logprobs:
    """The ``logprobs`` of a choice, as the server sent them (asked for with ``logprobs=True``)."""

    content: Any


@dataclass(frozen=True)
class Cost:
    """What the answer cost in USD, from the answering provider's published prices and ``Usage``."""

    input_usd: float
    output_usd: float
    total_usd: float
    provider: str


Chunk = Union[str, ProviderInfo, Usage, FinishReason, ToolCalls, Reasoning, Attempt, Trimmed, Logprobs, Cost]


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``connect``: to open a connection; ``read``: idle time allowed between bytes;
    ``total``: optional deadline for a whole call (None: no deadline, long generations live);
    ``first_token``: optional deadline until the first content arrives."""

    connect: float = 10.0
    read: float = 120.0
    total: Optional[float] = None
    first_token: Optional[float] = None


@dataclass(frozen=True)
class PreparedRequest:
    """A chat request as a value: where it goes and what it carries. Building it does no I/O."""

    url: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    provider: str
    model: str

    def __repr__(self) -> str:  # never show the Authorization header
        return f"PreparedRequest(url={self.url!r}, provider={self.provider!r}, model={self.model!r})"


class Marker:
    """Base of the internal items a cooperative (async bridge) stream yields among its chunks to
    tell its driver what it needs; never content, never seen by a user."""

    __slots__ = ()


class Wait(Marker):
    """Internal, never reaches a user: yielded through a stream's generators, in place of blocking,
    when its socket has nothing to read and the stream reads cooperatively (the async bridge). The
    driver resumes the generator once ``sock`` is readable or at ``until`` (``time.monotonic()``),
    whichever comes first; the reader then raises its timeout if nothing came."""

    __slots__ = ("sock", "until")

    def __init__(self, sock: Any, until: float) -> None:
        self.sock = sock
        self.until = until


class Handoff(Marker):
    """Internal, never reaches a user: yielded (cooperative reading only) just before a step that
    blocks, opening a request. A driver that must not block (the async bridge's reactor thread)
    hands the stream to a thread that may, and resumes it there."""

    __slots__ = ()


HANDOFF = Handoff()


class HeadersIn(Marker):
    """Internal, never reaches a user: yielded (cooperative reading only) once the request is open
    (its headers are in): the blocking part that a :class:`Handoff` announced is over."""

    __slots__ = ()


HEADERS_IN = HeadersIn()

#: What a call's generator yields: chunks, and in cooperative mode (the async bridge) its markers.
StreamItem = Union[Chunk, Marker]
