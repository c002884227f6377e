"""The time limits of one call, computed once from :class:`~hf_textgen.types.Timeouts` when the
call starts, and never changed: every layer asks the same plan, saying whether the answer's
content has started (before it, a ``first_token`` deadline applies too; after it, only ``total``).

Times are ``time.monotonic()`` values; ``None`` means no deadline (never ``math.inf``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Tuple

from .errors import StreamTimeoutError
from .types import Timeouts

TOTAL = "total deadline"
FIRST_TOKEN = "time-to-first-token deadline"


@dataclass(frozen=True)
class Deadlines:
    """``connect`` and ``read`` (idle seconds between bytes) per request; ``total_at`` and
    ``first_token_at`` absolute, for the whole call (failover does not restart them)."""

    connect: float
    read: float
    total_at: Optional[float] = None
    first_token_at: Optional[float] = None

    @classmethod
    def start(cls, timeouts: Timeouts, now: Optional[float] = None) -> Deadlines:
        now = time.monotonic() if now is None else now
        return cls(
            timeouts.connect,
            timeouts.read,
            None if timeouts.total is None else now + timeouts.total,
            None if timeouts.first_token is None else now + timeouts.first_token,
        )

    def due(self, started: bool) -> Optional[Tuple[float, str]]:
        """The deadline that applies, and its name: before content the earlier of total and
        first-token (total on a tie), after it total; None when there is none."""
        total, first = self.total_at, None if started else self.first_token_at
        if first is not None and (total is None or first < total):
            return first, FIRST_TOKEN
        return None if total is None else (total, TOTAL)

    def request_timeouts(self, started: bool = False) -> Tuple[float, float]:
        """(connect, read) for one request: the configured ones, cut to what the deadline leaves."""
        due = self.due(started)
        if due is None:
            return self.connect, self.read
        left = max(0.0, due[0] - time.monotonic())
        return min(self.connect, left), min(self.read, left)

    def read_timeout(self, started: bool, now: float) -> float:
        """Seconds the next read may wait: the idle limit, cut to what the deadline leaves."""
        due = self.due(started)
        return self.read if due is None else min(self.read, max(0.0, due[0] - now))

    def passed(self, started: bool, now: Optional[float] = None) -> Optional[str]:
        """The name of the deadline that has passed, if one has."""
        due = self.due(started)
        if due is not None and due[0] <= (time.monotonic() if now is None else now):
            return due[1]
        return None

    def expired(self, what: str, place: str, provider: Optional[str] = None) -> StreamTimeoutError:
        """The error for a deadline that passed."""
        error = StreamTimeoutError(f"{what} passed ({place})", provider=provider, reason=f"{what} passed")
        error.deadline = what
        return error
