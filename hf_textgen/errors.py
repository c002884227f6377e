"""Every failure hf_textgen raises, and the redaction that keeps tokens out of them.

Exception tree::

    HFTextGenError
    ├── ConfigurationError (also ValueError)   bad input: model id, provider name, parameters
    ├── ModelNotSupportedError                  unknown model, or no usable provider for it
    ├── ResponseError                           error payloads, invalid or broken streams
    │   ├── ConnectError                        connection failed or broke before the answer
    │   └── StreamTimeoutError (also TimeoutError)  connect, idle or total deadline passed
    └── ResponseStatusError                     any HTTP error status (``status_code``, ``param``)
        ├── MissingAuthError                    401, or no token at all
        ├── PaymentRequiredError                402
        └── RateLimitError                      429 (``retry_after`` in seconds, or None)

Warnings (``warnings.warn``)::

    UserWarning
    └── InputTrimmedWarning                     messages were left out (``max_inputs_lenght``)

When failover runs out of providers it raises the last provider's error, re-worded to list what
every provider answered, with ``attempts`` = [(provider, error), ...].

Messages say what failed, where (model, provider, URL without secrets, status) and what to do.
No message ever contains a token: :func:`redact` runs on every message built here.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any, Mapping, Optional

__all__ = [
    "HFTextGenError",
    "ConfigurationError",
    "ModelNotSupportedError",
    "ResponseError",
    "StreamTimeoutError",
    "ConnectError",
    "ResponseStatusError",
    "MissingAuthError",
    "PaymentRequiredError",
    "RateLimitError",
    "InputTrimmedWarning",
    "redact",
]

# Hugging Face tokens (hf_...), bearer values and generic api keys (sk-..., long secrets after key=).
# Token-shaped values: Hugging Face tokens, OpenAI-style keys, bearer credentials.
_SECRET = re.compile(r"hf_[A-Za-z0-9]{6,}|sk-[A-Za-z0-9_\-]{6,}|(?i:bearer)\s+[A-Za-z0-9_\-.~+/=]{4,}")
# Secret-looking parameters (``api_key=...`` in a URL or text) keep their name and lose their value.
_SECRET_PARAM = re.compile(r"(?i)\b((?:api[_-]?key|apikey|key|token|access_token|secret|password|sig|signature|auth)=)[^\s&\"',;]{4,}")
# Credentials in a URL: ``https://user:password@host`` -> ``https://***@host``.
_USERINFO = re.compile(r"(://)[^/\s@]+@")
_known_secrets: "set[str]" = set()
MAX_SERVER_MESSAGE = 300


def remember_secret(secret: Optional[str]) -> None:
    """Register a token value so that :func:`redact` removes it even when it looks unusual."""
    if secret and len(secret) >= 8:  # shorter values ("EMPTY") would mask ordinary words
        _known_secrets.add(secret)


def redact(text: str) -> str:
    """Return ``text`` with every token-looking value replaced by ``***``."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    text = _SECRET.sub("***", text)
    text = _SECRET_PARAM.sub(r"\1***", text)
    return _USERINFO.sub(r"\1***@", text)


def shorten(text: str, limit: int = MAX_SERVER_MESSAGE) -> str:
    """Collapse white space and cut ``text`` to ``limit`` characters (server messages can be pages)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HFTextGenError(Exception):
    """Base class of every hf_textgen error; the message is redacted when built.

    ``reason`` is the short form for one-line reports (a failover line, a batch row): the
    server's own message or what went wrong, without the where (defaults to the message)."""

    def __init__(self, message: str, *, reason: Optional[str] = None) -> None:
        super().__init__(redact(message))
        self.reason = shorten(redact(reason)) if reason else self.message

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(HFTextGenError, ValueError):
    """The caller gave something unusable (model id, provider name, parameter); nothing was sent."""


class ModelNotSupportedError(HFTextGenError):
    """The model is unknown to the Hub or none of its providers can serve chat."""


class ResponseError(HFTextGenError):
    """The server answered with an error payload, or the stream was invalid or cut."""

    def __init__(self, message: str, *, provider: Optional[str] = None, reason: Optional[str] = None) -> None:
        super().__init__(message, reason=reason)
        self.provider = provider


class ConnectError(ResponseError):
    """The connection could not be made, or broke before the answer arrived."""


class StreamTimeoutError(ResponseError, TimeoutError):
    """A connect, idle (between bytes) or total deadline passed. ``deadline`` names a deadline of
    the whole call (``"total deadline"``, ``"time-to-first-token deadline"``), None for the others."""

    deadline: Optional[str] = None


class ResponseStatusError(HFTextGenError):
    """The server answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        provider: Optional[str] = None,
        server_message: str = "",
        reason: Optional[str] = None,
        param: Optional[str] = None,
    ) -> None:
        super().__init__(message, reason=reason or server_message or (f"HTTP {status_code}" if status_code else None))
        self.status_code = status_code
        self.provider = provider
        self.server_message = redact(server_message)
        self.param = param  # the parameter an OpenAI-shaped error names (``error.param``), if any


class MissingAuthError(ResponseStatusError):
    """No token was found, or the server refused it (401)."""


class PaymentRequiredError(ResponseStatusError):
    """402: credits exhausted or pay-as-you-go not enabled for that provider."""


class RateLimitError(ResponseStatusError):
    """429: rate limited. ``retry_after`` holds the server's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(message, **kw)
        self.retry_after = retry_after


class InputTrimmedWarning(UserWarning):
    """Messages were left out because the conversation exceeded ``max_inputs_lenght`` (the seed's
    trimming; ``max_inputs_lenght=None`` turns it off). The stream's ``Trimmed`` chunk says how much."""


_STATUS_CLASSES = {401: MissingAuthError, 402: PaymentRequiredError, 429: RateLimitError}


def status_error_class(status: int) -> "type[ResponseStatusError]":
    """The exception class for an HTTP error status."""
    return _STATUS_CLASSES.get(status, ResponseStatusError)


def exhausted(model: str, attempts: "list[tuple[str, HFTextGenError]]", skipped: Any = ()) -> HFTextGenError:
    """The failover's final error: the last provider's error, re-worded to list every attempt
    (and the providers ``skipped``: ``Attempt`` values of those the catalogue ruled out).

    It keeps the last error's class and attributes (``except PaymentRequiredError`` still catches
    "every provider answered 402") and gains ``attempts``: a list of (provider, error).
    """
    left_out = "; ".join(f"{item.provider}: {item.reason}" for item in skipped)
    if not attempts:
        return ModelNotSupportedError(f"no provider of model {model!r} can serve this request; skipped {left_out}")
    last = attempts[-1][1]
    lines = "; ".join(f"{name}: {error}" for name, error in attempts)
    error = copy.copy(last)
    tail = f"; skipped {left_out}" if left_out else ""
    error.args = (redact(f"every provider failed for model {model!r} ({len(attempts)} tried): {lines}{tail}"),)
    error.attempts = attempts  # type: ignore[attr-defined]
    return error


def error_text(payload: Any) -> str:
    """The message inside an error payload: OpenAI, TGI, vLLM and Hugging Face shapes."""
    if isinstance(payload, Mapping):
        for key in ("error", "message", "detail", "error_message"):
            if payload.get(key):
                inner = payload[key]
                return error_text(inner) if isinstance(inner, (Mapping, list)) else str(inner)
        return json.dumps(payload)[:MAX_SERVER_MESSAGE]
    if isinstance(payload, list) and payload:
        return error_text(payload[0])
    return str(payload)
