"""``HuggingFaceAPI``: the seed's provider class. Its class attributes are the model knowledge
(aliases, defaults, the fallback list, static mappings); its class methods are the default
:class:`~hf_textgen.Client`, which reads the environment at each call. The sync methods are the
implementation; the async ones run them through :mod:`hf_textgen.aio`, imported when first used."""
from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional

from . import catalog, config
from .capabilities import ModelCatalog
from .client import FORWARDING, Client, show_completion_parameters
from .config import TimeoutLike
from .results import AsyncChatStream, ChatResult, ChatStream
from .types import Chunk


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
    def client(cls) -> Client:
        """The default client: no settings of its own, this class's model knowledge."""
        return Client(models=cls)

    @classmethod
    def get_model(cls, model: Optional[str], **_seed_kwargs: Any) -> str:
        """Alias -> Hub id; empty -> ``default_model``; an unknown name comes back unchanged. No I/O.
        A routing suffix stays: ``"llama-3.3-70b:together"`` -> ``"meta-llama/Llama-3.3-70B-Instruct:together"``."""
        if not model:
            return cls.default_model
        name, colon, policy = model.partition(":")
        return cls.model_aliases[name] + colon + policy if name in cls.model_aliases else model

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
        return cls.client().get_models(refresh, api_key, timeout, on_fallback=on_fallback)

    @classmethod
    async def get_models_async(cls, refresh: bool = False, api_key: Optional[str] = None, timeout: TimeoutLike = None) -> List[str]:
        """Awaitable :meth:`get_models` (runs in a worker thread)."""
        return await cls.client().get_models_async(refresh, api_key, timeout)

    @classmethod
    def get_mapping_sync(
        cls, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False
    ) -> Dict[str, Dict[str, str]]:
        """The model's providers: ``{provider: {"providerId", "status", "task"}}`` in preferred order."""
        return cls.client().get_mapping_sync(model, api_key, timeout, refresh)

    @classmethod
    async def get_mapping(
        cls, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False
    ) -> Dict[str, Dict[str, str]]:
        """Awaitable :meth:`get_mapping_sync` (runs in a worker thread)."""
        return await cls.client().get_mapping(model, api_key, timeout, refresh)

    @classmethod
    def get_catalog_sync(cls, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> ModelCatalog:
        """The router's catalogue of ``model``: each provider's capabilities, prices and speed."""
        return cls.client().get_catalog_sync(model, api_key, timeout, refresh)

    @classmethod
    async def get_catalog(cls, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> ModelCatalog:
        """Awaitable :meth:`get_catalog_sync` (runs in a worker thread)."""
        return await cls.client().get_catalog(model, api_key, timeout, refresh)

    @classmethod
    def list_catalog(cls, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> List[ModelCatalog]:
        """Every chat model of the router's catalogue (``GET {router}/v1/models``)."""
        return cls.client().list_catalog(api_key, timeout, refresh)

    @classmethod
    async def list_catalog_async(cls, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> List[ModelCatalog]:
        """Awaitable :meth:`list_catalog` (runs in a worker thread)."""
        return await cls.client().list_catalog_async(api_key, timeout, refresh)

    @classmethod
    def create_completion(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> Iterator[Chunk]:
        """Stream a chat completion; the parameters of :meth:`hf_textgen.Client.create_completion`::

            create_completion(model, messages, api_base=None, api_key=None, max_tokens=2048,
                              max_inputs_lenght=10000, media=None, *, provider=None, stream=True,
                              timeout=None, extra_body=None, max_event_bytes=8 MiB,
                              retry_rate_limited=0, headers=None, prefer=None, **openai_params)
        """
        return cls.client().create_completion(model, messages, *args, **kwargs)

    @classmethod
    def create_async_generator(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> AsyncIterator[Chunk]:
        """``async for chunk in ...``: :meth:`create_completion` on asyncio or trio."""
        return cls.client().create_async_generator(model, messages, *args, **kwargs)

    @classmethod
    def stream(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> ChatStream:
        """:meth:`create_completion` as a :class:`~hf_textgen.ChatStream` (chunks, then ``.result()``)."""
        return cls.client().stream(model, messages, *args, **kwargs)

    @classmethod
    def complete(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> ChatResult:
        """The whole answer as one :class:`~hf_textgen.ChatResult`."""
        return cls.client().complete(model, messages, *args, **kwargs)

    @classmethod
    def stream_async(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> AsyncChatStream:
        """:meth:`create_async_generator` as an :class:`~hf_textgen.AsyncChatStream`."""
        return cls.client().stream_async(model, messages, *args, **kwargs)

    @classmethod
    async def complete_async(cls, model: Optional[str], messages: List[Dict[str, Any]], *args: Any, **kwargs: Any) -> ChatResult:
        """Awaitable :meth:`complete`, on asyncio and trio."""
        return await cls.client().complete_async(model, messages, *args, **kwargs)


show_completion_parameters(HuggingFaceAPI, ("create_completion", *FORWARDING))
