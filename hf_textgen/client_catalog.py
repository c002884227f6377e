"""The router's catalogue methods of :class:`~hf_textgen.Client`: one model's providers with their
capabilities, prices and speed, or every chat model's, as typed values (what ``hf-textgen
mapping`` and ``hf-textgen models`` show). Filter a listing with :func:`hf_textgen.selection.filter_models`."""
from __future__ import annotations

import copy
from typing import Callable, List, Optional

from . import capabilities, config, validate
from .capabilities import ModelCatalog
from .config import TimeoutLike
from .deadlines import Deadlines


class CatalogMethods:
    """Mixed into :class:`~hf_textgen.Client` (which gives ``_settings`` and ``get_model``)."""

    _settings: config.Settings
    get_model: Callable[[Optional[str]], str]

    def get_catalog_sync(self, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> ModelCatalog:
        """What each provider of ``model`` can do, costs and how fast it is, by the router's catalogue
        (cached 10 minutes per router, token and model, a failure 1 minute). Raises the typed error
        that made it unavailable (a call would fall back to the Hub mapping alone)."""
        validate.check_model(model)
        settings, model = self._settings, self.get_model(model)
        plan = Deadlines.start(settings.timeouts(timeout))
        found = capabilities.lookup(settings.router(), model, settings.token(api_key), plan, settings.router_headers(), refresh)
        if isinstance(found, Exception):
            raise copy.copy(found)  # the cached error is shared: each raise gets its own traceback
        return found

    async def get_catalog(self, model: str, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> ModelCatalog:
        """Awaitable :meth:`get_catalog_sync` (runs in a worker thread)."""
        from . import aio

        return await aio.run_sync(self.get_catalog_sync, model, api_key, timeout, refresh)

    def list_catalog(self, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> List[ModelCatalog]:
        """Every chat model of the router's catalogue (``GET {router}/v1/models``), cached 10 minutes;
        filter it with :func:`hf_textgen.selection.filter_models`. Raises on failure (not cached)."""
        settings = self._settings
        plan = Deadlines.start(settings.timeouts(timeout))
        return capabilities.listing(settings.router(), settings.token(api_key), plan, settings.router_headers(), refresh)

    async def list_catalog_async(self, api_key: Optional[str] = None, timeout: TimeoutLike = None, refresh: bool = False) -> List[ModelCatalog]:
        """Awaitable :meth:`list_catalog` (runs in a worker thread)."""
        from . import aio

        return await aio.run_sync(self.list_catalog, api_key, timeout, refresh)
