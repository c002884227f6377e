"""An offline stand-in of the Hugging Face Hub and the Inference Providers router, for your tests.

A real HTTP/1.1 server on loopback that lists models, returns provider mappings and answers
OpenAI-compatible chat completions (streamed or not) the way each provider's route does, with
errors, broken streams and delays on demand. Everything is deterministic and needs no network::

    import os
    from hf_textgen.testing import Provider, StubServer

    models = {"meta-llama/Llama-3.3-70B-Instruct": [
        Provider("novita", error_status=402),     # "credits exhausted": your app should fail over
        Provider("together", text="Hi there!"),   # streams the deltas "Hi", " there", "!"
    ]}
    with StubServer(models) as stub:
        os.environ.update(stub.env())             # HF_ENDPOINT, HF_TEXTGEN_ROUTER_URL, HF_TOKEN
        ...                                       # run the code under test
        assert [r.path for r in stub.requests][-1] == "/together/v1/chat/completions"

With pytest, the ``hf_stub`` fixture (installed with hf_textgen) starts one with
:func:`default_models` and sets those variables for the test::

    def test_greeting(hf_stub):
        hf_stub.provider("meta-llama/Llama-3.3-70B-Instruct", "together").update(text="Bonjour !")
        ...

From a shell, ``python -m hf_textgen.testing [--port N] [--mapping-shape dict|list]`` (also
``hf-textgen serve-stub``) serves the default configuration until Ctrl-C.

What it speaks, hub and router on one base URL (``stub.url``):

- ``GET /api/models?...``: listing, pages of ``min(limit, page_size)`` linked by ``Link: <...>; rel="next"``;
  ``inference_provider=all|<name>[,...]`` keeps the models that provider serves;
- ``GET /api/models/{model_id}``: ``{"id", "inferenceProviderMapping"}``, dict or list shape;
- ``POST /{provider}{route}``: each provider's route (:data:`ROUTES`), body ``model`` = its ``providerId``;
- ``POST /v1/chat/completions``: server-side routing, ``model`` = ``org/name[:fastest|:cheapest|
  :preferred|:<provider>]``, answered with an ``x-inference-provider`` header;
- ``GET /v1/models``: the OpenAI-style list.

Router requests need ``Authorization: Bearer hf_...`` (``require_token=False`` turns that off). Every
request is recorded in ``stub.requests`` with the token redacted. Standard library only.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

__all__ = [
    "DEFAULT_ROUTE",
    "ROUTES",
    "Provider",
    "RecordedRequest",
    "StubServer",
    "default_models",
    "main",
    "route_for",
    "split_text",
]

logger = logging.getLogger(__name__)

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
ERROR_FRAMES = ("data", "event")
_CREATED = 1700000000
_HF_TOKEN = re.compile(r"hf_\w+")
_DELTA = re.compile(r"\s*[\w']+|\s*[^\w\s]+|\s+")
_DEFAULT_ERROR_MESSAGES = {
    401: "Invalid credentials in Authorization header",
    402: "You have exceeded your monthly included credits for Inference Providers. "
    "Subscribe to PRO to get 20x more monthly included credits.",
    403: "You have reached your monthly spending limit for Inference Providers.",
    429: "Rate limit reached. Please retry later.",
}


def route_for(provider: str, model_id: str) -> str:
    """The path the router serves ``provider`` on for ``model_id``: ``/{provider}{route}``."""
    return f"/{provider}" + ROUTES.get(provider, DEFAULT_ROUTE).format(model=model_id)


def split_text(text: str) -> List[str]:
    """Split ``text`` into word-sized deltas that join back exactly: ``["Hello", " from", " together", "!"]``."""
    return _DELTA.findall(text)


def default_provider_id(provider: str, model_id: str) -> str:
    """The ``providerId`` a :class:`Provider` gets when none is given (the Hub id for hf-inference)."""
    return model_id if provider == "hf-inference" else f"{provider}/{model_id.rsplit('/', 1)[-1].lower()}"


# --------------------------------------------------------------------------------------- behaviour
@dataclass
class Provider:
    """How one provider answers for one model. Change it at run time with :meth:`update`.

    Mapping: ``name``, ``provider_id`` (default :func:`default_provider_id`), ``status`` (``live``,
    ``staging``, ``error``), ``task``.
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
    ``error_in_stream=N`` sends ``{"error": {...}}`` after N deltas (as ``data:``, or ``event: error``
    with ``error_frame="event"``) and ends the stream; ``cut_after=N`` closes the connection after N
    deltas (no ``finish_reason``, no ``[DONE]``; a non-stream request gets no answer at all).
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
    error_in_stream: Optional[int] = None
    error_frame: str = "data"
    cut_after: Optional[int] = None
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"invalid provider name {self.name!r}")
        if self.text is None:
            self.text = f"Hello from {self.name}!"
        for name, value, choices in (
            ("framing", self.framing, FRAMINGS),
            ("error_body", self.error_body, tuple(_ERROR_BODIES)),
            ("error_frame", self.error_frame, ERROR_FRAMES),
        ):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}, not {value!r}")

    def update(self, **changes: Any) -> Provider:
        """Change fields in place, thread-safely; an unknown field raises ``TypeError``. Returns self."""
        with self._lock:
            checked = dataclasses.replace(self, **changes)
            for name in changes:
                setattr(self, name, getattr(checked, name))
        return self

    def snapshot(self) -> Provider:
        """A consistent copy, so one answer never mixes old and new settings."""
        with self._lock:
            return dataclasses.replace(self)

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


