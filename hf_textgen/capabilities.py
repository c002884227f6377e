"""The router's catalogue: what each provider of a model can do, what it costs and how fast it is
(``GET {router}/v1/models/{id}``, and ``GET {router}/v1/models`` for every chat model), parsed into
frozen values and cached.

A field the router leaves out (or sends as null) is unknown (``None``), never false. An answer that
is not the expected shape, or a field of the wrong type, makes the whole model entry unreadable:
a call then falls back to the Hub mapping alone, logged once per router and model (WARNING the
first time in the process, DEBUG after). Unknown extra fields are ignored.

Cache: per router URL, token digest and model; 10 minutes for an answer, 1 minute for a failure
(kept too, so a broken catalogue costs at most one GET a minute per model); at most 256 models.
One GET at a time per key (concurrent first calls wait for it); no retries; each GET is bounded by
:data:`CATALOG_TIMEOUT` seconds (connect, read and overall) and by the call's own deadlines.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote

from . import build, hub, transport
from .catalog import is_valid_provider, validate_model_id
from .deadlines import Deadlines
from .errors import HFTextGenError, ResponseError

logger = logging.getLogger("hf_textgen")

__all__ = ["ProviderCapabilities", "ModelCatalog", "parse_model", "parse_listing", "lookup", "cached", "listing", "fetch_model", "fetch_listing"]

CATALOG_TTL = 600.0
FAILURE_TTL = 60.0
MAX_MODELS = 256
CATALOG_TIMEOUT = 3.0  # seconds: a slow catalogue never costs a call more than this


@dataclass(frozen=True)
class ProviderCapabilities:
    """One provider of a model as the router's catalogue lists it; ``None`` = not published.
    Prices are USD per million tokens; ``throughput`` tokens per second."""

    provider: str
    status: Optional[str] = None
    context_length: Optional[int] = None
    input_price: Optional[float] = None
    output_price: Optional[float] = None
    is_free: Optional[bool] = None
    supports_tools: Optional[bool] = None
    supports_structured_output: Optional[bool] = None
    first_token_latency_ms: Optional[float] = None
    throughput: Optional[float] = None
    is_model_author: Optional[bool] = None


@dataclass(frozen=True)
class ModelCatalog:
    """A model's providers in the catalogue (router order), and its input modalities when given."""

    model: str
    providers: Tuple[ProviderCapabilities, ...] = ()
    input_modalities: Tuple[str, ...] = ()

    def get(self, provider: str) -> Optional[ProviderCapabilities]:
        """The entry of ``provider``, or None when the catalogue does not list it."""
        for entry in self.providers:
            if entry.provider == provider:
                return entry
        return None


# ------------------------------------------------------------------------------------------ parsing
_BOOLS = ("is_free", "supports_tools", "supports_structured_output", "is_model_author")


def _number(value: Any, where: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} is {value!r:.40}, not a number >= 0")
    return float(value)


def _provider(raw: Any, where: str) -> ProviderCapabilities:
    if not isinstance(raw, Mapping) or not is_valid_provider(raw.get("provider")):
        raise ValueError(f"{where} is not a provider entry with a valid 'provider' name")
    where = f"{where} ({raw['provider']})"
    status, context, pricing = raw.get("status"), raw.get("context_length"), raw.get("pricing")
    if status is not None and not isinstance(status, str):
        raise ValueError(f"{where}.status is {status!r:.40}, not a string")
    if context is not None and (isinstance(context, bool) or not isinstance(context, int) or context < 1):
        raise ValueError(f"{where}.context_length is {context!r:.40}, not a positive integer")
    if pricing is not None and not isinstance(pricing, Mapping):
        raise ValueError(f"{where}.pricing is {pricing!r:.40}, not an object")
    flags = {}
    for name in _BOOLS:
        if raw.get(name) is not None and not isinstance(raw[name], bool):
            raise ValueError(f"{where}.{name} is {raw[name]!r:.40}, not true or false")
        flags[name] = raw.get(name)
    pricing = pricing or {}
    return ProviderCapabilities(
        raw["provider"], status, context,
        _number(pricing.get("input"), f"{where}.pricing.input"), _number(pricing.get("output"), f"{where}.pricing.output"),
        flags["is_free"], flags["supports_tools"], flags["supports_structured_output"],
        _number(raw.get("first_token_latency_ms"), f"{where}.first_token_latency_ms"),
        _number(raw.get("throughput"), f"{where}.throughput"), flags["is_model_author"],
    )


