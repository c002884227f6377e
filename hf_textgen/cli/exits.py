"""Exit codes, the error -> code table, and the lines an error is reported with.

Standard library only at import; ``hf_textgen`` is imported when an error is classified.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

PROG = "hf-textgen"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_PAYMENT = 4
EXIT_MODEL = 5
EXIT_TIMEOUT = 6
EXIT_RATE_LIMIT = 7
EXIT_INTERRUPTED = 130
EXIT_NO_READER = 141  # 128 + SIGPIPE: what a shell reports for git, cat or grep writing to `| head`

EXIT_CODES: Dict[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "any other error (403/404/5xx, connection failed, invalid or cut stream, ...)",
    EXIT_USAGE: "usage: bad arguments, bad model or provider id, unreadable image or file, empty prompt",
    EXIT_AUTH: "authentication: no token found, or the token was refused (401)",
    EXIT_PAYMENT: "payment required (402); after failover, the last provider's error decides",
    EXIT_MODEL: "model not supported: unknown model (also through :fastest routing), or no usable provider",
    EXIT_TIMEOUT: "timeout",
    EXIT_RATE_LIMIT: "rate limited (429)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_NO_READER: "nobody reads the output: the pipe's reader left (| head; quiet), or stdout is closed (>&-)",
}

# What to do when every provider failed, by the exit code of the last provider's error.
_EXHAUSTED_HINTS = {
    EXIT_PAYMENT: "add credits, or pick other providers with --provider",
    EXIT_RATE_LIMIT: "wait a moment and retry, or pick other providers with --provider",
    EXIT_TIMEOUT: "retry, raise --timeout, or pick other providers with --provider",
}
_DEFAULT_HINT = "retry later, or pick other providers with --provider"
ATTEMPT_WIDTH = 72  # characters of a per-provider line under the summary


class UsageError(Exception):
    """A command-line mistake found after parsing (exit code 2)."""


class TurnInterrupted(KeyboardInterrupt):
    """Ctrl-C while an answer streamed; ``partial`` is the text received until then."""

    def __init__(self, partial: str) -> None:
        super().__init__()
        self.partial = partial


def exit_code_for(error: BaseException) -> int:
    """The documented exit code for an exception (see :data:`EXIT_CODES`)."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, BrokenPipeError):
        return EXIT_NO_READER
    from hf_textgen import errors

    table: Tuple[Tuple[Any, int], ...] = (
        (errors.MissingAuthError, EXIT_AUTH),
        (errors.PaymentRequiredError, EXIT_PAYMENT),
        (errors.RateLimitError, EXIT_RATE_LIMIT),
        (TimeoutError, EXIT_TIMEOUT),
        (errors.ModelNotSupportedError, EXIT_MODEL),
        (errors.ConfigurationError, EXIT_USAGE),
    )
    return next((code for kind, code in table if isinstance(error, kind)), EXIT_ERROR)


def _redact(text: str) -> str:
    from hf_textgen.errors import redact

    return redact(" ".join(text.split()))


def _is_expected(error: BaseException) -> bool:
    from hf_textgen.errors import HFTextGenError

    return isinstance(error, (HFTextGenError, UsageError, TimeoutError))


def attempts_of(error: BaseException) -> List[Tuple[str, BaseException]]:
    """``[(provider, error), ...]`` when every one of several providers failed, else ``[]``."""
    attempts = getattr(error, "attempts", None)
    return list(attempts) if isinstance(attempts, list) and len(attempts) > 1 else []


def short_reason(error: BaseException, limit: int = 300) -> str:
    """Why one provider failed, short: ``402 <server message>``."""
    from hf_textgen.errors import shorten

    reason = getattr(error, "reason", None) or str(error) or type(error).__name__
    status = getattr(error, "status_code", None)
    return shorten(_redact(f"{status} {reason}" if status else reason), limit)


def error_message(error: BaseException, model: Optional[str] = None) -> str:
    """The one line that says what failed, where and what to do; never a token."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    attempts = attempts_of(error)
    if attempts:
        names = ", ".join(name for name, _ in attempts)
        hint = _EXHAUSTED_HINTS.get(exit_code_for(error), _DEFAULT_HINT)
        where = f" for {model}" if model else ""
        return _redact(f"every provider failed{where} ({len(attempts)} tried: {names}); {hint}")
    text = str(error) or type(error).__name__
    if not _is_expected(error):
        return _redact(f"{type(error).__name__}: {text} (an unexpected error: --debug shows where it happened)")
    return _redact(text)


def error_lines(error: BaseException, model: Optional[str] = None, verbose: bool = False) -> List[str]:
    """``hf-textgen: error: ...`` and, when several providers failed, one short line per provider
    under it (their full messages with ``verbose``)."""
    lines = [f"{PROG}: error: {error_message(error, model)}"]
    for name, failure in attempts_of(error):
        text = _redact(str(failure)) if verbose else short_reason(failure, max(20, ATTEMPT_WIDTH - len(name) - 4))
        lines.append(f"  {name}: {text}")
    return lines


def error_fields(error: BaseException, model: Optional[str] = None) -> Dict[str, Any]:
    """The JSON ``error`` object's fields (``--json``)."""
    fields: Dict[str, Any] = {"message": error_message(error, model), "exit_code": exit_code_for(error)}
    attempts = attempts_of(error)
    if attempts:
        fields["attempts"] = [
            {"provider": name, "status": getattr(failure, "status_code", None), "reason": short_reason(failure)}
            for name, failure in attempts
        ]
    return fields