def default_models(delay: float = 0.03) -> Dict[str, List[Provider]]:
    """The configuration of the CLI and the demo (``delay`` between stream events; the fixture uses 0).

    Llama 3.3 70B: novita answers 402, together streams a greeting; Qwen 2.5 72B on hf-inference;
    DeepSeek-R1 on fireworks-ai with reasoning; the vision model Qwen 2.5 VL 7B on nebius (status
    ``error``) then hyperbolic.
    """
    return {
        "meta-llama/Llama-3.3-70B-Instruct": [
            Provider("novita", provider_id="meta-llama/llama-3.3-70b-instruct", error_status=402),
            Provider("together", provider_id="meta-llama/Llama-3.3-70B-Instruct-Turbo", delay=delay, text=(
                "Hello! I am Llama 3.3 70B, played by the hf_textgen offline stub. novita answered "
                "402 (credits exhausted), so the request failed over to together, which streams this "
                "reply one word per server-sent event. Nothing left your machine."
            )),
        ],
        "Qwen/Qwen2.5-72B-Instruct": [
            Provider("hf-inference", text="Hi! Qwen 2.5 72B here, served by hf-inference."),
        ],
        "deepseek-ai/DeepSeek-R1": [
            Provider("fireworks-ai", provider_id="accounts/fireworks/models/deepseek-r1", delay=delay,
                     reasoning="The user says hello. A short, friendly greeting fits.",
                     text="Hello! How can I help you today?"),
        ],
        "Qwen/Qwen2.5-VL-7B-Instruct": [
            Provider("nebius", provider_id="Qwen/Qwen2.5-VL-7B-Instruct-fast", status="error"),
            Provider("hyperbolic", provider_id="Qwen/Qwen2.5-VL-7B-Instruct",
                     text="The image shows a cat asleep on a sunny windowsill."),
        ],
    }


# ----------------------------------------------------------------------------------- answers (pure)
@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class _Stream:
    provider: Provider
    events: List[Optional[bytes]]  # None: hang up here
    headers: Dict[str, str]


