"""What a run shows: a progress line (:class:`Printer`) and the summary's text (:func:`format_summary`).
Standard library only; ``\\r`` redraws one line on a terminal, plain lines go to a log or a pipe."""
from __future__ import annotations

import sys
import time
from typing import IO, List, Optional

from .stats import Snapshot, Summary

__all__ = ["Printer", "format_summary", "progress_line"]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _rows(count: int, what: str = "row") -> str:
    return f"{count:,} {what}{'' if count == 1 else 's'}"


def _cost(usd: Optional[float]) -> str:
    return "not reported" if usd is None else f"${usd:.4f}"


def progress_line(s: Snapshot) -> str:
    """``1,234/10,000 rows (12%)  ok 1,200  failed 34  84.1 rows/s  1,203 tok/s  $0.0123  429s 57  ETA 1m47s``"""
    percent = f" ({100 * s.done / s.todo:.0f}%)" if s.todo else ""
    parts = [f"{s.done:,}/{s.todo:,} rows{percent}", f"ok {s.ok:,}", f"failed {s.failed:,}"]
    if s.skipped:
        parts.append(f"skipped {s.skipped:,}")
    parts += [f"{s.rows_per_s:,.1f} rows/s", f"{s.tokens_per_s:,.0f} tok/s"]
    if s.cost_usd is not None:
        parts.append(_cost(s.cost_usd))
    parts += [f"in flight {s.in_flight}", f"429s {s.rate_limited:,}"]
    eta = s.eta_s
    parts.append(f"took {_duration(s.elapsed_s)}" if s.final else f"ETA {_duration(eta)}" if eta is not None else "ETA ?")
    return "  ".join(parts)


class Printer:
    """A ``progress`` callback that writes to ``stream`` (default stderr): on a terminal, one line
    redrawn with ``\\r`` at most every ``interval`` seconds (default 0.5); elsewhere a plain line
    every ``interval`` seconds (default 10). The final snapshot always prints, and ends the line."""

    def __init__(self, stream: Optional[IO[str]] = None, interval: Optional[float] = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self.interval = interval if interval is not None else (0.5 if self.terminal else 10.0)
        self._last = float("-inf")
        self._width = 0

    def __call__(self, snapshot: Snapshot) -> None:
        now = time.monotonic()
        if not snapshot.final and now - self._last < self.interval:
            return
        self._last = now
        line = progress_line(snapshot)
        if self.terminal:
            self.stream.write("\r" + line.ljust(self._width) + ("\n" if snapshot.final else ""))
            self._width = 0 if snapshot.final else len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def format_summary(summary: Summary) -> str:
    """The summary as a few lines of text, the per-provider table included."""
    s = summary
    where = f"{s.input} -> {s.output}" + (f" (shard {s.shard[0]}/{s.shard[1]})" if s.shard else "")
    bad = f" ({_rows(s.bad, 'bad input row')})" if s.bad else ""
    rate = f" ({(s.ok + s.failed) / s.wall_s:,.1f} rows/s)" if s.wall_s > 0 else ""
    lines = [
        f"batch: {where}",
        f"rows: {s.ok:,} ok, {s.failed:,} failed{bad}, {s.skipped:,} skipped (already in the output), "
        f"{s.not_run:,} not run; {s.retried:,} needed a retry",
        f"time: {s.wall_s:,.1f} s{rate}; tokens: {s.prompt_tokens:,} prompt, {s.completion_tokens:,} completion; "
        f"cost: {_cost(s.cost_usd)}",
    ]
    if any(p.answered or p.failed for p in s.providers.values()):
        lines += _table(summary)
    if s.stopped:
        lines.append(f"stopped by {s.stopped}: {_rows(s.not_run)} not written; rerun the same command to resume")
    elif s.failed:
        lines.append(f"{_rows(s.failed)} failed: rerun the same command to retry {'it' if s.failed == 1 else 'them'} "
                     "(error rows are retried)")
    return "\n".join(lines)


def _share(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3g}"


def _table(summary: Summary) -> List[str]:
    head = ["provider", "answered", "failed attempts", "429s", "share now / lowest"]
    rows = [[name, f"{p.answered:,}", f"{p.failed:,}", f"{p.rate_limited:,}", f"{_share(p.share)} / {_share(p.lowest_share)}"]
            for name, p in summary.providers.items() if p.answered or p.failed]
    widths = [max(len(row[column]) for row in [head, *rows]) for column in range(len(head))]
    return ["  ".join(cell.ljust(width) if column == 0 else cell.rjust(width) for column, (cell, width) in enumerate(zip(row, widths))).rstrip()
            for row in [head, *rows]]
