"""The Hub: the model listing and one model's provider mapping, behind an expiring, thread-safe
cache. Concurrent first calls for one key make one request; failures are never cached."""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any, Callable, Dict, Generic, Hashable, List, Optional, Tuple, TypeVar
from urllib.parse import quote

from . import config, transport
from .catalog import is_usable, normalize_mapping, validate_model_id
from .errors import HFTextGenError, MissingAuthError, ModelNotSupportedError, ResponseError, ResponseStatusError
from .deadlines import Deadlines

logger = logging.getLogger("hf_textgen")

T = TypeVar("T")
MAPPING_TTL = 600.0
LISTING_TTL = 3600.0
MAX_PAGES = 20
LISTING_QUERY = "inference_provider=all&expand[]=inferenceProviderMapping&limit=1000"


class ExpiringCache(Generic[T]):
    """A dict whose entries expire; ``get_or_load`` runs one loader per key at a time.

    ``max_size``: at most that many entries (expired ones go first, then the oldest stored);
    ``ttl_of(value)``: an entry's own lifetime (default ``ttl``), e.g. shorter for a failure kept."""

    def __init__(self, ttl: float, max_size: Optional[int] = None, ttl_of: Optional[Callable[[T], float]] = None) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._ttl_of = ttl_of
        self._values: Dict[Hashable, Tuple[float, T]] = {}
        self._locks: Dict[Hashable, List[Any]] = {}  # key -> [lock, callers using it]: only keys being loaded
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable) -> Optional[T]:
        entry = self._values.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    def get_or_load(self, key: Hashable, load: Callable[[], T], refresh: bool = False) -> T:
        if not refresh:
            value = self.get(key)
            if value is not None:
                return value
        with self._lock:
            holder = self._locks.setdefault(key, [threading.Lock(), 0])
            holder[1] += 1
        try:
            with holder[0]:  # a caller that waited here finds the value its predecessor loaded
                value = None if refresh else self.get(key)
                if value is None:
                    value = load()  # raises: nothing is cached
                    self.put(key, value)
                return value
        finally:
            with self._lock:
                holder[1] -= 1
                if not holder[1]:
                    del self._locks[key]

    def put(self, key: Hashable, value: T) -> None:
        """Store ``value`` (the newest entry), evicting expired then oldest entries beyond ``max_size``."""
        expires = time.monotonic() + (self._ttl_of(value) if self._ttl_of is not None else self.ttl)
        with self._lock:
            self._values.pop(key, None)
            self._values[key] = (expires, value)
            if self.max_size is not None and len(self._values) > self.max_size:
                now = time.monotonic()
                for old in [k for k, (until, _) in self._values.items() if until <= now]:
                    del self._values[old]
                while len(self._values) > self.max_size:
                    del self._values[next(iter(self._values))]

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


_mappings: ExpiringCache[Dict[str, Dict[str, str]]] = ExpiringCache(MAPPING_TTL)
_listings: ExpiringCache[List[str]] = ExpiringCache(LISTING_TTL)


_others: List[ExpiringCache[Any]] = []  # caches of other modules (the router's catalogue), see register_cache


def register_cache(cache: ExpiringCache[Any]) -> ExpiringCache[Any]:
    """Have :func:`clear_caches` clear ``cache`` too; returns it."""
    _others.append(cache)
    return cache


def clear_caches() -> None:
    """Forget every cached listing, mapping and catalogue (the next call asks again)."""
    _mappings.clear()
    _listings.clear()
    for cache in _others:
        cache.clear()


def token_key(token: Optional[str]) -> str:
    """A cache key part per token (a digest: the token itself is never stored as a key)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32] if token else ""


def get_mapping(model: str, token: Optional[str], plan: Deadlines, hub: str, refresh: bool = False) -> Dict[str, Dict[str, str]]:
    """One model's providers, normalised, in the user's preferred order (cached per Hub, token and model)."""
    validate_model_id(model)
    return _mappings.get_or_load((hub, token_key(token), model), lambda: _fetch_mapping(hub, model, token, plan), refresh)


def _fetch_mapping(hub: str, model: str, token: Optional[str], plan: Deadlines) -> Dict[str, Dict[str, str]]:
    url = f"{hub}/api/models/{quote(model, safe='/')}?expand[]=inferenceProviderMapping"
    try:
        info = transport.get_json(url, token, plan, f"provider mapping of {model!r}")
    except ResponseStatusError as error:
        if error.status_code == 401 and config.is_hf_token(token):
            raise MissingAuthError(
                f"the Hub ({hub}) refused the token while looking up model {model!r} (HTTP 401); "
                "check HF_TOKEN or api_key="
            ) from None
        if error.status_code in (401, 404):
            raise ModelNotSupportedError(
                f"model {model!r} was not found on the Hub ({hub}, HTTP {error.status_code}); "
                "check the model id (org/name), or your token for a gated or private model"
            ) from None
        raise
    if not isinstance(info, dict):
        raise ResponseError(f"unexpected answer for the provider mapping of {model!r} from {hub}")
    try:
        return normalize_mapping(info.get("inferenceProviderMapping"), model)
    except ValueError as error:
        raise ResponseError(f"unexpected provider mapping of {model!r} from {hub}: {error}") from None


def list_models(
    token: Optional[str],
    plan: Deadlines,
    hub: str,
    extra: List[str],
    fallback: List[str],
    refresh: bool = False,
    on_fallback: Optional[Callable[[Exception], None]] = None,
) -> List[str]:
    """Models with a live conversational provider (all pages) plus ``extra``, de-duplicated in order.

    Any failure returns ``fallback`` (logged, not raised, not cached; ``on_fallback(error)`` is told)."""
    try:
        listed = _listings.get_or_load((hub, token_key(token)), lambda: _fetch_listing(hub, token, plan), refresh)
    except (HFTextGenError, ValueError, KeyError, TypeError, AttributeError) as error:
        logger.warning("model listing failed, using the fallback list: %s", error)
        if on_fallback is not None:
            on_fallback(error)
        return list(fallback)
    return list(dict.fromkeys([*listed, *extra]))


def _fetch_listing(hub: str, token: Optional[str], plan: Deadlines) -> List[str]:
    models: List[str] = []
    url: Optional[str] = f"{hub}/api/models?{LISTING_QUERY}"
    for _ in range(MAX_PAGES):
        page, url = transport.get_json_pages(url, token, plan, "model listing")  # type: ignore[arg-type]
        if not isinstance(page, list):
            raise ValueError(f"the listing is a {type(page).__name__}, not a list")
        models += [item["id"] for item in page if _has_chat_provider(item)]
        if url is None:
            return models
    logger.warning("the model listing has more than %d pages; using the first %d", MAX_PAGES, MAX_PAGES)
    return models


def _has_chat_provider(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise ValueError(f"unexpected item in the model listing: {item!r:.80}")
    mapping = normalize_mapping(item.get("inferenceProviderMapping"), item["id"])
    return any(is_usable(entry) for entry in mapping.values())
