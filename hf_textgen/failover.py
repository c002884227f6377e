"""The provider loop: try each planned request in order, move on only for errors that allow it
and only before any content reached the caller, and report every attempt when all fail."""
from __future__ import annotations

import logging
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

from .errors import ConnectError, HFTextGenError, ResponseStatusError, StreamTimeoutError, exhausted
from .exchange import provider_label
from .types import Chunk, PreparedRequest, ProviderInfo

logger = logging.getLogger("hf_textgen")

# 402 credits, 403 spending limit, 404 not served there, 408 timeout, 429 rate limit; 5xx below.
FAILOVER_STATUSES = frozenset({402, 403, 404, 408, 429})


def allows_failover(error: HFTextGenError) -> bool:
    """Whether the next provider may be tried after ``error`` (400 and 401 never)."""
    if isinstance(error, ResponseStatusError):
        status = error.status_code or 0
        return status in FAILOVER_STATUSES or status >= 500
    return isinstance(error, (ConnectError, StreamTimeoutError))


def run(
    model: str,
    requests: Iterable[PreparedRequest],
    answer: Callable[[PreparedRequest], Iterator[Chunk]],
    stopped: Optional[Callable[[], bool]] = None,
) -> Iterator[Chunk]:
    """Yield ``ProviderInfo`` then the answer of the first provider that answers."""
    attempts: List[Tuple[str, HFTextGenError]] = []
    for request in requests:
        if stopped is not None and stopped():
            return
        if request.provider != "auto":
            yield ProviderInfo(provider_label(request.provider), model, request.provider)
        chunks = answer(request)
        try:  # only an error before the first chunk may move on to the next provider
            first = next(chunks)
        except StopIteration:
            return
        except HFTextGenError as error:
            if not allows_failover(error):
                raise
            attempts.append((request.provider, error))
            logger.warning("provider %s failed for %s, trying the next one: %s", request.provider, model, error)
            continue
        yield first
        yield from chunks
        return
    if attempts:
        raise exhausted(model, attempts)
