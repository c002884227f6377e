"""A chat call from start to end, the one implementation behind every entry point: check what
the caller gave (:func:`prepare`, before anything is sent), then run it (:func:`run`): trim
report, provider plan (the Hub mapping; the router's catalogue when the request needs it or it is
cached: skipped providers, ``prefer`` order, prices), failover, each provider's answer and its cost.

The sync API iterates :func:`run` as it is. The async API runs the same generator in the bridge's
threads with ``cooperative=True`` (the body is read without blocking once content has begun, so
:data:`~hf_textgen.types.StreamItem` markers of what to wait for appear among the chunks,
for the bridge) and a
:class:`~hf_textgen.transport.Cancel` that stops it from the event loop's thread.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from . import build, capabilities, catalog, config, exchange, failover, hub, routing, selection, validate
from .capabilities import ModelCatalog
from .deadlines import Deadlines
from .errors import ConfigurationError, MissingAuthError, ModelNotSupportedError
from .messages import attach_media, trim_messages, warn_trimmed
from .transport import Cancel
from .types import Attempt, Cost, PreparedRequest, StreamItem, Timeouts, Trimmed, Usage

logger = logging.getLogger("hf_textgen")

Mapping_ = Dict[str, Dict[str, str]]
Price = Callable[[str, Usage], Optional[Cost]]


@dataclass(frozen=True)
class Route:
    """What a call will try, in order (requests, and ``Attempt(skipped=True)`` for providers the
    catalogue rules out), and how to price an answer (None: no catalogue, no cost)."""

    steps: Iterable[Union[PreparedRequest, Attempt]]
    price: Optional[Price] = None


@dataclass(frozen=True)
class ChatCall:
    """A checked call, nothing sent yet. ``route(plan)`` fetches the Hub mapping and the router's
    catalogue (within the plan's deadlines) and says what to try."""

    model: str
    route: Callable[[Deadlines], Route]
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
    prefer: Optional[str] = None,
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
    if prefer is not None:
        selection.check_prefer(prefer, "api_base=" if api_base else _fixed_order(model, provider))
        selection.check_catalog_use(settings.catalog, prefer)
    elif settings.prefer is not None and provider is None:
        prefer = settings.prefer  # the client's default, unless the call names its providers (which win)
    if provider is None:
        provider = settings.provider
    if api_base:
        if provider is not None:
            raise ConfigurationError("provider= has no meaning with api_base=: the server at api_base answers itself")
        request = build.api_base_request(api_base, model, body, token, {**settings.headers, **extra_headers})
        return ChatCall(model, lambda plan: Route([request]), timeouts, max_event_bytes, retry, trimmed)
    if not token:
        raise MissingAuthError(
            "no Hugging Face token: pass api_key=, set HF_TOKEN, or run `hf auth login` "
            f"(looked in HF_TOKEN, HUGGING_FACE_HUB_TOKEN and {config.token_file()})"
        )
    names = routing.check_routing(model, provider)
    router, router_headers = settings.router(), settings.router_headers(extra_headers)
    chosen_model: str = model

    def route(plan: Deadlines) -> Route:
        if routing.server_side(chosen_model, provider):  # the router chooses: a cached catalogue only prices it
            known = None if settings.catalog == "never" else capabilities.cached(router, chosen_model.partition(":")[0], token)
            return Route([build.server_side_request(chosen_model, body, token, router, router_headers)], _pricer(known))
        mapping = mapping_of(settings, models, chosen_model, token, plan)
        candidates = routing.choose_providers(chosen_model, mapping, names)
        wanted = selection.needs_of(body, count=False)
        if selection.wants_catalog(wanted, prefer, bool(names), settings.catalog):
            found = capabilities.lookup(router, chosen_model, token, plan, router_headers)
            known = found if isinstance(found, ModelCatalog) else None
        else:
            known = None if settings.catalog == "never" else capabilities.cached(router, chosen_model, token)
        needs = selection.needs_of(body) if known is not None else wanted
        steps = selection.plan(candidates, known, needs, prefer or "order", named=bool(names))
        return Route(_steps(chosen_model, steps, body, token, router, router_headers), _pricer(known))

    return ChatCall(model, route, timeouts, max_event_bytes, retry, trimmed)


def _fixed_order(model: str, provider: routing.ProviderChoice) -> str:
    """What in a call's own arguments fixes the provider order already ('' when nothing does)."""
    if provider == "auto" or ":" in model:
        return "server-side routing (provider='auto' or a ':policy' suffix)"
    return "explicit provider= names" if provider is not None else ""


def _pricer(known: Optional[ModelCatalog]) -> Optional[Price]:
    if known is None:
        return None
    return lambda provider, usage: selection.cost(known.get(provider), usage)


def _steps(
    model: str, steps: List[selection.Step], body: Mapping[str, Any], token: Optional[str], router: str, headers: Mapping[str, str]
) -> List[Union[PreparedRequest, Attempt]]:
    """The plan as requests and skipped Attempts; every provider skipped raises, naming each."""
    if steps and all(step.skip for step in steps):
        reasons = "; ".join(f"{step.provider}: {step.skip}" for step in steps)
        raise ModelNotSupportedError(
            f"no provider of model {model!r} can serve this request, by the router's catalogue: {reasons}. "
            "Drop tools / response_format, shorten the conversation or max_tokens, or name a provider with provider= to try it anyway"
        )
    planned: List[Union[PreparedRequest, Attempt]] = []
    for step in steps:
        if step.caution:
            logger.warning("trying provider %s for %s as you named it, although %s", step.provider, model, step.caution)
        if step.skip:
            logger.debug("skipping provider %s for %s: %s", step.provider, model, step.skip)
            planned.append(Attempt(step.provider, None, step.skip, skipped=True))
        else:
            planned.append(build.provider_request(step.provider, step.provider_id, model, body, token, router, headers))
    return planned


def run(call: ChatCall, *, cooperative: bool = False, cancel: Optional[Cancel] = None) -> Iterator[StreamItem]:
    """The call's chunks (with ``cooperative``, also what to wait for, for the async bridge). Its
    deadlines start at the first step of the iteration, Hub look-ups included."""
    watch = cancel.watch if cancel is not None else None

    def start() -> Tuple[Iterable[Union[PreparedRequest, Attempt]], Callable[[PreparedRequest], Iterator[StreamItem]]]:
        plan = Deadlines.start(call.timeouts)
        route = call.route(plan)

        def answer(request: PreparedRequest) -> Iterator[StreamItem]:
            return exchange.answer(
                request, plan, watch=watch, cooperative=cooperative, max_event_bytes=call.max_event_bytes, price=route.price
            )

        return route.steps, answer

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