def _json_reply(status: int, payload: Any, headers: Optional[Mapping[str, str]] = None) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(),
                  {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def _html(status: int, message: str) -> bytes:
    title = f"{status} {_phrase(status)}"
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{escape(message)}</p></body></html>".encode()


_ERROR_BODIES: Dict[str, Callable[[int, str], _Reply]] = {
    "json": lambda status, message: _json_reply(status, {"error": message}),
    "json_object": lambda status, message: _json_reply(
        status, {"error": {"message": message, "type": "invalid_request_error", "code": status}}),
    "html": lambda status, message: _Reply(status, _html(status, message), {"Content-Type": "text/html; charset=utf-8"}),
    "text": lambda status, message: _Reply(status, message.encode(), {"Content-Type": "text/plain; charset=utf-8"}),
    "header": lambda status, message: _Reply(status, b"", {"X-Error-Message": message}),
}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _error_reply(provider: Provider) -> _Reply:
    status = provider.error_status or 500
    message = provider.error_message or _DEFAULT_ERROR_MESSAGES.get(status) or _phrase(status)
    reply = _ERROR_BODIES[provider.error_body](status, message)
    if provider.retry_after is not None:
        reply.headers["Retry-After"] = str(provider.retry_after)
    return reply


def _envelope(kind: str, provider: Provider, choices: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"id": f"chatcmpl-stub-{provider.name}", "object": kind, "created": _CREATED,
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


def _answer_chat(provider: Provider, request: Mapping[str, Any]) -> Union[_Reply, _Stream, None]:
    """What ``provider`` answers; ``None``: hang up without an answer."""
    headers = {"x-inference-provider": provider.name}
    if provider.error_status:
        reply = _error_reply(provider)
    elif request.get("stream"):
        return _Stream(provider, stream_events(provider, request),
                       {**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    elif provider.cut_after is not None:
        return None
    elif provider.error_in_stream is not None:
        reply = _json_reply(200, _in_band_error(provider))
    else:
        reply = _json_reply(200, completion(provider, request))
    reply.headers.update(headers)
    reply.delay = provider.delay
    return reply


# ------------------------------------------------------------------------------------------- server
@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received: ``path`` includes the query; ``body`` is parsed JSON when it is JSON."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Any


def _redacted(name: str, value: str) -> str:
    if name.lower() != "authorization":
        return value
    return "Bearer ***" if value.lower().startswith("bearer ") else "***"


def _parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else raw
    except ValueError:
        return raw


class StubServer:
    """The offline Hub + router. ``with StubServer(models) as stub:`` or ``start()`` / ``stop()``.

    ``models`` maps a Hub id to its providers in mapping order (default :func:`default_models`);
    each :class:`Provider` is copied in with its ``provider_id`` filled in. ``mapping_shape``
    (``dict`` or ``list``) and ``page_size`` may be changed while it runs. ``require_token``: router
    calls need ``Bearer hf_...`` (exactly ``token`` when given); a Hub call with a bad token gets 401 too.
    """

    def __init__(
        self,
        models: Optional[Mapping[str, Iterable[Provider]]] = None,
        *,
        mapping_shape: str = "dict",
        page_size: int = 50,
        require_token: bool = True,
        token: Optional[str] = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if mapping_shape not in MAPPING_SHAPES:
            raise ValueError(f"mapping_shape must be one of {MAPPING_SHAPES}, not {mapping_shape!r}")
        self.mapping_shape = mapping_shape
        self.page_size = page_size
        self.require_token = require_token
        self.token = token
        self.host = host
        self._port = port
        self._lock = threading.Lock()
        self._models: Dict[str, List[Provider]] = {}
        self._requests: List[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        for model_id, providers in (default_models() if models is None else models).items():
            self.set_model(model_id, providers)

    # configuration
    def set_model(self, model_id: str, providers: Iterable[Provider]) -> List[Provider]:
        """Add or replace a model; returns the stored providers (update those to change answers)."""
        stored = [dataclasses.replace(p, provider_id=p.provider_id or default_provider_id(p.name, model_id))
                  for p in providers]
        with self._lock:
            self._models[model_id] = stored
        return list(stored)

    def remove_model(self, model_id: str) -> None:
        """Forget a model: the Hub answers 404 for it from now on."""
        with self._lock:
            del self._models[model_id]

    def provider(self, model_id: str, name: str) -> Provider:
        """The stored provider ``name`` of ``model_id``; ``.update(...)`` it to change its answers."""
        with self._lock:
            found = [p for p in self._models.get(model_id, ()) if p.name == name]
        if not found:
            raise KeyError(f"{model_id!r} has no provider {name!r}")
        return found[0]

    @property
    def models(self) -> Dict[str, List[Provider]]:
        """A copy of the configuration: Hub id → stored providers."""
        with self._lock:
            return {model_id: list(providers) for model_id, providers in self._models.items()}

    # lifecycle
    def start(self) -> StubServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("the stub server is already running")
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self._port), self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hf-textgen-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, interrupt streams and close every connection. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the stub server is not running: call start() first")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: both the Hub and the router."""
        return f"http://{self.host}:{self.port}"

    hub_url = url
    router_url = url

    def env(self, token: str = STUB_TOKEN) -> Dict[str, str]:
        """The environment that points hf_textgen (or huggingface_hub) at this stub."""
        return {"HF_ENDPOINT": self.hub_url, "HF_TEXTGEN_ROUTER_URL": self.router_url, "HF_TOKEN": token}

    # records
    @property
    def requests(self) -> List[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, method: str, path: str, headers: Iterable[Tuple[str, str]], raw: bytes) -> None:
        recorded = RecordedRequest(method, path, {k: _redacted(k, v) for k, v in headers}, _parse_body(raw))
        with self._lock:
            self._requests.append(recorded)

    # answers
    def _answer(self, method: str, path: str, authorization: Optional[str], raw: bytes) -> Union[_Reply, _Stream, None]:
        """The answer to one request (the handler only does the I/O)."""
        url = urlsplit(path)
        models = self._snapshot()
        if (method == "POST" or authorization) and not self._authorized(authorization):
            return _json_reply(401, {"error": _DEFAULT_ERROR_MESSAGES[401]})
        if method == "GET":
            return self._get(url.path, url.query, models)
        request = _parse_body(raw)
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            return _json_reply(400, {"error": "The body must be a JSON object with a 'messages' list"})
        if url.path == DEFAULT_ROUTE:
            target = _auto_route(request.get("model"), models)
        else:
            target = _provider_route(url.path, request.get("model"), models)
        return target if isinstance(target, _Reply) else _answer_chat(target, request)

    def _snapshot(self) -> Dict[str, List[Provider]]:
        with self._lock:
            return {model_id: [p.snapshot() for p in providers] for model_id, providers in self._models.items()}

    def _authorized(self, authorization: Optional[str]) -> bool:
        if not self.require_token:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return token == self.token if self.token else bool(_HF_TOKEN.fullmatch(token))

    def _get(self, path: str, query: str, models: Dict[str, List[Provider]]) -> _Reply:
        if path == "/api/models":
            return self._listing(query, models)
        if path.startswith("/api/models/"):
            model_id = unquote(path[len("/api/models/"):])
            if model_id not in models:
                return _json_reply(404, {"error": "Repository Not Found"},
                                   {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository Not Found"})
            return _json_reply(200, self._model_info(model_id, models[model_id]))
        if path == "/v1/models":
            return _json_reply(200, {"object": "list", "data": [
                {"id": model_id, "object": "model", "created": _CREATED, "owned_by": model_id.split("/")[0],
                 "providers": [{"provider": p.name, "status": p.status} for p in providers]}
                for model_id, providers in models.items() if providers]})
        return _json_reply(404, {"error": f"Not Found: GET {path}"})

    def _model_info(self, model_id: str, providers: List[Provider]) -> Dict[str, Any]:
        entries = [{"provider": p.name, "providerId": p.provider_id, "status": p.status, "task": p.task}
                   for p in providers]
        if self.mapping_shape == "dict":
            return {"id": model_id, "inferenceProviderMapping": {
                entry["provider"]: {k: v for k, v in entry.items() if k != "provider"} for entry in entries}}
        return {"id": model_id, "inferenceProviderMapping": entries}

    def _listing(self, query: str, models: Dict[str, List[Provider]]) -> _Reply:
        params = parse_qsl(query, keep_blank_values=True)
        options = dict(params)
        try:
            size = max(1, min(int(options.get("limit") or self.page_size), self.page_size))
            start = int(options.get("cursor") or 0)
        except ValueError:
            return _json_reply(400, {"error": "Invalid 'limit' or 'cursor'"})
        wanted = options.get("inference_provider")
        ids = [model_id for model_id, providers in models.items()
               if wanted is None or any(wanted == "all" or p.name in wanted.split(",") for p in providers)]
        headers = {}
        if start + size < len(ids):
            following = [(k, v) for k, v in params if k != "cursor"] + [("cursor", str(start + size))]
            headers["Link"] = f'<{self.url}/api/models?{urlencode(following)}>; rel="next"'
        page = [self._model_info(model_id, models[model_id]) for model_id in ids[start:start + size]]
        return _json_reply(200, page, headers)


def _auto_route(model: Any, models: Dict[str, List[Provider]]) -> Union[Provider, _Reply]:
    """Server-side routing: ``org/name[:policy]`` → the provider the router would pick."""
    model_id, _, policy = str(model or "").partition(":")
    if model_id not in models:
        return _json_reply(404, {"error": {"message": f"The requested model '{model_id}' does not exist.",
                                           "type": "invalid_request_error", "param": "model",
                                           "code": "model_not_found"}})
    policy = policy or "fastest"
    if policy in POLICIES:
        usable = [p for p in models[model_id] if p.status == "live" and p.task == "conversational"]
    else:
        usable = [p for p in models[model_id] if p.name == policy]
    if not usable:
        return _json_reply(400, {"error": {"message": f"Model '{model_id}' is not supported by any provider "
                                                      f"matching '{policy}'.", "type": "invalid_request_error"}})
    return usable[0]


def _provider_route(path: str, model: Any, models: Dict[str, List[Provider]]) -> Union[Provider, _Reply]:
    """``/{provider}{route}``: the provider serving ``model`` (its providerId) on that exact route."""
    name = path.split("/")[1]
    candidates = [(model_id, p) for model_id, providers in models.items() for p in providers if p.name == name]
    if not candidates:
        return _json_reply(404, {"error": f"Not Found: no provider {name!r} serves POST {path}"})
    on_route = [p for model_id, p in candidates if route_for(name, model_id) == path]
    if not on_route:
        expected = f"/{name}" + ROUTES.get(name, DEFAULT_ROUTE)
        return _json_reply(404, {"error": f"Not Found: POST {path} (provider {name!r} serves {expected})"})
    for provider in on_route:
        if provider.provider_id == model:
            return provider
    known = sorted({str(p.provider_id) for p in on_route})
    return _json_reply(400, {"error": f"Model {model!r} is not served by provider {name!r} here; "
                                      f"use its providerId: {', '.join(known)}"})


class _HTTPServer(ThreadingHTTPServer):
    """Threaded server that can close the connections it still holds (idle keep-alive, open streams)."""

    daemon_threads = True

    def __init__(self, address: Tuple[str, int], stub: StubServer) -> None:
        self.stub = stub
        self._open: Dict[socket.socket, Optional[threading.Thread]] = {}
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open[request] = None
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open[request] = threading.current_thread()
        super().process_request_thread(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self, timeout: float = 5.0) -> None:
        with self._open_lock:
            still_open = list(self._open.items())
        for connection, _ in still_open:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in still_open:
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)


class _Handler(BaseHTTPRequestHandler):
    """The I/O: read a request, record it, write what ``StubServer._answer`` decided."""

    protocol_version = "HTTP/1.1"
    server_version = "hf-textgen-stub"
    timeout = 300
    server: _HTTPServer

    def _dispatch(self) -> None:
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        stub._record(self.command, self.path, self.headers.items(), raw)
        try:
            answer = stub._answer(self.command, self.path, self.headers.get("Authorization"), raw)
        except Exception as exc:  # a stub bug: say so instead of dropping the connection
            logger.exception("stub failed on %s %s", self.command, self.path)
            answer = _json_reply(500, {"error": f"hf_textgen stub error: {exc!r}"})
        try:
            if isinstance(answer, _Stream):
                self._send_stream(answer)
            elif answer is None or (answer.delay and stub._stopping.wait(answer.delay)):
                self.close_connection = True
            else:
                self._send_head(answer.status, {**answer.headers, "Content-Length": str(len(answer.body))})
                self.wfile.write(answer.body)
        except OSError:  # the client went away, or stop() closed the connection
            self.close_connection = True

    do_GET = do_POST = _dispatch

    def _send_head(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_stream(self, stream: _Stream) -> None:
        chunked = stream.provider.framing == "chunked"
        framing = {"Transfer-Encoding": "chunked"} if chunked else {"Connection": "close"}
        self._send_head(200, {**stream.headers, **framing})
        stopping = self.server.stub._stopping
        for index, event in enumerate(stream.events):
            if event is None or (index and stopping.wait(stream.provider.delay)):
                self.close_connection = True
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event) if chunked else event)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


# ---------------------------------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Serve :func:`default_models` in the foreground until Ctrl-C or SIGTERM; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m hf_textgen.testing",
                                     description="Offline stand-in of the Hugging Face Hub and router.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--mapping-shape", choices=MAPPING_SHAPES, default="dict",
                        help="shape of inferenceProviderMapping (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    stub = StubServer(host=args.host, port=args.port, mapping_shape=args.mapping_shape)
    try:
        stub.start()
    except OSError as exc:
        print(f"hf_textgen stub: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()
    restore = _on_sigterm(done.set)
    try:
        exports = " ".join(f"{name}={value}" for name, value in stub.env().items())
        print(f"hf_textgen stub serving on {stub.url} ; export {exports} ; Ctrl-C to stop", flush=True)
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        stub.stop()
    return 0


def _on_sigterm(handler: Callable[[], None]) -> Callable[[], None]:
    """Call ``handler`` on SIGTERM (main thread only); returns what restores the previous handler."""
    try:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: handler())
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
