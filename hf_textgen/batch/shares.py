"""Each provider's share of a model's requests in flight, adapted to how it answers (AIMD, the
rule TCP uses for its window). Pure: every method takes the time it is told.

- A share starts at the run's concurrency ``N`` (the ceiling). A row goes to the provider with
  room (``in_flight < share``, not paused) that is least loaded for its share
  (``(in_flight + 1) / share``), ties in the user's order, so load spreads in proportion to shares.
- A failed attempt (429, 503, any status that moves failover on, a connection failure) halves the
  share, at most once per round trip: only a request sent after the last cut can cut it again, as
  the requests in flight then were sent at the old rate. The floor is 1, so a provider is probed.
- ``Retry-After`` pauses the provider that long (capped at :data:`MAX_PAUSE`): it is not chosen
  first meanwhile and goes to the end of the failover order. Without it, a second failure in a row
  pauses it 0.5 s, then 1, 2, 4 ... up to :data:`MAX_BACKOFF`.
- Each success adds ``1 / share`` (one more request per share-full of successes), up to ``N``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["Share", "Shares", "MAX_PAUSE", "MAX_BACKOFF", "FIRST_BACKOFF"]

MAX_PAUSE = 120.0  # seconds of Retry-After honoured; a longer hint is usually a quota reset
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
FLOOR = 1.0


@dataclass
class Share:
    """One provider: its share (``limit``), requests in flight, and when it may be chosen again."""

    name: str
    limit: float
    in_flight: int = 0
    ready_at: float = 0.0
    cut_at: float = float("-inf")
    failures: int = 0  # in a row
    lowest: float = 0.0

    def has_room(self, now: float) -> bool:
        return now >= self.ready_at and self.in_flight < max(1, int(self.limit))


class Shares:
    """The shares of one model's providers, in the user's order."""

    def __init__(self, names: Sequence[str], ceiling: int) -> None:
        if not names:
            raise ValueError("a model needs at least one provider to share its load")
        self.ceiling = float(ceiling)
        self.order = list(names)
        self.by_name = {name: Share(name, self.ceiling, lowest=self.ceiling) for name in names}

    def pick(self, now: float, among: Optional[Sequence[str]] = None) -> Optional[List[str]]:
        """The failover order for one request, its first provider counted in flight; None when no
        provider of ``among`` (default: all) has room now."""
        names = list(among) if among is not None else self.order
        known = [self.by_name[name] for name in names if name in self.by_name]
        roomy = [share for share in known if share.has_room(now)]
        if not roomy:
            return None
        chosen = min(roomy, key=lambda share: (share.in_flight + 1) / share.limit)  # min keeps the first of ties
        chosen.in_flight += 1
        rest = [name for name in names if name != chosen.name]
        paused = [name for name in rest if name in self.by_name and self.by_name[name].ready_at > now]
        return [chosen.name, *(name for name in rest if name not in paused), *paused]

    def wait_hint(self, now: float, among: Optional[Sequence[str]] = None) -> Optional[float]:
        """Seconds until a paused provider of ``among`` may be chosen, or None (wait for a release)."""
        names = list(among) if among is not None else self.order
        pauses = [share.ready_at - now for share in (self.by_name.get(name) for name in names)
                  if share is not None and share.ready_at > now]
        return min(pauses) if pauses else None

    def knows(self, names: Sequence[str]) -> bool:
        return any(name in self.by_name for name in names)

    def begin(self, name: str) -> None:
        """A request moved on (failover) to ``name``."""
        if name in self.by_name:
            self.by_name[name].in_flight += 1

    def end(self, name: str) -> None:
        """A request on ``name`` is over."""
        if name in self.by_name:
            self.by_name[name].in_flight -= 1

    def succeeded(self, name: str) -> None:
        share = self.by_name.get(name)
        if share is not None:
            share.failures = 0
            share.limit = min(self.ceiling, share.limit + 1.0 / share.limit)

    def failed(self, name: str, sent_at: float, now: float, retry_after: Optional[float] = None) -> None:
        """An attempt sent at ``sent_at`` failed at ``now``: cut the share (once per round trip), pause."""
        share = self.by_name.get(name)
        if share is None:
            return
        share.failures += 1
        if sent_at >= share.cut_at:
            share.limit = max(FLOOR, share.limit / 2)
            share.cut_at = now
            share.lowest = min(share.lowest, share.limit)
        if retry_after is not None and retry_after >= 0:
            pause = min(float(retry_after), MAX_PAUSE)
        else:
            pause = 0.0 if share.failures < 2 else min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (share.failures - 2))
        share.ready_at = max(share.ready_at, now + pause)

    def limits(self) -> Dict[str, Tuple[float, float]]:
        """Each provider's (share now, lowest share)."""
        return {name: (share.limit, share.lowest) for name, share in self.by_name.items()}
