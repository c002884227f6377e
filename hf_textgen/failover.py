"""The provider loop: try each planned request in order, move on only for errors that allow it
and only before any content reached the caller, and report every attempt when all fail.

The plan may hold, between requests, ``Attempt(skipped=True)`` values: providers the router's
catalogue says cannot serve the request. Each is passed on when the loop gets past it, in order,
just as a failed provider's ``Attempt`` is, before the next ``ProviderInfo``.

Opt-in (``retry_rate_limited`` seconds, default 0 = off): a 429 whose ``Retry-After`` is at most that
long is waited out and the same provider retried, once, before moving on. The wait is a ``pause``
callable that returns early (False) when the caller has gone, so a wait never outlives its consumer.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

from .errors import ConfigurationError, ConnectError, HFTextGenError, RateLimitError, ResponseStatusError, StreamTimeoutError, exhausted
from .catalog import provider_label
from .refusals import refused_feature
from .types import Attempt, Chunk, Marker, PreparedRequest, ProviderInfo

logger = logging.getLogger("hf_textgen")

# 402 credits, 403 spending limit, 404 not served there, 408 timeout, 429 rate limit; 5xx below.
T = TypeVar("T")  # what an answer yields besides chunks (the async bridge's markers): passed on as is

FAILOVER_STATUSES = frozenset({402, 403, 404, 408, 429})
RATE_LIMIT_RETRIES = 1  # per provider, with retry_rate_limited on


def allows_failover(error: HFTextGenError, request: Optional[PreparedRequest] = None) -> bool:
    """Whether the next provider may be tried after ``error``: 402, 403, 404, 408, 429, 5xx, a
    connection failure or a timeout; 401 never; a 400 or 422 only when it refuses a feature the
    ``request`` carried (:func:`~hf_textgen.refusals.refused_feature`)."""
    if isinstance(error, ResponseStatusError):
        status = error.status_code or 0
        if status in FAILOVER_STATUSES or status >= 500:
            return True
        return request is not None and refused_feature(error, request.body) is not None
    return isinstance(error, (ConnectError, StreamTimeoutError))


def check_retry_cap(seconds: Any) -> float:
    """Validate ``retry_rate_limited`` (seconds, 0 = off) before anything is sent."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"retry_rate_limited must be a number of seconds >= 0 (0: off), not {seconds!r}")
    return float(seconds)


def rate_limit_wait(error: HFTextGenError, cap: float, retries_done: int) -> Optional[float]:
    """Seconds to wait before retrying the same provider after ``error``, or None to move on:
    only a 429 with a ``Retry-After`` within ``cap``, and only ``RATE_LIMIT_RETRIES`` times."""
    if cap <= 0 or not isinstance(error, RateLimitError) or error.retry_after is None or retries_done >= RATE_LIMIT_RETRIES:
        return None
    return error.retry_after if error.retry_after <= cap else None


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True


def attempt_of(provider: str, error: HFTextGenError) -> Attempt:
    """The failed attempt as a value for the caller: provider, HTTP status (if any), short reason."""
    return Attempt(provider, getattr(error, "status_code", None), error.reason, error)


Planned = Union[PreparedRequest, Attempt]


def _next(planned: Iterator[Planned], skipped: List[Attempt]) -> Optional[PreparedRequest]:
    """The next request of the plan; the skipped providers before it go to ``skipped``."""
    for item in planned:
        if isinstance(item, Attempt):
            skipped.append(item)
            continue
        return item
    return None


def run(
    model: str,
    start: Callable[[], Tuple[Iterable[Planned], Callable[[PreparedRequest], Iterator[Union[Chunk, T]]]]],
    stopped: Optional[Callable[[], bool]] = None,
    *,
    retry_rate_limited: float = 0.0,
    pause: Optional[Callable[[float], bool]] = None,
    prelude: Sequence[Chunk] = (),
) -> Iterator[Union[Chunk, T]]:
    """Yield ``prelude``, then ``ProviderInfo`` and the answer of the first provider that answers;
    before moving on to the next provider, an ``Attempt`` saying why (also for a provider the plan
    skipped). When the last one fails too, its error is raised, re-worded to list every attempt
    when there were several (or skipped providers).

    ``start()``, called at the first step, gives the plan (requests, and Attempts for skipped
    providers) and the function that
    answers one. ``pause(seconds)`` (default: sleep) waits before a rate-limit retry and returns
    False if the caller has gone meanwhile."""
    yield from prelude
    requests, answer = start()
    pause = pause or _sleep
    attempts: List[Tuple[str, HFTextGenError]] = []
    planned = iter(requests)
    skipped: List[Attempt] = []
    request = _next(planned, skipped)
    yield from skipped
    while request is not None:
        retries = 0
        while True:
            if stopped is not None and stopped():
                return
            if request.provider != "auto" and not retries:
                yield ProviderInfo(provider_label(request.provider), model, request.provider)
            chunks = answer(request)
            try:  # only an error before the first chunk may move on to the next provider
                first = next(chunks)
                while isinstance(first, Marker):  # the async bridge's business, not content
                    yield first
                    first = next(chunks)
            except StopIteration:
                return
            except HFTextGenError as error:
                if stopped is not None and stopped():  # the caller left: the error is our own doing
                    return
                wait = rate_limit_wait(error, retry_rate_limited, retries)
                if wait is not None:
                    retries += 1
                    logger.info("provider %s is rate limited for %s, retrying in %.1f s", request.provider, model, wait)
                    if not pause(wait):
                        return
                    continue
                if not allows_failover(error, request):
                    raise
                failure = error
                break
            yield first
            yield from chunks
            return
        attempts.append((request.provider, failure))
        more: List[Attempt] = []
        # a deadline of the whole call has passed: no other provider can beat it
        following = None if getattr(failure, "deadline", None) else _next(planned, more)
        if following is None:
            skipped += more
            raise exhausted(model, attempts, skipped) if len(attempts) > 1 or skipped else failure
        logger.info("provider %s failed for %s (%s); trying %s", request.provider, model, failure.reason, following.provider)
        yield attempt_of(request.provider, failure)
        yield from more
        skipped += more
        request = following
    if skipped:  # only skipped providers: the plan should have refused this before (selection.plan)
        raise exhausted(model, attempts, skipped)
