"""Pure request building: URL, headers and JSON body of a chat completion, as a value. No I/O."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import quote, urlsplit, urlunsplit

from . import config
from .catalog import HF_INFERENCE, route_for
from .errors import ConfigurationError
from .types import PreparedRequest

logger = logging.getLogger("hf_textgen")

def chat_body(
    messages: List[Dict[str, Any]],
    max_tokens: Optional[int],
    stream: bool,
    params: Mapping[str, Any],
    extra_body: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The body without ``model``; ``None`` values are dropped and ``extra_body`` merges last."""
    body = {"messages": messages, "max_tokens": max_tokens, "stream": stream, **params, **(extra_body or {})}
    return {key: value for key, value in body.items() if value is not None}


def headers_for(url: str, token: Optional[str], stream: bool, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Headers for one chat POST; the token only over https or to a loopback host. ``extra``
    (the caller's headers, ``X-HF-Bill-To``) come before the token, which they cannot replace."""
    headers = {"User-Agent": config.USER_AGENT, "Accept": "text/event-stream" if stream else "application/json", **(extra or {})}
    if token:
        if config.may_carry_token(url):
            headers["Authorization"] = f"Bearer {token}"
        else:
            logger.warning("not sending the token to %s: plain http to a non-loopback host", _origin(url))
    return headers


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"


def provider_request(
    provider: str,
    provider_id: str,
    hub_model: str,
    body: Mapping[str, Any],
    token: Optional[str],
    router: str,
    headers: Optional[Mapping[str, str]] = None,
) -> PreparedRequest:
    """POST {router}/{provider}{route}; hf-inference takes the hub id in its path and body."""
    path_model = quote(hub_model, safe="/")
    url = f"{router}/{provider}{route_for(provider, path_model)}"
    model_field = hub_model if provider == HF_INFERENCE else provider_id
    return _request(url, {"model": model_field, **body}, token, provider, hub_model, headers)


def server_side_request(
    model: str, body: Mapping[str, Any], token: Optional[str], router: str, headers: Optional[Mapping[str, str]] = None
) -> PreparedRequest:
    """POST {router}/v1/chat/completions and let the router choose (``model`` may carry ``:policy``)."""
    return _request(f"{router}/v1/chat/completions", {"model": model, **body}, token, "auto", model, headers)


def api_base_request(
    api_base: str, model: str, body: Mapping[str, Any], token: Optional[str], headers: Optional[Mapping[str, str]] = None
) -> PreparedRequest:
    """POST {api_base}/chat/completions on any OpenAI-compatible server (TGI, vLLM, llama.cpp, ...)."""
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"api_base must be an http(s) URL with a host, such as http://127.0.0.1:8080/v1, got {api_base!r}")
    url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions"))  # before any ?query
    return _request(url, {"model": model, **body}, token, parts.hostname, model, headers)


def _request(
    url: str, body: Dict[str, Any], token: Optional[str], provider: str, model: str, extra: Optional[Mapping[str, str]]
) -> PreparedRequest:
    headers = headers_for(url, token, bool(body.get("stream")), extra)
    return PreparedRequest(url=url, headers=headers, body=body, provider=provider, model=model)
