"""One run's work on the event loop: read the rows to do, keep at most ``concurrency`` in progress,
send each with :meth:`hf_textgen.Client.stream_async` to the provider its share picks (the others
follow as the failover order), feed every attempt back to the shares, retry a row that failed on
every provider, and write each finished row. Failover and streaming are the library's own.
"""
from __future__ import annotations

import logging
import math
import random
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import anyio
import anyio.abc
import anyio.lowlevel

from ..catalog import is_usable
from ..client import Client
from ..errors import ConfigurationError, HFTextGenError, MissingAuthError
from ..failover import allows_failover
from ..results import ChatResult
from ..types import Attempt, ProviderInfo
from .output import Output
from .records import bad_record, error_record, final_attempt, ok_record, retry_after, retryable
from .rows import BadRow, Row, in_shard, parse, read_lines
from .scan import Plan, check
from .shares import MAX_PAUSE, Shares
from .stats import Snapshot, Stats

logger = logging.getLogger("hf_textgen.batch")

PROGRESS_EVERY = 0.5  # seconds between progress callbacks
MAX_ROW_BACKOFF = 60.0
_YIELD_EVERY = 256  # input lines read between checkpoints, so reading never starves the streams


class Job:
    """The rows of one plan. :meth:`run` returns when every row is written, or raises the error
    that stopped the run (a refused token, an output that cannot be written)."""

    def __init__(self, client: Client, plan: Plan, output: Output, stats: Stats, *, model: Optional[str], concurrency: int,
                 retries: int, backoff: float, shard: Optional[Tuple[int, int]],
                 progress: Optional[Callable[[Snapshot], None]]) -> None:
        self.client, self.plan, self.output, self.stats = client, plan, output, stats
        self.model, self.concurrency, self.retries, self.backoff, self.shard = model, concurrency, retries, backoff, shard
        self.progress = progress
        self.slots = anyio.Semaphore(concurrency)
        self.shares: Dict[str, Optional[Shares]] = {}
        self._lookups: Dict[str, anyio.Lock] = {}
        self._room = anyio.Event()
        self.in_flight = 0
        self._fatal: Optional[BaseException] = None
        self._default_providers = client.provider  # Client(provider=...): the candidates

    async def run(self) -> None:
        async with anyio.create_task_group() as job:
            if self.progress is not None:
                job.start_soon(self._report)
            async with anyio.create_task_group() as rows:
                try:
                    await self._feed(rows)
                except Exception as error:  # reading the input failed: stop, and say so after
                    self._stop(error, rows.cancel_scope)
            job.cancel_scope.cancel()
        if self._fatal is not None:
            raise self._fatal

    def share_limits(self) -> Dict[str, Tuple[float, float]]:
        """(share now, lowest share) per provider; the smallest when several models share one."""
        merged: Dict[str, Tuple[float, float]] = {}
        for shares in self.shares.values():
            for name, (now, lowest) in (shares.limits() if shares else {}).items():
                old = merged.get(name, (now, lowest))
                merged[name] = (min(old[0], now), min(old[1], lowest))
        return merged

    def _stop(self, error: BaseException, scope: anyio.CancelScope) -> None:
        if self._fatal is None:
            self._fatal = error
        scope.cancel()

    async def _report(self) -> None:
        while True:
            await anyio.sleep(PROGRESS_EVERY)
            self._call_progress(self.stats.snapshot(self.in_flight))

    def _call_progress(self, snapshot: Snapshot) -> None:
        try:
            self.progress(snapshot)  # type: ignore[misc]
        except Exception:  # a broken display must not stop the rows
            logger.exception("the batch progress callback failed; no more progress reports")
            self.progress = None

    async def _feed(self, rows: anyio.abc.TaskGroup) -> None:
        for count, line in enumerate(read_lines(self.plan.path)):
            if count % _YIELD_EVERY == _YIELD_EVERY - 1:
                await anyio.lowlevel.checkpoint()
            if not in_shard(line, self.shard):
                continue
            row = parse(line)
            if not isinstance(row, (Row, BadRow)) or self.output.done(row.id, row.line):
                continue  # id problems stopped the run before it began
            reason = check(row, self.client, self.model) if isinstance(row, Row) else None
            if reason is not None:
                row = BadRow(row.line, row.id, reason)
            if isinstance(row, BadRow):
                self.output.write(bad_record(row, self._model_of(row)))
                self.stats.row_failed(bad=True)
                continue
            await self.slots.acquire()
            rows.start_soon(self._row, row, rows.cancel_scope)

    def _model_of(self, row: Any) -> Optional[str]:
        try:
            return self.client.get_model(getattr(row, "model", None) or self.model)
        except Exception:  # a bad model name: the row says so itself
            return getattr(row, "model", None) or self.model

    async def _row(self, row: Row, scope: anyio.CancelScope) -> None:
        try:
            self.output.write(await self._rounds(row))
        except Exception as error:  # a refused token or an unwritable output stops the run
            self._stop(error, scope)
        finally:
            self.slots.release()

    async def _rounds(self, row: Row) -> Dict[str, Any]:
        model = self._model_of(row) or ""
        started, retries = time.monotonic(), 0
        attempts: List[Attempt] = []
        while True:
            errors: List[Optional[BaseException]] = []
            try:
                result = await self._once(row, model, attempts, errors)
            except MissingAuthError:
                raise
            except ConfigurationError as error:  # the library refused the row before sending it
                self.stats.row_failed(bad=True)
                return bad_record(BadRow(row.line, row.id, error.message), model)
            except HFTextGenError as error:
                if retries < self.retries and retryable(errors):
                    retries += 1
                    self.stats.retried += retries == 1
                    await anyio.sleep(self._backoff(retries, errors))
                    continue
                self.stats.row_failed()
                return error_record(row.id, model, error, attempts, time.monotonic() - started, retries)
            self.stats.answered(result)
            return ok_record(row.id, model, result, attempts, time.monotonic() - started, retries)

    def _backoff(self, retries: int, errors: Sequence[Optional[BaseException]]) -> float:
        hint = max([min(retry_after(error) or 0.0, MAX_PAUSE) for error in errors] + [0.0])
        return float(min(MAX_ROW_BACKOFF, max(hint, self.backoff * 2 ** (retries - 1) * random.uniform(0.5, 1.0))))

    async def _once(self, row: Row, model: str, attempts: List[Attempt], errors: List[Optional[BaseException]]) -> ChatResult:
        """One round: the library's failover over the order the shares picked."""
        shares, order = await self._route(row, model)
        params = dict(row.params)
        if order is not None:
            params["provider"] = order
        current, sent_at = (order[0] if order else None), time.monotonic()
        self.in_flight += 1
        try:
            async with self.client.stream_async(row.model or self.model, row.messages, **params) as stream:
                async for chunk in stream:
                    if isinstance(chunk, ProviderInfo) and chunk.provider != current:  # failover moved on
                        if shares is not None and current is not None:
                            shares.end(current)
                            shares.begin(chunk.provider)
                        current, sent_at = chunk.provider, time.monotonic()
                    elif isinstance(chunk, Attempt):
                        self._failed(shares, chunk, sent_at, attempts, errors)
                result = await stream.result()
        except HFTextGenError as error:
            final = final_attempt(error, current)
            if final is not None and allows_failover(error):
                self._failed(shares, final, sent_at, attempts, errors)
            else:
                errors.append(error)
            raise
        finally:
            self.in_flight -= 1
            if shares is not None and current is not None:
                shares.end(current)
                self._room.set()
                self._room = anyio.Event()
        if shares is not None and result.provider:
            shares.succeeded(result.provider)
        return result

    def _failed(self, shares: Optional[Shares], attempt: Attempt, sent_at: float, attempts: List[Attempt],
                errors: List[Optional[BaseException]]) -> None:
        attempts.append(attempt)
        errors.append(attempt.error)
        if attempt.skipped:
            return
        self.stats.attempt_failed(attempt.provider, attempt.status)
        if shares is not None:
            shares.failed(attempt.provider, sent_at, time.monotonic(), retry_after(attempt.error))

    async def _route(self, row: Row, model: str) -> Tuple[Optional[Shares], Optional[List[str]]]:
        """The shares and failover order for a row; (None, None) when the router or the row decides."""
        named = row.params.get("provider", self._default_providers)
        if row.params.get("api_base") or named == "auto" or ":" in model:
            return None, None
        shares = await self._shares_for(model)
        among = [named] if isinstance(named, str) else list(named) if named else None
        if shares is None or (among is not None and not shares.knows(among)):
            return None, None
        while True:
            now = time.monotonic()
            order = shares.pick(now, among)
            if order is not None:
                return shares, order
            room, hint = self._room, shares.wait_hint(now, among)
            with anyio.move_on_after(math.inf if hint is None else hint):
                await room.wait()

    async def _shares_for(self, model: str) -> Optional[Shares]:
        """The model's shares, from its mapping's live conversational providers (looked up once;
        None when it has none: the library then says so for each row)."""
        if model not in self.shares:
            async with self._lookups.setdefault(model, anyio.Lock()):
                if model not in self.shares:
                    mapping = await self.client.get_mapping(model)
                    names = [name for name, entry in mapping.items() if is_usable(entry)]
                    self.shares[model] = Shares(names, self.concurrency) if names else None
        return self.shares[model]