def parse_model(raw: Any, model: Optional[str] = None) -> ModelCatalog:
    """One model's catalogue entry as a value; ``ValueError`` names what is not as expected."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("providers"), list):
        raise ValueError("not a model entry with 'id' and a 'providers' list")
    if model is not None and raw["id"] != model:
        raise ValueError(f"it describes {raw['id']!r:.100}, not {model!r}")
    providers: Dict[str, ProviderCapabilities] = {}
    for index, item in enumerate(raw["providers"]):
        entry = _provider(item, f"providers[{index}]")
        providers.setdefault(entry.provider, entry)
    architecture = raw.get("architecture")
    inputs = architecture.get("input_modalities") if isinstance(architecture, Mapping) else None
    modalities = tuple(m for m in inputs if isinstance(m, str)) if isinstance(inputs, list) else ()
    return ModelCatalog(raw["id"], tuple(providers.values()), modalities)


def parse_listing(raw: Any) -> List[ModelCatalog]:
    """``GET /v1/models``: every readable model; an unreadable entry is left out (logged)."""
    data = raw.get("data") if isinstance(raw, Mapping) else None
    if not isinstance(data, list):
        raise ValueError("not a listing with a 'data' list")
    models = []
    for index, item in enumerate(data):
        try:
            models.append(parse_model(item))
        except ValueError as error:
            logger.warning("skipping entry %d of the router's catalogue: %s", index, error)
    return models


# ---------------------------------------------------------------------------------- fetching, cache
Found = Union[ModelCatalog, HFTextGenError]  # what a look-up found: the entry, or why there is none
_models: hub.ExpiringCache[Found] = hub.ExpiringCache(CATALOG_TTL, MAX_MODELS, lambda found: FAILURE_TTL if isinstance(found, Exception) else CATALOG_TTL)
_listings: hub.ExpiringCache[List[ModelCatalog]] = hub.ExpiringCache(CATALOG_TTL, 16)
hub.register_cache(_models)
hub.register_cache(_listings)
_warned: "set[Tuple[str, str]]" = set()


def _capped(plan: Deadlines) -> Deadlines:
    """The call's plan, cut to :data:`CATALOG_TIMEOUT` for connect, read and the whole GET."""
    ends = [t for t in (plan.total_at, plan.first_token_at, time.monotonic() + CATALOG_TIMEOUT) if t is not None]
    return Deadlines(min(plan.connect, CATALOG_TIMEOUT), min(plan.read, CATALOG_TIMEOUT), min(ends))


def _get(url: str, token: Optional[str], plan: Deadlines, what: str, headers: Mapping[str, str], capped: bool = True) -> Any:
    """GET with the token sent as for chat; ``capped``: once, within :data:`CATALOG_TIMEOUT`."""
    request_headers = build.headers_for(url, token, False, headers)
    if capped:
        return transport.get_json(url, token, _capped(plan), what, retries=0, headers=request_headers)
    return transport.get_json(url, token, plan, what, headers=request_headers)


def fetch_model(router: str, model: str, token: Optional[str], plan: Deadlines, headers: Mapping[str, str]) -> ModelCatalog:
    """``GET {router}/v1/models/{model}``, parsed; raises a typed error (no cache)."""
    validate_model_id(model)
    url = f"{router}/v1/models/{quote(model, safe='/')}"
    raw = _get(url, token, plan, f"router catalogue of {model!r}", headers)
    try:
        return parse_model(raw, model)
    except ValueError as error:
        raise ResponseError(f"unexpected router catalogue of {model!r} from {url}: {error}") from None


def fetch_listing(router: str, token: Optional[str], plan: Deadlines, headers: Mapping[str, str]) -> List[ModelCatalog]:
    """``GET {router}/v1/models``, parsed; raises a typed error (no cache). Asked for by the caller,
    not on a call's way: bounded by the plan's timeouts only, retried as a Hub GET is."""
    url = f"{router}/v1/models"
    try:
        return parse_listing(_get(url, token, plan, "router catalogue", headers, capped=False))
    except ValueError as error:
        raise ResponseError(f"unexpected router catalogue from {url}: {error}") from None


def _load(router: str, model: str, token: Optional[str], plan: Deadlines, headers: Mapping[str, str]) -> Found:
    try:
        return fetch_model(router, model, token, plan, headers)
    except HFTextGenError as error:
        first = (router, model) not in _warned
        if first and len(_warned) < 4096:
            _warned.add((router, model))
        logger.log(
            logging.WARNING if first else logging.DEBUG,
            "the router's catalogue is unavailable for %s (%s); choosing providers by the Hub mapping alone "
            "(retried in %.0f s; this warning is given once per router and model)", model, error.reason, FAILURE_TTL,
        )
        return error.with_traceback(None)  # kept a minute: without the frames (and their locals) it was raised in


def lookup(router: str, model: str, token: Optional[str], plan: Deadlines, headers: Mapping[str, str], refresh: bool = False) -> Found:
    """The model's catalogue entry, or the error that stands for it (cached either way). Never raises
    for the catalogue's sake: only a bad model id raises ``ConfigurationError``."""
    validate_model_id(model)
    key = (router, hub.token_key(token), model)
    return _models.get_or_load(key, lambda: _load(router, model, token, plan, headers), refresh)


def cached(router: str, model: str, token: Optional[str]) -> Optional[ModelCatalog]:
    """The entry if the cache holds it now, else None: no I/O (server-side routing's cost)."""
    if not len(_models):  # nothing cached: no digest to compute
        return None
    found = _models.get((router, hub.token_key(token), model))
    return found if isinstance(found, ModelCatalog) else None


def listing(router: str, token: Optional[str], plan: Deadlines, headers: Mapping[str, str], refresh: bool = False) -> List[ModelCatalog]:
    """Every chat model of the catalogue (cached 10 minutes; failures raise and are not cached)."""
    key = (router, hub.token_key(token))
    return list(_listings.get_or_load(key, lambda: fetch_listing(router, token, plan, headers), refresh))
