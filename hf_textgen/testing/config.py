"""What the stand-in is told to be: the routes, one :class:`Provider`'s settings, and the helpers they use.

Nothing here does I/O or builds an HTTP answer; :mod:`.answers` and :mod:`.hub` read these values.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

STUB_TOKEN = "hf_stub_token"
DEFAULT_ROUTE = "/v1/chat/completions"
#: The router path after ``/{provider}``; ``{model}`` is the Hub id.
ROUTES: Mapping[str, str] = {
    "novita": "/v3/openai/chat/completions",
    "fireworks-ai": "/inference/v1/chat/completions",
    "groq": "/openai/v1/chat/completions",
    "cohere": "/compatibility/v1/chat/completions",
    "deepinfra": "/v1/openai/chat/completions",
    "zai-org": "/api/paas/v4/chat/completions",
    "hf-inference": "/models/{model}/v1/chat/completions",
}
POLICIES = ("fastest", "cheapest", "preferred")
MAPPING_SHAPES = ("dict", "list")
FRAMINGS = ("chunked", "close")
ERROR_BODIES = ("json", "json_object", "html", "text", "header")
ERROR_FRAMES = ("data", "event")
#: How a provider refuses ``tools`` or ``response_format`` it does not support (see :mod:`.answers`).
UNSUPPORTED_SHAPES = ("openai", "vllm", "tgi", "novita")
CREATED = 1700000000
_DELTA = re.compile(r"\s*[\w']+|\s*[^\w\s]+|\s+")


def route_for(provider: str, model_id: str) -> str:
    """The path the router serves ``provider`` on for ``model_id``: ``/{provider}{route}``."""
    return f"/{provider}" + ROUTES.get(provider, DEFAULT_ROUTE).format(model=model_id)


def split_text(text: str) -> List[str]:
    """Split ``text`` into word-sized deltas that join back exactly: ``["Hello", " from", " together", "!"]``."""
    return _DELTA.findall(text)


def default_provider_id(provider: str, model_id: str) -> str:
    """The ``providerId`` a :class:`Provider` gets when none is given (the Hub id for hf-inference)."""
    return model_id if provider == "hf-inference" else f"{provider}/{model_id.rsplit('/', 1)[-1].lower()}"


@dataclass
class Provider:
    """How one provider answers for one model. Change it at run time with :meth:`update`.

    Mapping: ``name``, ``provider_id`` (default :func:`default_provider_id`), ``status`` (``live``,
    ``staging``, ``error``), ``task``; ``vision``: it takes images, so the model's Hub ``pipeline_tag`` is
    ``image-text-to-text`` (else ``text-generation``) and the catalogue lists ``image`` as an input.
    Answer: ``text`` (default ``"Hello from <name>!"``, streamed as :func:`split_text` deltas) or
    ``chunks`` (the exact content deltas); ``reasoning`` (text or deltas, sent before the content in
    ``reasoning_field``); ``tool_calls`` (OpenAI form, or ``{"name", "arguments"}`` with dict arguments);
    ``finish_reason`` (default ``tool_calls`` when there are some, else ``stop``); ``usage`` (``True``:
    counted, a dict: sent as is, ``False``: only when the request asks ``stream_options.include_usage``).
    Transport: ``delay`` seconds between stream events (before a non-stream answer); ``framing``
    ``chunked`` (Transfer-Encoding) or ``close`` (the body ends when the connection closes).
    Failures: ``error_status`` answers that HTTP status instead, with ``error_message`` (a default per
    status), ``retry_after`` and ``error_body`` (``json``: ``{"error": msg}``, ``json_object``:
    ``{"error": {"message": msg}}``, ``html``, ``text``, ``header``: empty body and ``X-Error-Message``);
    ``error_rate`` (0 to 1): that fraction of the requests this provider receives is answered with
    ``error_rate_status`` (default 429, with ``retry_after`` and ``error_body`` as above), spread
    evenly and deterministically (0.3: the 4th, 7th and 10th of every ten; the count is shared by the
    provider's snapshots and survives :meth:`update`); ``error_status`` beats it.
    ``error_in_stream=N`` sends ``{"error": {...}}`` after N deltas (as ``data:``, or ``event: error``
    with ``error_frame="event"``) and ends the stream; ``cut_after=N`` closes the connection after N
    deltas (no ``finish_reason``, no ``[DONE]``; a non-stream request gets no answer at all).
    Router catalogue (``GET /v1/models``; ``None`` = unknown, left out): ``context_length``, ``pricing``
    (``{"input", "output"}`` USD per million tokens), ``is_free``, ``supports_tools``,
    ``supports_structured_output``, ``first_token_latency_ms``, ``throughput`` (tokens/s),
    ``is_model_author``. ``supports_tools=False`` refuses a request with ``tools`` or ``tool_choice``,
    ``supports_structured_output=False`` one with a JSON ``response_format``, in the shape
    ``unsupported_shape`` (``openai``: 400 ``{"error": {...}}``, ``vllm``: 400 ``{"object": "error", ...}``,
    ``tgi``: 422 ``{"error", "error_type"}``, ``novita``: 400 ``{"code", "reason", "message"}``).
    """

    name: str
    provider_id: Optional[str] = None
    status: str = "live"
    task: str = "conversational"
    text: Optional[str] = None
    chunks: Optional[List[str]] = None
    reasoning: Union[str, List[str], None] = None
    reasoning_field: str = "reasoning_content"
    tool_calls: Optional[List[Dict[str, Any]]] = None
    finish_reason: Optional[str] = None
    usage: Union[bool, Dict[str, int]] = True
    delay: float = 0.0
    framing: str = "chunked"
    error_status: Optional[int] = None
    error_message: Optional[str] = None
    error_body: str = "json"
    retry_after: Union[int, str, None] = None
    error_rate: float = 0.0
    error_rate_status: int = 429
    error_in_stream: Optional[int] = None
    error_frame: str = "data"
    cut_after: Optional[int] = None
    vision: bool = False
    context_length: Optional[int] = None
    pricing: Optional[Dict[str, float]] = None
    is_free: Optional[bool] = None
    supports_tools: Optional[bool] = None
    supports_structured_output: Optional[bool] = None
    first_token_latency_ms: Optional[float] = None
    throughput: Optional[float] = None
    is_model_author: Optional[bool] = None
    unsupported_shape: str = "openai"
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _draws: _Draws = field(default_factory=lambda: _Draws(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"invalid provider name {self.name!r}")
        if self.text is None:
            self.text = f"Hello from {self.name}!"
        for name, value, choices in (
            ("framing", self.framing, FRAMINGS),
            ("error_body", self.error_body, ERROR_BODIES),
            ("error_frame", self.error_frame, ERROR_FRAMES),
            ("unsupported_shape", self.unsupported_shape, UNSUPPORTED_SHAPES),
        ):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}, not {value!r}")
        self._check_catalogue()
        _check_number("error_rate", self.error_rate)
        if self.error_rate > 1:
            raise ValueError(f"error_rate must be a fraction from 0 to 1, not {self.error_rate!r}")
        if type(self.error_rate_status) is not int or not 400 <= self.error_rate_status <= 599:
            raise ValueError(f"error_rate_status must be an HTTP error status (400-599), not {self.error_rate_status!r}")

    def _check_catalogue(self) -> None:
        if self.pricing is not None:
            if not isinstance(self.pricing, Mapping) or not set(self.pricing) <= {"input", "output"}:
                raise ValueError(f"pricing must be a dict with 'input' and/or 'output', not {self.pricing!r}")
            for key, price in self.pricing.items():
                _check_number(f"pricing[{key!r}]", price)
            self.pricing = dict(self.pricing)
        if self.context_length is not None and (type(self.context_length) is not int or self.context_length < 1):
            raise ValueError(f"context_length must be a positive int, not {self.context_length!r}")
        for name in ("first_token_latency_ms", "throughput"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name))
        for name in ("vision", "is_free", "supports_tools", "supports_structured_output", "is_model_author"):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (value is None and name != "vision"):
                raise ValueError(f"{name} must be True, False{'' if name == 'vision' else ' or None'}, not {value!r}")

    def update(self, **changes: Any) -> Provider:
        """Change fields in place, thread-safely; an unknown field raises ``TypeError``. Returns self."""
        with self._lock:
            checked = dataclasses.replace(self, **changes)
            for name in changes:
                setattr(self, name, getattr(checked, name))
        return self

    def snapshot(self) -> Provider:
        """A consistent copy, so one answer never mixes old and new settings (it shares the
        request count of ``error_rate``)."""
        with self._lock:
            copy = dataclasses.replace(self)
        copy._draws = self._draws
        return copy

    def failure_status(self) -> Optional[int]:
        """The error status this request is answered with, or None: ``error_status``, else
        ``error_rate_status`` for the ``error_rate`` share of requests (counts this request)."""
        if self.error_status:
            return self.error_status
        if not self.error_rate:
            return None
        seen = self._draws.take()
        return self.error_rate_status if math.floor((seen + 1) * self.error_rate) > math.floor(seen * self.error_rate) else None

    def content(self) -> List[str]:
        """The content deltas."""
        return list(self.chunks) if self.chunks is not None else split_text(self.text or "")

    def reasoning_deltas(self) -> List[str]:
        """The reasoning deltas."""
        return split_text(self.reasoning) if isinstance(self.reasoning, str) else list(self.reasoning or ())

    def calls(self) -> List[Dict[str, Any]]:
        """The tool calls in OpenAI form."""
        return [_tool_call(index, call) for index, call in enumerate(self.tool_calls or ())]

    def deltas(self) -> List[Dict[str, Any]]:
        """The ``delta`` objects streamed after the role chunk: reasoning, content, then tool calls."""
        return (
            [{self.reasoning_field: piece} for piece in self.reasoning_deltas()]
            + [{"content": piece} for piece in self.content()]
            + [delta for index, call in enumerate(self.calls()) for delta in _tool_call_deltas(index, call)]
        )

    def finish(self) -> str:
        """The ``finish_reason`` of a complete answer."""
        return self.finish_reason or ("tool_calls" if self.tool_calls else "stop")


class _Draws:
    """How many requests a provider has received (for ``error_rate``), shared by its snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def take(self) -> int:
        """The number of requests before this one; counts this one."""
        with self._lock:
            self._count += 1
            return self._count - 1


def _check_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


def _tool_call(index: int, call: Mapping[str, Any]) -> Dict[str, Any]:
    function = call.get("function", call)
    arguments = function.get("arguments", "")
    return {
        "id": call.get("id", f"call_stub_{index}"),
        "type": "function",
        "function": {
            "name": function["name"],
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
        },
    }


def _tool_call_deltas(index: int, call: Dict[str, Any]) -> List[Dict[str, Any]]:
    """A call streamed as providers do: id and name first, then the arguments."""
    head = {"index": index, "id": call["id"], "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""}}
    tail = {"index": index, "function": {"arguments": call["function"]["arguments"]}}
    return [{"tool_calls": [head]}, {"tool_calls": [tail]}]
