"""Whether a 400 or 422 is a provider refusing a feature it lacks, which the next provider may
have, rather than a bad request, which fails everywhere. Pure.

The rule: the answer is **400 or 422**, the request **carried** the feature, and the server's
message (or the OpenAI ``error.param`` with an "unsupported" message) says that **this feature or
parameter is not supported**, by one of the patterns below. Then the call may move on:

- tools (the request has ``tools`` or ``tool_choice``): "tools is/are not supported" (OpenAI-style,
  TGI), "does not support tools" (Ollama), "function calling not support" (novita), "tool choice
  requires --enable-auto-tool-choice" (vLLM), "tool_choice ... not supported";
- structured output (a ``response_format`` of type ``json_object`` or ``json_schema``):
  "response_format ... not supported" (OpenAI, vLLM), "json_schema/json_object/JSON mode ... not
  supported", "structured output(s) not support" (novita), "grammar is not supported" (TGI), TGI's
  422 "Failed to deserialize ... response_format: unknown variant ..." (it lacks that type);
- a parameter the body carried, named by "property 'X' is unsupported" (Groq) or "Unsupported
  parameter: 'X'" (OpenAI).

Everything else fails at once, as before: a bad ``max_tokens``, a context-length error, an invalid
schema ("Invalid schema for response_format ...", "grammar is not valid"), and the router's account-wide "not supported by any provider you
have enabled" (no provider of yours would do better).
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Pattern, Sequence

from .errors import HFTextGenError, ResponseStatusError

__all__ = ["REFUSAL_STATUSES", "refused_feature"]

REFUSAL_STATUSES = frozenset({400, 422})


def _patterns(*texts: str) -> Sequence[Pattern[str]]:
    return [re.compile(text, re.IGNORECASE) for text in texts]


_UNSUPPORTED = re.compile(r"\b(?:not supported|unsupported|not support|does not support|doesn't support)\b", re.IGNORECASE)
# Checked first: the router's account-wide refusal, and schema content the caller must fix (OpenAI's
# "Invalid schema for response_format 'X': ... 'minLength' is not supported", TGI's "grammar is not valid").
_NEVER = _patterns(r"not supported by any provider you have enabled", r"\binvalid (?:json )?schema\b", r"\bgrammar is not valid\b")
_TOOLS = _patterns(
    r"\btools? (?:is|are) not supported",
    r"\bdo(?:es)?(?: not|n't) support (?:tools|tool[ _-]?(?:calls?|calling|use)|function[ _-]?calling)\b",
    r"\b(?:function|tool)[ _-]?call(?:ing|s)?\b.{0,40}\bnot support(?:ed)?\b",
    r"--enable-auto-tool-choice",
    r"\btool[ _]choice\b.{0,60}\b(?:not supported|unsupported)\b",
)
_FORMAT = _patterns(
    r"\bresponse_format\b.{0,80}\b(?:not supported|unsupported)\b",
    r"\b(?:json[ _](?:schema|object|mode))\b.{0,60}\b(?:not supported|unsupported)\b",
    r"\bstructured[ _]outputs?\b.{0,40}\bnot support(?:ed)?\b",
    r"\bgrammars? (?:is|are) not supported\b",
    r"\bdo(?:es)?(?: not|n't) support (?:json|structured[ _]outputs?|response_format|grammars?)\b",
    r"failed to deserialize.{0,160}\bresponse_format\b.{0,80}\bunknown variant\b",
)
_PARAMETER = _patterns(r"\bproperty '([\w.-]+)' is unsupported", r"\bunsupported parameter:? '([\w.-]+)'")


# Never moved on from by name: what every request needs, and the features judged by their own rule above.
_NOT_PARAMETERS = ("messages", "model", "stream", "tools", "tool_choice", "response_format")


def _carries(body: Mapping[str, Any], feature: str) -> bool:
    if feature == "tools":
        return bool(body.get("tools")) or body.get("tool_choice") is not None
    response_format = body.get("response_format")
    return isinstance(response_format, Mapping) and response_format.get("type") in ("json_object", "json_schema")


def refused_feature(error: HFTextGenError, body: Mapping[str, Any]) -> Optional[str]:
    """The feature (``tools``, ``response_format``) or body parameter that ``error`` says this
    provider does not support, when the request carried it; None for any other error."""
    if not isinstance(error, ResponseStatusError) or error.status_code not in REFUSAL_STATUSES:
        return None
    text = error.server_message
    if not text or any(p.search(text) for p in _NEVER):
        return None
    param = error.param if _UNSUPPORTED.search(text) else None
    for feature, patterns, params in (("tools", _TOOLS, ("tools", "tool_choice")), ("response_format", _FORMAT, ("response_format",))):
        if _carries(body, feature) and (param in params or any(p.search(text) for p in patterns)):
            return feature
    named = [match.group(1) for p in _PARAMETER for match in p.finditer(text)]
    for name in named + ([param] if param else []):
        if name in body and name not in _NOT_PARAMETERS:
            return name
    return None
