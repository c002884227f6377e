"""``Client``: hf_textgen with settings of its own (token, Hub and router URLs, timeouts, provider
order, headers, who pays), which beat the environment. :class:`~hf_textgen.HuggingFaceAPI`'s class
methods are the default client: they read the environment at each call.

    client = Client(api_key="hf_...", provider=["together", "novita"], bill_to="my-org")
    result = client.complete("meta-llama/Llama-3.3-70B-Instruct", [{"role": "user", "content": "Hi"}])
"""
from __future__ import annotations

import inspect
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, cast

from . import chat, config, hub, selection, sse, validate
from .client_catalog import CatalogMethods
from .config import TimeoutLike
from .deadlines import Deadlines
from .errors import ConfigurationError
from .results import AsyncChatStream, ChatResult, ChatStream
from .routing import ProviderChoice, check_routing
from .transport import Cancel
from .types import Chunk

__all__ = ["Client"]

Mapping_ = Dict[str, Dict[str, str]]


class Client(CatalogMethods):
    """Chat completions with failover, configured once. Every argument is optional: one left out
    is taken from the environment at call time (``HF_TOKEN``, ``HF_ENDPOINT``, ...).

    ``timeout``: a number, a ``(connect, read)`` pair or :class:`~hf_textgen.Timeouts`;
    ``provider``: a name or a list (the failover order) used when a call names none; ``headers``:
    sent with every chat request; ``bill_to``: an organisation that pays (``X-HF-Bill-To``);
    ``prefer``: the default provider order (``"order"``, ``"cheapest"``, ``"fastest"``,
    ``"throughput"``; see :mod:`hf_textgen.selection`) for calls that name no providers;
    ``catalog``: when calls read the router's catalogue: ``"auto"`` (when a request needs it: tools,
    structured output, ``prefer``; otherwise a cached one is used), ``"always"`` (also for a ``Cost``
    on every answer), ``"never"``."""

    def __init__(
        self,
        api_key: Optional[str] = None,
        hub_url: Optional[str] = None,
        router_url: Optional[str] = None,
        timeout: TimeoutLike = None,
        provider: ProviderChoice = None,
        headers: Optional[Mapping[str, str]] = None,
        bill_to: Optional[str] = None,
        *,
        prefer: Optional[str] = None,
        catalog: str = "auto",
        models: Any = None,
    ) -> None:
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ConfigurationError(f"api_key must be a non-empty token string (hf_...), not {type(api_key).__name__}")
        if provider is not None:
            check_routing("org/model", provider)  # the names only
        if bill_to is not None and (not isinstance(bill_to, str) or not bill_to.strip() or "\n" in bill_to or "\r" in bill_to):
            raise ConfigurationError(f"bill_to must be the name of an organisation (a string), not {bill_to!r:.60}")
        selection.check_catalog_use(catalog, prefer)
        selection.check_prefer(prefer, "provider= on the same client" if provider is not None else "")
        self._settings = config.Settings(
            api_key=api_key.strip() if api_key else None,
            hub_url=config.check_url("hub_url", hub_url),
            router_url=config.check_url("router_url", router_url),
            timeout=None if timeout is None else config.make_timeouts(timeout),
            provider=provider if provider is None or isinstance(provider, str) else tuple(provider),
            headers=validate.check_headers(headers),
            bill_to=bill_to,
            prefer=prefer,
            catalog=catalog,
        )
        self._models = models

    def __repr__(self) -> str:  # never the token
        s = self._settings
        shown = {"hub_url": s.hub_url, "router_url": s.router_url, "provider": s.provider, "bill_to": s.bill_to, "prefer": s.prefer,
                 "catalog": None if s.catalog == "auto" else s.catalog}
        parts = [f"{name}={value!r}" for name, value in shown.items() if value is not None]
        return f"Client({', '.join(['api_key=***' if s.api_key else 'api_key=None', *parts])})"

    @property
    def provider(self) -> ProviderChoice:
        """The client's provider order (None: each model's order on the Hub)."""
        return self._settings.provider

    @property
    def models(self) -> Any:
        """Aliases, defaults and static mappings (default: :class:`~hf_textgen.HuggingFaceAPI`'s)."""
        if self._models is None:
            from .provider import HuggingFaceAPI

            return HuggingFaceAPI
        return self._models

    # -- models and mappings --------------------------------------------------------------------------
    def get_model(self, model: Optional[str]) -> str:
        """Alias -> Hub id; empty -> the default model; an unknown name comes back unchanged. No I/O."""
        return cast(str, self.models.get_model(model))

    def get_mapping_sync(self, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> Mapping_:
        """The model's providers: ``{provider: {"providerId", "status", "task"}}`` in your preferred
        order (cached 10 minutes per Hub, token and model; ``refresh=True`` asks the Hub again)."""
        validate.check_model(model)
        plan = Deadlines.start(self._settings.timeouts(timeout))
        return chat.mapping_of(self._settings, self.models, model, self._settings.token(api_key), plan, refresh)

    async def get_mapping(self, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> Mapping_:
        """Awaitable :meth:`get_mapping_sync` (runs in a worker thread)."""
        from . import aio

        return await aio.run_sync(self.get_mapping_sync, model, api_key, timeout, refresh)

    def get_models(
        self,
        refresh: bool = False,
        api_key: Optional[str] = None,
        timeout: TimeoutLike = None,
        *,
        on_fallback: Optional[Callable[[Exception], None]] = None,
    ) -> List[str]:
        """Models with a live conversational provider, plus ``provider_mapping`` keys (cached an hour).

        Never raises: on any failure returns the fallback list (not cached), after calling
        ``on_fallback(error)`` when given."""
        models, settings = self.models, self._settings
        plan = Deadlines.start(settings.timeouts(timeout))
        return hub.list_models(
            settings.token(api_key), plan, settings.hub(), list(models.provider_mapping), list(models.fallback_models), refresh, on_fallback
        )

    async def get_models_async(self, refresh: bool = False, api_key: Optional[str] = None, timeout: TimeoutLike = None) -> List[str]:
        """Awaitable :meth:`get_models` (runs in a worker thread)."""
        from . import aio

        return await aio.run_sync(self.get_models, refresh, api_key, timeout)

    # -- chat -------------------------------------------------------------------------------------------
    def create_completion(
        self,
        model: Optional[str],
        messages: List[Dict[str, Any]],
        api_base: Optional[str] = None,
        api_key: Optional[str] = None,
        max_tokens: Optional[int] = 2048,
        max_inputs_lenght: Optional[int] = 10000,
        media: Any = None,
        *,
        provider: ProviderChoice = None,
        stream: bool = True,
        timeout: TimeoutLike = None,
        extra_body: Optional[Dict[str, Any]] = None,
        max_event_bytes: int = sse.MAX_EVENT_BYTES,
        retry_rate_limited: float = 0.0,
        headers: Optional[Mapping[str, str]] = None,
        prefer: Optional[str] = None,
        **params: Any,
    ) -> Iterator[Chunk]:
        """Stream a chat completion: ``str`` text deltas and typed chunks, with provider failover.

        Input is checked now (bad input raises here, before anything is sent); the network is used
        when iteration starts. ``retry_rate_limited`` (seconds, default 0 = off): a 429 whose
        ``Retry-After`` is at most that long is waited out and retried once on the same provider.
        ``headers``: extra headers for this call's chat requests. ``prefer``: the order in which the
        Hub mapping's providers are tried (``"order"``: yours; ``"cheapest"``, ``"fastest"``,
        ``"throughput"``: by the router's catalogue, still failing over in that order); None: the
        client's default. Providers the catalogue says cannot serve the request are skipped.
        """
        call = chat.prepare(
            self._settings, self.models, model, messages, api_base=api_base, api_key=api_key, max_tokens=max_tokens,
            max_inputs_lenght=max_inputs_lenght, media=media, provider=provider, stream=stream, timeout=timeout,
            extra_body=extra_body, max_event_bytes=max_event_bytes, retry_rate_limited=retry_rate_limited,
            headers=headers, params=params, prefer=prefer,
        )
        return cast(Iterator[Chunk], chat.run(call))

    def create_async_generator(self, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> AsyncIterator[Chunk]:
        """``async for chunk in ...``: the same call as :meth:`create_completion` (same parameters and
        chunks), run in the bridge's threads on asyncio or trio (see :mod:`hf_textgen.aio`).

        Leaving early (break, aclose, cancellation, timeouts) closes the connection at once, even
        while the server is stalled."""
        from . import aio

        call = self._prepare(model, messages, args, kwargs)
        cancel = Cancel()
        chunks = chat.run(call, cooperative=True, cancel=cancel)
        return aio.iterate_in_thread(lambda: chunks, cancel)  # type: ignore[arg-type, return-value]

    def stream(self, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> ChatStream:
        """:meth:`create_completion` as a :class:`~hf_textgen.ChatStream`: iterate its chunks (or
        ``.text()``), then ``.result()`` is the :class:`~hf_textgen.ChatResult`."""
        return ChatStream(self.create_completion(model, messages, *args, **kwargs), self._model_name(model, args, kwargs))

    def complete(self, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> ChatResult:
        """The whole answer as one :class:`~hf_textgen.ChatResult` (same parameters as :meth:`create_completion`)."""
        with self.stream(model, messages, *args, **kwargs) as stream:
            return stream.result()

    def stream_async(self, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> AsyncChatStream:
        """:meth:`create_async_generator` as an :class:`~hf_textgen.AsyncChatStream` (``async for``,
        ``await .result()``), on asyncio and trio."""
        return AsyncChatStream(self.create_async_generator(model, messages, *args, **kwargs), self._model_name(model, args, kwargs))

    async def complete_async(self, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> ChatResult:
        """Awaitable :meth:`complete`, on asyncio and trio."""
        async with self.stream_async(model, messages, *args, **kwargs) as stream:
            return await stream.result()

    def _prepare(self, model: Optional[str], messages: List[Dict[str, Any]], args: Any, kwargs: Dict[str, Any]) -> chat.ChatCall:
        """The checked call for :meth:`create_completion`'s parameters, bound as it binds them."""
        try:
            bound = _COMPLETION.bind(self, model, messages, *args, **kwargs)
        except TypeError as error:
            raise ConfigurationError(f"bad arguments: {error}") from None
        bound.apply_defaults()
        given = dict(bound.arguments)
        del given["self"]
        params = given.pop("params")
        return chat.prepare(self._settings, self.models, given.pop("model"), given.pop("messages"), params=params, **given)

    def _model_name(self, model: Optional[str], args: Any, kwargs: Dict[str, Any]) -> str:
        media = kwargs.get("media", args[4] if len(args) > 4 else None)
        return self.get_model(model or (self.models.default_vision_model if media else None))


_COMPLETION = inspect.signature(Client.create_completion)
FORWARDING = ("create_async_generator", "stream", "complete", "stream_async", "complete_async")


def show_completion_parameters(cls: type, names: Tuple[str, ...] = FORWARDING) -> None:
    """Give methods that take ``*args, **kwargs`` on to :meth:`Client.create_completion` its
    signature, so ``help()`` and ``inspect.signature`` show the real parameters."""
    for name in names:
        function = getattr(cls.__dict__[name], "__func__", cls.__dict__[name])
        returns = inspect.signature(function).return_annotation
        function.__signature__ = _COMPLETION.replace(return_annotation=returns)


show_completion_parameters(Client)
