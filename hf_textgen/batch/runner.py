"""``run_async`` and ``run``: check the settings, open (and repair) the output, make the first pass,
then let a :class:`~hf_textgen.batch.job.Job` do the rows; the :class:`Summary` at the end.

Stopping: cancelling ``run_async`` (a cancel scope, ``anyio.fail_after``, a task group) cancels
the rows in progress (the bridge closes their connections), leaves every finished row on disk and
propagates the cancellation. With ``handle_signals`` (``run`` in the main thread), SIGINT and
SIGTERM do the same and the Summary comes back with ``stopped="SIGINT"`` (or ``"SIGTERM"``).
"""
from __future__ import annotations

import asyncio
import functools
import math
import os
import signal
import threading
from typing import Any, Callable, Optional, Tuple

import anyio
import anyio.to_thread

from ..client import Client
from ..errors import ConfigurationError
from .job import Job
from .output import Output
from .rows import check_shard
from .scan import Plan, scan
from .stats import Snapshot, Stats, Summary

__all__ = ["run", "run_async"]

Progress = Optional[Callable[[Snapshot], None]]


def _check(input_path: Any, output_path: Any, concurrency: Any, retries: Any, shard: Any, retry_backoff: Any,
           model: Any, progress: Any) -> Optional[Tuple[int, int]]:
    """Refuse unusable settings before anything is opened; returns the checked shard."""
    for name, path in (("input_path", input_path), ("output_path", output_path)):
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ConfigurationError(f"{name} must be a file path, not {path!r:.60}")
    if not os.path.isfile(input_path):
        why = "is not a file (it is read twice: give a file, not a directory or a pipe)" if os.path.exists(input_path) else "no such file"
        raise ConfigurationError(f"cannot read the input file {os.fspath(input_path)}: {why}")
    if os.path.exists(output_path) and os.path.samefile(input_path, output_path):
        raise ConfigurationError("the output file must not be the input file: the answers go to a file of their own")
    whole = [("concurrency", concurrency, 1), ("retries", retries, 0)]
    for name, value, low in whole:
        if type(value) is not int or value < low:
            raise ConfigurationError(f"{name} must be a whole number >= {low}, not {value!r:.60}")
    if isinstance(retry_backoff, bool) or not isinstance(retry_backoff, (int, float)) or not 0 <= retry_backoff < math.inf:
        raise ConfigurationError(f"retry_backoff must be a number of seconds >= 0, not {retry_backoff!r:.60}")
    if model is not None and not isinstance(model, str):
        raise ConfigurationError(f"model must be a model id or alias (a string) or None, not {model!r:.60}")
    if progress is not None and not callable(progress):
        raise ConfigurationError(f"progress must be a callable taking a Snapshot, or None, not {progress!r:.60}")
    try:
        return check_shard(shard)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


class _Stop:
    """Why the run stopped early (a signal's name), and the flag the first pass looks at."""

    def __init__(self) -> None:
        self.reason: Optional[str] = None
        self.flag = threading.Event()

    def set(self, reason: str, scope: anyio.CancelScope) -> None:
        self.reason = reason
        self.flag.set()
        scope.cancel()


async def _watch_signals(stop: _Stop, scope: anyio.CancelScope) -> None:
    try:
        receiver = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
        with receiver as signals:
            async for number in signals:
                stop.set(signal.Signals(number).name, scope)
                return
    except NotImplementedError:  # pragma: no cover - an event loop without signal support
        return


