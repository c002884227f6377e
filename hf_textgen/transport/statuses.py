"""HTTP error statuses as typed errors, with the server's own explanation, shortened. Pure."""
from __future__ import annotations

import email.utils
import html
import json
import re
import time
from typing import Mapping, Optional

from .. import errors
from ..errors import ResponseStatusError

__all__ = ["STATUS_HINTS", "status_error", "server_message", "error_param", "retry_after_seconds", "ERROR_BODY_LIMIT"]

ERROR_BODY_LIMIT = 65536

STATUS_HINTS = {
    400: "the request was rejected; check the model's parameters",
    401: "check your token (api_key=, HF_TOKEN or `hf auth login`)",
    402: "credits exhausted or pay-as-you-go not enabled for this provider; add credits or pick another provider",
    403: "spending limit reached or access denied; check your billing settings",
    404: "the model is not served there (any more); pick another provider or model",
    408: "the provider timed out; retry or pick another provider",
    429: "rate limited; wait and retry, or pick another provider",
}

_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def status_error(
    status: int, phrase: str, headers: Mapping[str, str], body: bytes, place: str, provider: Optional[str]
) -> ResponseStatusError:
    """The typed error for an HTTP error status (``headers``: case-insensitive, as requests gives)."""
    said = server_message(headers, body)
    hint = STATUS_HINTS.get(status, "a server error; retry later or pick another provider" if status >= 500 else "")
    if 300 <= status < 400:
        hint = f"unexpected redirect to {headers.get('Location', '?')!r}; the token is not sent to redirects, use the final URL"
    message = f"HTTP {status} from {place}: {said or phrase or 'no message'}" + (f" ({hint})" if hint else "")
    cls = errors.status_error_class(status)
    if status == 429:
        return errors.RateLimitError(
            message, status_code=status, provider=provider, server_message=said, param=error_param(body),
            retry_after=retry_after_seconds(headers.get("Retry-After")),
        )
    return cls(message, status_code=status, provider=provider, server_message=said, param=error_param(body))


def server_message(headers: Mapping[str, str], body: bytes) -> str:
    """The server's explanation: X-Error-Message, a JSON error in the known shapes, or page text."""
    header = headers.get("X-Error-Message")
    if header:
        return errors.shorten(header)
    text = body[:ERROR_BODY_LIMIT].decode("utf-8", "replace")
    content_type = headers.get("Content-Type", "")
    if "html" in content_type or text.lstrip().lower().startswith(("<!doctype", "<html")):
        title = _HTML_TITLE.search(text)
        page = f"an HTML page ({content_type or 'no content type'})"
        return f"{page}: {errors.shorten(html.unescape(title.group(1)), 120)}" if title and title.group(1).strip() else page
    try:
        return errors.shorten(errors.error_text(json.loads(text)))
    except ValueError:
        return errors.shorten(text)


def error_param(body: bytes) -> Optional[str]:
    """The parameter an OpenAI-shaped error body names (``{"error": {"param": "tools"}}``), if any."""
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        payload = json.loads(body[:ERROR_BODY_LIMIT])
    except ValueError:
        return None
    inner = payload.get("error") if isinstance(payload, dict) else None
    param = (inner if isinstance(inner, dict) else payload if isinstance(payload, dict) else {}).get("param")
    return param if isinstance(param, str) and param else None


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` as seconds: a number or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
