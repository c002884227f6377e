"""Where hf_textgen connects and with what: Hub and router URLs, the token, timeouts, User-Agent.

Everything is read at call time (not frozen at import) so that environment changes take effect.
"""
from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from .types import Timeouts

DEFAULT_HUB_URL = "https://huggingface.co"
DEFAULT_ROUTER_URL = "https://router.huggingface.co"
DEFAULT_TIMEOUTS = Timeouts()
USER_AGENT = "hf_textgen/0.1.0"

TimeoutLike = Union[None, float, int, Tuple[float, float], Timeouts]


def hub_url() -> str:
    """The Hub: ``HF_ENDPOINT`` or https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_HUB_URL).rstrip("/")


def router_url() -> str:
    """The router: ``HF_TEXTGEN_ROUTER_URL`` or https://router.huggingface.co."""
    return (os.environ.get("HF_TEXTGEN_ROUTER_URL") or DEFAULT_ROUTER_URL).rstrip("/")


def token_file() -> Path:
    """``$HF_TOKEN_PATH``, else ``$HF_HOME/token`` (``HF_HOME`` defaults to ~/.cache/huggingface)."""
    if os.environ.get("HF_TOKEN_PATH"):
        return Path(os.environ["HF_TOKEN_PATH"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join("~", ".cache", "huggingface")
    return Path(home).expanduser() / "token"


def find_token(api_key: Optional[str] = None) -> Optional[str]:
    """The token to use: ``api_key``, ``HF_TOKEN``, ``HUGGING_FACE_HUB_TOKEN``, then the token file."""
    for candidate in (api_key, os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        stored = token_file().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return stored or None


def is_hf_token(token: Optional[str]) -> bool:
    """Only Hugging Face tokens are sent to the Hub."""
    return bool(token) and token.startswith("hf_")  # type: ignore[union-attr]


def is_loopback(url: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1); not a name like ``127.evil.com``."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def may_carry_token(url: str) -> bool:
    """A token travels over https, or over plain http only to a loopback host."""
    return urlsplit(url).scheme == "https" or is_loopback(url)


def make_timeouts(timeout: TimeoutLike) -> Timeouts:
    """Accept None (defaults), one number (connect and idle read), a (connect, read) pair or Timeouts."""
    if timeout is None:
        return DEFAULT_TIMEOUTS
    if isinstance(timeout, Timeouts):
        return timeout
    if isinstance(timeout, tuple) and len(timeout) == 2 and all(map(_seconds, timeout)):
        connect, read = timeout
        return Timeouts(connect=float(connect), read=float(read))
    if _seconds(timeout):
        return Timeouts(connect=float(timeout), read=float(timeout))  # type: ignore[arg-type]
    from .errors import ConfigurationError

    raise ConfigurationError(f"timeout must be a positive number, a (connect, read) pair or Timeouts, not {timeout!r}")


def _seconds(value: object) -> bool:
    """A usable number of seconds: positive and finite (``True`` is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


@dataclass(frozen=True)
class Settings:
    """A client's settings; each one left None falls back to the environment, read at call time."""

    api_key: Optional[str] = None
    hub_url: Optional[str] = None
    router_url: Optional[str] = None
    timeout: Optional[Timeouts] = None
    provider: Union[None, str, Tuple[str, ...]] = None
    headers: Mapping[str, str] = field(default_factory=dict)
    bill_to: Optional[str] = None
    prefer: Optional[str] = None
    catalog: str = "auto"  # when calls read the router's catalogue: auto, always, never (selection.CATALOG_USE)

    def token(self, api_key: Optional[str] = None) -> Optional[str]:
        """The call's ``api_key``, else the client's, else the environment's (see :func:`find_token`)."""
        return find_token(api_key or self.api_key)

    def hub(self) -> str:
        return self.hub_url or hub_url()

    def router(self) -> str:
        return self.router_url or router_url()

    def timeouts(self, timeout: TimeoutLike = None) -> Timeouts:
        return make_timeouts(timeout) if timeout is not None else (self.timeout or DEFAULT_TIMEOUTS)

    def router_headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        """Headers for router calls: the client's, the call's, and ``X-HF-Bill-To`` (an organisation pays)."""
        headers = {**self.headers, **(extra or {})}
        if self.bill_to:
            headers["X-HF-Bill-To"] = self.bill_to
        return headers


def check_url(name: str, url: Optional[str]) -> Optional[str]:
    """A Hub or router URL given to a client: http(s) with a host; returned without a trailing '/'."""
    if url is None:
        return None
    from .errors import ConfigurationError

    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} must be an http(s) URL with a host, such as https://router.huggingface.co, not {url!r:.80}")
    return url.rstrip("/")
