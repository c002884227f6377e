"""A chat call from start to end, the one implementation behind every entry point: check what
the caller gave (:func:`prepare`, before anything is sent), then run it (:func:`run`): trim
report, provider plan, failover, each provider's answer.

The sync API iterates :func:`run` as it is. The async API runs the same generator in the bridge's
threads with ``cooperative=True`` (the body is read without blocking once content has begun, so
:data:`~hf_textgen.types.StreamItem` markers of what to wait for appear among the chunks,
for the bridge) and a
:class:`~hf_textgen.transport.Cancel` that stops it from the event loop's thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple

from . import build, catalog, config, exchange, failover, hub, routing, validate
from .deadlines import Deadlines
from .errors import ConfigurationError, MissingAuthError
from .messages import attach_media, trim_messages, warn_trimmed
from .transport import Cancel
from .types import PreparedRequest, StreamItem, Timeouts, Trimmed

Mapping_ = Dict[str, Dict[str, str]]


@dataclass(frozen=True)
class ChatCall:
    """A checked call, nothing sent yet. ``requests(plan)`` lists the requests to try, fetching the
    Hub mapping lazily (within the plan's deadlines)."""

    model: str
    requests: Callable[[Deadlines], Iterator[PreparedRequest]]
    timeouts: Timeouts
    max_event_bytes: int
    retry_rate_limited: float
    trimmed: Optional[Trimmed]


def prepare(
    settings: config.Settings,
    models: Any,  # aliases, defaults and static mappings: HuggingFaceAPI (its class attributes)
    model: Optional[str],
    messages: Any,
    *,
    api_base: Optional[str],
    api_key: Optional[str],
    max_tokens: Optional[int],
    max_inputs_lenght: Optional[int],
    media: Any,
    provider: routing.ProviderChoice,
    stream: bool,
    timeout: config.TimeoutLike,
    extra_body: Optional[Mapping[str, Any]],
    max_event_bytes: int,
    retry_rate_limited: float,
    headers: Optional[Mapping[str, str]],
    params: Mapping[str, Any],
) -> ChatCall:
    """Check every value and build the call; raises ``ConfigurationError`` (or ``MissingAuthError``
    without a token) before anything is sent."""
    validate.check_params(params)
    validate.check_model(model)
    validate.check_call(
        stream=stream, max_tokens=max_tokens, max_inputs_lenght=max_inputs_lenght, max_event_bytes=max_event_bytes,
        extra_body=extra_body, api_base=api_base, api_key=api_key,
    )
    retry = failover.check_retry_cap(retry_rate_limited)
    messages = validate.check_messages(messages)
    items = validate.check_media(media)
    extra_headers = validate.check_headers(headers)
    if not model and items:
        model = models.default_vision_model
    model = models.get_model(model)
    messages, trimmed = trim_messages(messages, max_inputs_lenght)
    if trimmed is not None:
        warn_trimmed(trimmed)
    messages = attach_media(messages, items)
    timeouts = settings.timeouts(timeout)
    token = settings.token(api_key)
    body = build.chat_body(messages, max_tokens, stream, params, extra_body)
    if provider is None:
        provider = settings.provider
    if api_base:
        if provider is not None:
            raise ConfigurationError("provider= has no meaning with api_base=: the server at api_base answers itself")
        request = build.api_base_request(api_base, model, body, token, {**settings.headers, **extra_headers})
        return ChatCall(model, lambda plan: iter([request]), timeouts, max_event_bytes, retry, trimmed)
    if not token:
        raise MissingAuthError(
            "no Hugging Face token: pass api_key=, set HF_TOKEN, or run `hf auth login` "
            f"(looked in HF_TOKEN, HUGGING_FACE_HUB_TOKEN and {config.token_file()})"
        )
    names = routing.check_routing(model, provider)
    router, router_headers = settings.router(), settings.router_headers(extra_headers)
    chosen_model: str = model

    def requests(plan: Deadlines) -> Iterator[PreparedRequest]:
        if routing.server_side(chosen_model, provider):
            yield build.server_side_request(chosen_model, body, token, router, router_headers)
            return
        mapping = mapping_of(settings, models, chosen_model, token, plan)
        for name, provider_id in routing.choose_providers(chosen_model, mapping, names):
            yield build.provider_request(name, provider_id, chosen_model, body, token, router, router_headers)

    return ChatCall(model, requests, timeouts, max_event_bytes, retry, trimmed)


def run(call: ChatCall, *, cooperative: bool = False, cancel: Optional[Cancel] = None) -> Iterator[StreamItem]:
    """The call's chunks (with ``cooperative``, also what to wait for, for the async bridge). Its
    deadlines start at the first step of the iteration, Hub look-ups included."""
    watch = cancel.watch if cancel is not None else None

    def start() -> Tuple[Iterator[PreparedRequest], Callable[[PreparedRequest], Iterator[StreamItem]]]:
        plan = Deadlines.start(call.timeouts)

        def answer(request: PreparedRequest) -> Iterator[StreamItem]:
            return exchange.answer(request, plan, watch=watch, cooperative=cooperative, max_event_bytes=call.max_event_bytes)

        return call.requests(plan), answer

    return failover.run(  # the generator itself, not wrapped: one layer less for every chunk
        call.model,
        start,
        cancel.is_set if cancel is not None else None,
        retry_rate_limited=call.retry_rate_limited,
        pause=cancel.pause if cancel is not None else None,
        prelude=() if call.trimmed is None else (call.trimmed,),
    )


def mapping_of(settings: config.Settings, models: Any, model: str, token: Optional[str], plan: Deadlines, refresh: bool = False) -> Mapping_:
    """The model's providers: a static ``provider_mapping`` entry, else the Hub's (cached)."""
    model = models.get_model(model)
    if model in models.provider_mapping:
        return catalog.normalize_mapping(models.provider_mapping[model], model)
    return hub.get_mapping(model, token, plan, settings.hub(), refresh)
