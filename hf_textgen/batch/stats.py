"""What a run counts as it goes (:class:`Stats`), the moment's view for progress
(:class:`Snapshot`) and the end's (:class:`Summary`). Plain values; the runner feeds them."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Tuple

from ..results import ChatResult

__all__ = ["ProviderStats", "Snapshot", "Summary", "Stats"]


@dataclass
class ProviderStats:
    """One provider over the run: rows it answered, attempts that failed on it (429s among them),
    and its share of the requests in flight at the end and at its lowest (None: not shared)."""

    answered: int = 0
    failed: int = 0
    rate_limited: int = 0
    share: Optional[float] = None
    lowest_share: Optional[float] = None


@dataclass(frozen=True)
class Snapshot:
    """The run so far, for a progress display. ``todo``: rows to run this time."""

    done: int
    todo: int
    ok: int
    failed: int
    skipped: int
    in_flight: int
    rate_limited: int
    completion_tokens: int
    cost_usd: Optional[float]
    elapsed_s: float
    final: bool = False

    @property
    def rows_per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> Optional[float]:
        """Seconds left at the pace so far (None before the first row is done)."""
        rate = self.rows_per_s
        return (self.todo - self.done) / rate if rate > 0 else None


@dataclass(frozen=True)
class Summary:
    """The end of a run. ``rows``: non-empty lines of the input; ``shard_rows``: this shard's;
    ``ok`` + ``failed`` (``bad`` of them bad input rows): written now; ``skipped``: already in the
    output; ``not_run``: left for a rerun (stopped early). ``stopped``: None after the last row,
    else why (``"SIGINT"``, ``"SIGTERM"``)."""

    input: str
    output: str
    shard: Optional[Tuple[int, int]]
    rows: int
    shard_rows: int
    ok: int
    failed: int
    bad: int
    skipped: int
    not_run: int
    retried: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Optional[float]
    wall_s: float
    providers: Dict[str, ProviderStats] = field(default_factory=dict)
    stopped: Optional[str] = None
    notes: Tuple[str, ...] = ()

    @property
    def interrupted(self) -> bool:
        return self.stopped is not None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class Stats:
    """Counters of one run (touched only on the event loop's thread)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.todo = self.ok = self.failed = self.bad = self.skipped = self.retried = 0
        self.prompt_tokens = self.completion_tokens = self.rate_limited = 0
        self.cost_usd: Optional[float] = None
        self.providers: Dict[str, ProviderStats] = {}

    def provider(self, name: str) -> ProviderStats:
        if name not in self.providers:
            self.providers[name] = ProviderStats()
        return self.providers[name]

    def answered(self, result: ChatResult) -> None:
        self.ok += 1
        if result.provider:
            self.provider(result.provider).answered += 1
        if result.usage is not None:
            self.prompt_tokens += result.usage.prompt_tokens
            self.completion_tokens += result.usage.completion_tokens
        if result.cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + result.cost.total_usd

    def attempt_failed(self, provider: str, status: Optional[int]) -> None:
        stats = self.provider(provider)
        stats.failed += 1
        if status == 429:
            stats.rate_limited += 1
            self.rate_limited += 1

    def row_failed(self, bad: bool = False) -> None:
        self.failed += 1
        self.bad += bad

    @property
    def done(self) -> int:
        return self.ok + self.failed

    def snapshot(self, in_flight: int, final: bool = False) -> Snapshot:
        return Snapshot(self.done, self.todo, self.ok, self.failed, self.skipped, in_flight, self.rate_limited,
                        self.completion_tokens, self.cost_usd, time.monotonic() - self.started, final)

    def summary(self, plan: Any, output: str, shard: Optional[Tuple[int, int]], stopped: Optional[str],
                notes: Tuple[str, ...], shares: Dict[str, Tuple[float, float]]) -> Summary:
        """The end's view; ``shares``: (share now, lowest) per provider."""
        for name, (now, lowest) in shares.items():
            stats = self.provider(name)
            stats.share = now if stats.share is None else min(stats.share, now)
            stats.lowest_share = lowest if stats.lowest_share is None else min(stats.lowest_share, lowest)
        return Summary(
            input=plan.path, output=output, shard=shard, rows=plan.rows, shard_rows=plan.shard_rows, ok=self.ok,
            failed=self.failed, bad=self.bad, skipped=self.skipped, not_run=max(0, self.todo - self.done),
            retried=self.retried, prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            cost_usd=self.cost_usd, wall_s=time.monotonic() - self.started,
            providers=dict(sorted(self.providers.items())), stopped=stopped, notes=notes,
        )