async def run_async(
    input_path: str,
    output_path: str,
    *,
    model: Optional[str] = None,
    concurrency: int = 16,
    retries: int = 2,
    shard: Optional[Tuple[int, int]] = None,
    strict: bool = False,
    keep_errors: bool = False,
    client: Optional[Client] = None,
    progress: Progress = None,
    retry_backoff: float = 1.0,
    handle_signals: bool = False,
) -> Summary:
    """Run every row of ``input_path`` (JSONL) not yet in ``output_path``, appending one JSON line
    per finished row, on the current event loop (asyncio or trio).

    ``model``: for rows that name none (default: the library's default model); ``concurrency``: rows
    in progress at once (shared between the model's providers by AIMD shares); ``retries``: further
    rounds for a row that failed on every provider in a passing way, ``retry_backoff`` seconds
    doubling (at least the server's Retry-After); ``shard=(K, N)``: only rows whose position is K
    modulo N; ``strict``: refuse the run when any row is bad, instead of writing error rows;
    ``keep_errors``: error rows of an earlier run count as done (default: retried); ``progress``:
    called with a :class:`Snapshot` twice a second and once at the end.

    Raises ``ConfigurationError`` (``BatchInputError`` for the input's rows) before anything is
    sent, ``MissingAuthError`` without a token or when it is refused (the rows finished stay)."""
    checked = _check(input_path, output_path, concurrency, retries, shard, retry_backoff, model, progress)
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    client = client if client is not None else Client()
    stop, stats, plan = _Stop(), Stats(), Plan(input_path)
    job: Optional[Job] = None
    failure: Optional[BaseException] = None
    created = not os.path.exists(output_path)
    with anyio.CancelScope(shield=True):  # once opened, it is closed below, whatever happens
        output = await anyio.to_thread.run_sync(Output.open, output_path, keep_errors)
    try:
        async with anyio.create_task_group() as scope:
            if handle_signals:
                scope.start_soon(_watch_signals, stop, scope.cancel_scope)
            try:
                plan = await anyio.to_thread.run_sync(scan, input_path, client, model, checked, output.done, stop.flag)
                failure = plan.refusal(strict)
                if failure is None and stop.reason is None:
                    stats.todo, stats.skipped = plan.todo, plan.done
                    job = Job(client, plan, output, stats, model=model, concurrency=concurrency, retries=retries,
                              backoff=float(retry_backoff), shard=checked, progress=progress)
                    await job.run()
            except Exception as error:  # raised after the task group, not wrapped in an ExceptionGroup
                failure = error
            scope.cancel_scope.cancel()
    finally:
        output.close()
    if failure is not None:
        if created and os.path.getsize(output_path) == 0:  # refused before any row: leave no new file behind
            os.unlink(output_path)
        raise failure
    if progress is not None and job is not None and job.progress is not None:
        job.progress(stats.snapshot(0, final=True))
    limits = job.share_limits() if job is not None else {}
    return stats.summary(plan, output_path, checked, stop.reason, tuple(output.notes), limits)


def _refuse_inside_a_loop() -> None:
    try:
        asyncio.get_running_loop()
        library: Optional[str] = "asyncio"
    except RuntimeError:
        try:
            anyio.get_current_task()
            library = "an async event loop"
        except Exception:
            library = None
    if library:
        raise RuntimeError(
            f"hf_textgen.batch.run() was called inside a running event loop ({library}), which it would block: "
            "use `await hf_textgen.batch.run_async(...)` there instead"
        )


def run(
    input_path: str,
    output_path: str,
    *,
    model: Optional[str] = None,
    concurrency: int = 16,
    retries: int = 2,
    shard: Optional[Tuple[int, int]] = None,
    strict: bool = False,
    keep_errors: bool = False,
    client: Optional[Client] = None,
    progress: Progress = None,
    retry_backoff: float = 1.0,
    handle_signals: Optional[bool] = None,
) -> Summary:
    """:func:`run_async` from synchronous code (its own event loop, ``anyio.run``); refuses to run
    inside a running event loop. ``handle_signals`` defaults to True in the main thread: Ctrl-C
    (SIGINT) or SIGTERM then stops the run cleanly and returns its Summary (``stopped`` set)
    instead of raising ``KeyboardInterrupt``."""
    _refuse_inside_a_loop()
    if handle_signals is None:
        handle_signals = threading.current_thread() is threading.main_thread()
    call = functools.partial(
        run_async, input_path, output_path, model=model, concurrency=concurrency, retries=retries, shard=shard,
        strict=strict, keep_errors=keep_errors, client=client, progress=progress, retry_backoff=retry_backoff,
        handle_signals=handle_signals,
    )
    return anyio.run(call)
