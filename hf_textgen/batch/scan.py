"""The first pass over the input, before anything is sent: count the rows, find missing and
repeated ids, and check every row of this shard with the library (``ConfigurationError`` before
sending), so that ``strict`` can refuse the run and progress knows its total.

Memory stays flat in the size of the file: lines are read one at a time and only a 64-bit hash
per id is kept (8 bytes a row, in 256 arrays); hashes that meet twice are confirmed or cleared by
reading the file once more for exactly those ids.
"""
from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ..client import Client
from .. import validate
from ..errors import ConfigurationError, HFTextGenError, MissingAuthError
from .rows import BadRow, IdProblem, Row, in_shard, parse, read_lines

__all__ = ["Plan", "BatchInputError", "scan", "check", "SHOWN"]

SHOWN = 20  # problems listed in a message; the rest are counted
_CHECK_STOP_EVERY = 1024  # lines between looks at the stop flag


class BatchInputError(ConfigurationError):
    """The input cannot be run as it is; nothing was sent. ``problems``: the first lines, one
    problem each ("line 4: no "id" ..."); ``count``: how many there are in all."""

    def __init__(self, message: str, problems: List[str], count: int) -> None:
        super().__init__(message)
        self.problems = problems
        self.count = count


@dataclass
class Plan:
    """What the first pass found. ``rows``: non-empty lines in the file; ``shard_rows``: those of
    this shard; ``done``: shard rows already in the output; ``todo``: shard rows to run now
    (bad ones included: each becomes an error row)."""

    path: str
    rows: int = 0
    shard_rows: int = 0
    done: int = 0
    todo: int = 0
    bad: List[BadRow] = field(default_factory=list)
    bad_count: int = 0
    id_problems: List[str] = field(default_factory=list)
    id_problem_count: int = 0

    def refusal(self, strict: bool) -> Optional[BatchInputError]:
        """The error that stops the run before sending: ids first, then (``strict``) bad rows."""
        if self.id_problem_count:
            return _refusal(self.path, "row(s) without a usable or unique id", self.id_problems, self.id_problem_count,
                            "every row needs its own \"id\": resuming and sharding count on it")
        if strict and self.bad_count:
            return _refusal(self.path, "bad row(s) (strict)", [bad.message for bad in self.bad], self.bad_count,
                            "fix them, or run without strict to write each as an error row")
        return None


def _refusal(path: str, what: str, shown: List[str], count: int, advice: str) -> BatchInputError:
    more = f"; ... and {count - len(shown)} more" if count > len(shown) else ""
    return BatchInputError(f"{path}: {count} {what}, nothing was sent: {'; '.join(shown)}{more}. {advice}", shown, count)


def check(row: Row, client: Client, model: Optional[str]) -> Optional[str]:
    """Why the library refuses ``row``, or None. ``create_completion`` checks every value when it
    is called and sends nothing until it is iterated, so this is the library's own check.
    No token at all is not a row's fault: ``MissingAuthError`` is raised. A conversation too long
    for ``max_inputs_lenght`` is not announced here (it is when the row is sent)."""
    params = dict(row.params)
    limit = params.pop("max_inputs_lenght", None)  # trimming is announced when the row is sent, not here
    try:
        if limit is not None:
            validate.integer(1, what="a positive integer, or None to turn trimming off")("max_inputs_lenght", limit)
        chunks = client.create_completion(row.model or model, row.messages, max_inputs_lenght=None, **params)
        getattr(chunks, "close")()  # a generator that never started: nothing was sent
    except MissingAuthError:
        raise
    except HFTextGenError as error:
        return error.message
    return None


class _Ids:
    """64-bit hashes of every id, bucketed so that sorting one bucket costs little memory."""

    def __init__(self) -> None:
        self.buckets = [array("q") for _ in range(256)]

    def add(self, row_id: Any) -> None:
        digest = hash(row_id)
        self.buckets[digest & 255].append(digest)

    def collisions(self) -> Set[int]:
        """Hashes seen more than once (almost always a repeated id)."""
        seen: Set[int] = set()
        for bucket in self.buckets:
            ordered = sorted(bucket)
            seen.update(a for a, b in zip(ordered, ordered[1:]) if a == b)
        return seen


def scan(
    path: str,
    client: Client,
    model: Optional[str],
    shard: Optional[Tuple[int, int]],
    done: Callable[[Any, int], bool],
    stop: Optional[threading.Event] = None,
) -> Plan:
    """Read ``path`` once (twice when ids repeat). ``done(id, line)`` says whether a row is already
    in the output. Returns early, incomplete, when ``stop`` is set."""
    plan, ids = Plan(path), _Ids()
    for line in read_lines(path):
        if stop is not None and line.position % _CHECK_STOP_EVERY == 0 and stop.is_set():
            return plan
        plan.rows += 1
        row = parse(line)
        if isinstance(row, IdProblem):
            _note(plan.id_problems, f"line {row.line}: {row.reason}")
            plan.id_problem_count += 1
            continue
        if row.id is not None:
            ids.add(row.id)
        if in_shard(line, shard):
            _count(plan, row, client, model, done)
    repeated = ids.collisions()
    if repeated:
        _repeats(plan, repeated)
    return plan


def _count(plan: Plan, row: Any, client: Client, model: Optional[str], done: Callable[[Any, int], bool]) -> None:
    plan.shard_rows += 1
    if done(row.id, row.line):
        plan.done += 1
        return
    plan.todo += 1
    reason = check(row, client, model) if isinstance(row, Row) else None
    bad = BadRow(row.line, row.id, reason) if reason else row if isinstance(row, BadRow) else None
    if bad is not None:
        plan.bad_count += 1
        _note(plan.bad, bad)


def _note(shown: List[Any], item: Any) -> None:
    if len(shown) < SHOWN:
        shown.append(item)


def _repeats(plan: Plan, candidates: Set[int]) -> None:
    """Read the file again for the ids whose hashes met, and report those that really repeat."""
    lines: Dict[Any, List[int]] = {}
    for line in read_lines(plan.path):
        row = parse(line)
        row_id = getattr(row, "id", None)
        if row_id is not None and hash(row_id) in candidates:
            lines.setdefault(row_id, []).append(line.number)
    for row_id, numbers in lines.items():
        if len(numbers) > 1:
            shown = ", ".join(map(str, numbers[:5])) + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")
            _note(plan.id_problems, f"id {row_id!r} is on lines {shown}")
            plan.id_problem_count += 1
