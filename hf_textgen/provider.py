"""``HuggingFaceAPI``: the seed's provider class. The sync methods are the implementation; the
async ones (``get_mapping``, ``create_async_generator``, ``get_models_async``) run them in worker
threads through :mod:`hf_textgen.aio`, imported only when first used."""
from __future__ import annotations

import logging
import time
import warnings
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, Sequence, Union

from . import build, catalog, config, exchange, failover, hub, sse
from .config import TimeoutLike
from .errors import ConfigurationError, MissingAuthError, ModelNotSupportedError
from .results import AsyncChatStream, ChatResult, ChatStream
from .messages import attach_media, trim_messages, trimming_warning, validate_messages
from .transport import Abort
from .types import Chunk, PreparedRequest, Timeouts

logger = logging.getLogger("hf_textgen")

ProviderChoice = Union[None, str, Sequence[str]]


class HuggingFaceAPI:
    """Chat completions through Hugging Face Inference Providers, with provider failover."""

    label = "HuggingFace (Text Generation)"
    parent = "HuggingFace"
    url = config.DEFAULT_HUB_URL
    api_base = f"{config.DEFAULT_ROUTER_URL}/v1"
    working = True
    needs_auth = True
    default_model = catalog.DEFAULT_MODEL
    default_vision_model = catalog.DEFAULT_VISION_MODEL
    vision_models: List[str] = list(catalog.VISION_MODELS)
    model_aliases: Dict[str, str] = dict(catalog.MODEL_ALIASES)
    fallback_models: List[str] = list(catalog.FALLBACK_MODELS)
    provider_mapping: Dict[str, Dict[str, Dict[str, str]]] = {}

    @classmethod
    def get_model(cls, model: Optional[str], **_seed_kwargs: Any) -> str:
        """Alias -> Hub id; empty -> ``default_model``; an unknown name comes back unchanged. No I/O."""
        if not model:
            return cls.default_model
        name, colon, policy = model.partition(":")  # "llama-3.3-70b:together" keeps its routing suffix
        return cls.model_aliases.get(name, name) + colon + policy if name in cls.model_aliases else model

    @classmethod
    def get_models(
        cls,
        refresh: bool = False,
        api_key: Optional[str] = None,
        timeout: TimeoutLike = None,
        *,
        on_fallback: Optional[Callable[[Exception], None]] = None,
    ) -> List[str]:
        """Models with a live conversational provider, plus ``provider_mapping`` keys (cached).

        Never raises: on any failure returns ``fallback_models`` (and does not cache that), after
        calling ``on_fallback(error)`` when given."""
        token = config.find_token(api_key)
        timeouts = config.make_timeouts(timeout)
        return hub.list_models(token, timeouts, list(cls.provider_mapping), cls.fallback_models, refresh, on_fallback)

    @classmethod
    def get_mapping_sync(cls, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None) -> Dict[str, Dict[str, str]]:
        """The model's providers: ``{provider: {"providerId", "status", "task"}}`` in preferred order."""
        model = cls.get_model(model)
        if model in cls.provider_mapping:
            return catalog.normalize_mapping(cls.provider_mapping[model], model)
        return hub.get_mapping(model, config.find_token(api_key), config.make_timeouts(timeout))

    @classmethod
    async def get_mapping(cls, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None) -> Dict[str, Dict[str, str]]:
        """Awaitable :meth:`get_mapping_sync` (runs in a worker thread)."""
        from . import aio

        return await aio.run_sync(cls.get_mapping_sync, model, api_key, timeout)

    @classmethod
    async def get_models_async(cls, refresh: bool = False, api_key: Optional[str] = None, timeout: TimeoutLike = None) -> List[str]:
        """Awaitable :meth:`get_models` (runs in a worker thread)."""
        from . import aio

        return await aio.run_sync(cls.get_models, refresh, api_key, timeout)

    @classmethod
    def create_completion(
        cls,
        model: Optional[str],
        messages: List[Dict[str, Any]],
        api_base: Optional[str] = None,
        api_key: Optional[str] = None,
        max_tokens: Optional[int] = 2048,
        max_inputs_lenght: Optional[int] = 10000,
        media: Optional[Sequence[Any]] = None,
        *,
        provider: ProviderChoice = None,
        stream: bool = True,
        timeout: TimeoutLike = None,
        extra_body: Optional[Dict[str, Any]] = None,
        max_event_bytes: int = sse.MAX_EVENT_BYTES,
        retry_rate_limited: float = 0.0,
        abort: Optional[Abort] = None,
        **params: Any,
    ) -> Iterator[Chunk]:
        """Stream a chat completion: ``str`` text deltas and typed chunks, with provider failover.

        Input is checked now (bad input raises here, before anything is sent); the network is used
        when iteration starts. ``retry_rate_limited`` (seconds, default 0 = off): a 429 whose
        ``Retry-After`` is at most that long is waited out and retried once on the same provider.
        ``abort`` lets another thread stop the stream (used by the async API).
        """
        build.check_params(params)
        retry_rate_limited = failover.check_retry_cap(retry_rate_limited)
        messages = validate_messages(messages)
        if not model and media:
            model = cls.default_vision_model
        model = cls.get_model(model)
        messages, trimmed = trim_messages(messages, max_inputs_lenght)
        if trimmed is not None:
            warnings.warn(trimming_warning(trimmed), stacklevel=2)
        messages = attach_media(messages, media or [])
        timeouts = config.make_timeouts(timeout)
        token = config.find_token(api_key)
        body = build.chat_body(messages, max_tokens, stream, params, extra_body)
        if api_base:
            if provider is not None:
                raise ConfigurationError("provider= has no meaning with api_base=: the server at api_base answers itself")
            requests_: Any = [build.api_base_request(api_base, model, body, token)]
        else:
            if not token:
                raise MissingAuthError(
                    "no Hugging Face token: pass api_key=, set HF_TOKEN, or run `hf auth login` "
                    f"(looked in HF_TOKEN, HUGGING_FACE_HUB_TOKEN and {config.token_file()})"
                )
            names = check_routing(model, provider)
            requests_ = cls._plan(model, provider, names, body, token, timeouts)

        call_started: Optional[float] = None

        def answer(request: PreparedRequest) -> Iterator[Chunk]:
            nonlocal call_started  # deadlines count from the first provider: failover does not restart them
            if call_started is None:
                call_started = time.monotonic()
            return exchange.answer(request, timeouts, abort, max_event_bytes, call_started)

        stopped = (lambda: abort.requested) if abort is not None else None
        pause = abort.pause if abort is not None else None
        chunks = failover.run(model, requests_, answer, stopped, retry_rate_limited=retry_rate_limited, pause=pause)
        return chunks if trimmed is None else _prefixed(trimmed, chunks)

    @classmethod
    def create_async_generator(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> AsyncIterator[Chunk]:
        """``async for chunk in ...``: :meth:`create_completion` run in threads (asyncio or trio): a
        pooled worker until the content begins, then the shared reactor (see :mod:`hf_textgen.aio`).

        Same parameters and chunks. Leaving early (break, aclose, cancellation, timeouts) closes the
        connection at once, even while the server is stalled."""
        from . import aio

        abort = Abort(cooperative=True)
        completion = cls.create_completion(model, messages, *args, abort=abort, **kwargs)
        return aio.iterate_in_thread(lambda: completion, abort)

    @classmethod
    def stream(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> ChatStream:
        """:meth:`create_completion` as a :class:`~hf_textgen.results.ChatStream`: iterate its chunks
        (or ``.text()``), then ``.result()`` is the :class:`~hf_textgen.results.ChatResult`."""
        return ChatStream(cls.create_completion(model, messages, *args, **kwargs), cls._model_name(model, kwargs))

    @classmethod
    def complete(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> ChatResult:
        """The whole answer as one :class:`~hf_textgen.results.ChatResult` (same parameters as
        :meth:`create_completion`)."""
        with cls.stream(model, messages, *args, **kwargs) as stream:
            return stream.result()

    @classmethod
    def stream_async(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> AsyncChatStream:
        """:meth:`create_async_generator` as an :class:`~hf_textgen.results.AsyncChatStream`
        (``async for``, ``await .result()``), on asyncio and trio."""
        return AsyncChatStream(cls.create_async_generator(model, messages, *args, **kwargs), cls._model_name(model, kwargs))

    @classmethod
    async def complete_async(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> ChatResult:
        """Awaitable :meth:`complete`, on asyncio and trio."""
        async with cls.stream_async(model, messages, *args, **kwargs) as stream:
            return await stream.result()

    @classmethod
    def _model_name(cls, model: Optional[str], kwargs: Dict[str, Any]) -> str:
        return cls.get_model(model or (cls.default_vision_model if kwargs.get("media") else None))

    @classmethod
    def _plan(
        cls, model: str, provider: ProviderChoice, names: List[str], body: Dict[str, Any], token: str, timeouts: Timeouts
    ) -> Iterator[PreparedRequest]:
        """The requests to try, in order; the mapping is fetched lazily, inside the iteration."""
        router = config.router_url()
        if provider == "auto" or ":" in model:
            yield build.server_side_request(model, body, token, router)
            return
        mapping = cls.get_mapping_sync(model, token, timeouts)
        for name, provider_id in choose_providers(model, mapping, names):
            yield build.provider_request(name, provider_id, model, body, token, router)


def _prefixed(first: Chunk, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    yield first
    yield from chunks


def check_routing(model: str, provider: ProviderChoice) -> List[str]:
    """Validate the model id (and a ``:policy`` suffix) and the explicit provider names; return them."""
    base, _, policy = model.partition(":")
    catalog.validate_model_id(base)
    if policy and policy not in catalog.SERVER_SIDE_POLICIES:
        catalog.validate_provider(policy)
    if policy and provider not in (None, "auto"):
        raise ConfigurationError(f"model {model!r} already names a routing policy; drop provider= or the ':{policy}' suffix")
    if provider == "auto":
        return []
    names = [provider] if isinstance(provider, str) else list(provider or [])
    for name in names:
        catalog.validate_provider(name)
    return names


def choose_providers(model: str, mapping: Dict[str, Dict[str, str]], names: List[str]) -> List[tuple]:
    """(provider, providerId) pairs to try: the explicit ``names`` in their order, else the
    mapping's live conversational entries in the user's order. Nothing usable raises."""
    if names:
        chosen = []
        for name in names:
            entry = mapping.get(name)
            if entry is None:
                logger.warning("provider %s does not serve %s (its providers: %s)", name, model, ", ".join(mapping) or "none")
                continue
            if not catalog.is_usable(entry):
                logger.warning("using provider %s for %s although its status is %r and task %r", name, model, entry["status"], entry["task"])
            chosen.append((name, entry["providerId"]))
        if chosen:
            return chosen
        raise ModelNotSupportedError(
            f"model {model!r} is not served by {', '.join(names)}; its providers are: {_describe(mapping)}"
        )
    usable = [(name, entry["providerId"]) for name, entry in mapping.items() if catalog.is_usable(entry)]
    skipped = [name for name in mapping if name not in dict(usable)]
    if skipped:
        logger.info("skipping providers of %s that are not live conversational: %s", model, ", ".join(skipped))
    if not usable:
        raise ModelNotSupportedError(
            f"model {model!r} has no live conversational provider; the Hub lists: {_describe(mapping)}. "
            "Pick another model, or name a provider with provider="
        )
    return usable


def _describe(mapping: Dict[str, Dict[str, str]]) -> str:
    return ", ".join(f"{name} ({entry['status'] or '?'}, {entry['task'] or '?'})" for name, entry in mapping.items()) or "no providers"
