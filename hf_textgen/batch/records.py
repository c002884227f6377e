"""Output rows as values, and which failures a later round may cure. Pure.

A finished row::

    {"id", "model", "provider", "text", "finish_reason", "usage": {prompt_tokens, completion_tokens,
     total_tokens} | null, ["cost": {input_usd, output_usd, total_usd}], ["tool_calls": [...]],
     ["reasoning": "..."], ["trimmed": {...}], "attempts": [{provider, status, reason}], "retries",
     "elapsed_s"}

A failed one: ``{"id", "model", "error": {"type", "message", "status"}, "attempts", "retries",
"elapsed_s"}``; a bad input row also names its ``line`` (and its ``id`` is null when the line was
not JSON). ``attempts`` lists every provider a row moved on from, over all its rounds.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from ..errors import HFTextGenError, ResponseError, ResponseStatusError
from ..failover import attempt_of
from ..results import ChatResult
from ..types import Attempt
from .rows import BadRow

__all__ = ["ok_record", "error_record", "bad_record", "retryable", "final_attempt", "retry_after"]


def _attempts(attempts: Sequence[Attempt]) -> List[Dict[str, Any]]:
    return [{"provider": a.provider, "status": a.status, "reason": a.reason, **({"skipped": True} if a.skipped else {})}
            for a in attempts]


def ok_record(row_id: Any, model: str, result: ChatResult, attempts: Sequence[Attempt], elapsed: float, retries: int) -> Dict[str, Any]:
    usage = result.usage
    record: Dict[str, Any] = {
        "id": row_id,
        "model": result.model or model,
        "provider": result.provider,
        "text": result.text,
        "finish_reason": result.finish_reason,
        "usage": None if usage is None else {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                                             "total_tokens": usage.total_tokens},
    }
    if result.cost is not None:
        record["cost"] = {"input_usd": result.cost.input_usd, "output_usd": result.cost.output_usd, "total_usd": result.cost.total_usd}
    if result.tool_calls:
        record["tool_calls"] = result.tool_calls
    if result.reasoning:
        record["reasoning"] = result.reasoning
    if result.trimmed is not None:
        trimmed = result.trimmed
        record["trimmed"] = {"dropped_messages": trimmed.dropped_messages, "dropped_chars": trimmed.dropped_chars, "limit": trimmed.limit}
    record.update(attempts=_attempts(attempts), retries=retries, elapsed_s=round(elapsed, 3))
    return record


def _error(error: BaseException) -> Dict[str, Any]:
    message = error.message if isinstance(error, HFTextGenError) else f"{type(error).__name__}: {error}"
    return {"type": type(error).__name__, "message": message, "status": getattr(error, "status_code", None)}


def error_record(row_id: Any, model: Optional[str], error: BaseException, attempts: Sequence[Attempt], elapsed: float,
                 retries: int, line: Optional[int] = None) -> Dict[str, Any]:
    record: Dict[str, Any] = {"id": row_id, "model": model}
    if line is not None:
        record["line"] = line
    record.update(error=_error(error), attempts=_attempts(attempts), retries=retries, elapsed_s=round(elapsed, 3))
    return record


def bad_record(bad: BadRow, model: Optional[str] = None) -> Dict[str, Any]:
    """The error row of a row the library refuses (or that is not a row at all), naming its line."""
    return {"id": bad.id, "model": model, "line": bad.line,
            "error": {"type": "ConfigurationError", "message": bad.message, "status": None},
            "attempts": [], "retries": 0, "elapsed_s": 0.0}


def final_attempt(error: BaseException, provider: Optional[str]) -> Optional[Attempt]:
    """The failure a stream raised, as an attempt of the provider it came from (if known)."""
    name = getattr(error, "provider", None) or provider
    if not name or not isinstance(error, HFTextGenError):
        return None
    return attempt_of(name, error)


def retry_after(error: Optional[BaseException]) -> Optional[float]:
    """The server's ``Retry-After`` (seconds) carried by a ``RateLimitError``, if any."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _curable(error: Optional[BaseException]) -> bool:
    if isinstance(error, ResponseStatusError):
        status = error.status_code or 0
        return status in (408, 429) or status >= 500
    return isinstance(error, ResponseError)  # connection, timeout, an error inside the stream, a cut stream


def retryable(errors: Sequence[Optional[BaseException]]) -> bool:
    """Whether another round may succeed: some provider failed in a passing way (408, 429, 5xx, a
    connection, a timeout, a broken stream), not all with 400, 401, 402, 403, 404 or a bad row."""
    return any(_curable(error) for error in errors)
