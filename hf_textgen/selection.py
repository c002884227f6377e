"""Provider choice by the router's catalogue, as pure decisions over values: which providers cannot
serve a request (skip), in which order to try the rest (``prefer=``), what a request is estimated
to cost, and what an answer cost. No I/O.

- **Estimate** of a request's prompt: the characters of the messages (and tools) rendered as
  compact JSON, divided by 4, rounded up; an image or other non-text part counts as
  :data:`IMAGE_TOKENS` instead of its bytes. Generous for English (JSON punctuation counts), low for
  dense scripts: a low estimate skips nothing, and the provider's own 400 still speaks.
- **Skip** (a provider the catalogue says cannot serve the request): ``tools``/``tool_choice`` and
  ``supports_tools`` false; a JSON ``response_format`` and ``supports_structured_output`` false;
  prompt estimate + ``max_tokens`` over ``context_length`` (``max_tokens=None``: the prompt alone);
  catalogue ``status`` ``error``. Unknown (missing) never skips.
- **Order** (``prefer``): ``order`` (the mapping's, the user's), ``cheapest`` (estimated cost: input
  price x prompt estimate + output price x ``max_tokens``, :data:`OUTPUT_GUESS` tokens when None),
  ``fastest`` (lowest ``first_token_latency_ms``), ``throughput`` (highest). Unknown figures sort
  last, ties keep the user's order. Explicitly named providers are never skipped nor reordered.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .capabilities import ModelCatalog, ProviderCapabilities
from .errors import ConfigurationError
from .types import Cost, Usage
from .validate import one_of

__all__ = ["PREFER", "CATALOG_USE", "check_prefer", "check_catalog_use", "wants_catalog", "Needs", "Step", "needs_of", "estimate_prompt", "skip_reason", "estimated_cost", "plan", "cost", "filter_models", "SORTS"]

PREFER = ("order", "cheapest", "fastest", "throughput")
CATALOG_USE = ("auto", "always", "never")
IMAGE_TOKENS = 765  # an image part (OpenAI's figure for a high-detail 1024x1024 image)
OUTPUT_GUESS = 2048  # output tokens assumed for "cheapest" when max_tokens is None (the default max_tokens)
PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Needs:
    """What a request asks of a provider: tool calling, structured output, and tokens."""

    tools: bool = False
    structured: bool = False
    prompt_tokens: int = 0
    max_tokens: Optional[int] = None


@dataclass(frozen=True)
class Step:
    """A provider in the order it will be tried, with why it is skipped (None: it is tried);
    ``caution``: why it would have been, for a provider the caller named (tried anyway)."""

    provider: str
    provider_id: str
    skip: Optional[str] = None
    caution: Optional[str] = None


def _text_only(message: Any) -> Tuple[Any, int]:
    """A message with its non-text content parts (images, audio...) taken out, and how many there were."""
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, list):
        return message, 0
    text = [part for part in content if not isinstance(part, Mapping) or part.get("type") == "text"]
    return {**message, "content": text}, len(content) - len(text)


def estimate_prompt(messages: Sequence[Any], tools: Any = None) -> int:
    """The prompt's estimated token count (see the module's docstring)."""
    views = [_text_only(message) for message in messages]
    rendered = json.dumps([[view for view, _ in views], tools or []], ensure_ascii=False, separators=(",", ":"), default=str)
    return math.ceil(len(rendered) / 4) + IMAGE_TOKENS * sum(parts for _, parts in views)


def needs_of(body: Mapping[str, Any], count: bool = True) -> Needs:
    """What a chat body (as built, ``None`` values dropped) asks for; ``count=False`` leaves the
    prompt estimate at 0 (it renders the messages: only worth it with a catalogue to check)."""
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    return Needs(
        tools=bool(body.get("tools")) or body.get("tool_choice") is not None,
        structured=kind in ("json_object", "json_schema"),
        prompt_tokens=estimate_prompt(body.get("messages") or [], body.get("tools")) if count else 0,
        max_tokens=limit if isinstance(limit, int) else None,
    )


def check_prefer(prefer: Any, routing: str = "") -> Optional[str]:
    """``prefer=``: None (the default) or one of :data:`PREFER`. ``routing`` names what already
    fixes the order in the same place (explicit providers, server-side routing, ``api_base``): then
    only ``"order"`` is accepted, since one call cannot ask for two orders."""
    if prefer is None:
        return None
    if prefer not in PREFER:
        accepted = ", ".join(repr(p) for p in PREFER)
        raise ConfigurationError(f"prefer must be one of {accepted} (or None: the Hub mapping's order), not {type(prefer).__name__} {prefer!r:.60}")
    if routing and prefer != "order":
        raise ConfigurationError(
            f"prefer={prefer!r} cannot be combined with {routing}, which fixes the order already; "
            "drop one of them (prefer= orders the Hub mapping's providers, tried in turn)"
        )
    return str(prefer)


def check_catalog_use(use: Any, prefer: Any = None) -> str:
    """``catalog=``: ``auto``, ``always`` or ``never``; ``never`` leaves nothing to order by."""
    if use not in CATALOG_USE:
        one_of(*CATALOG_USE)("catalog", use)  # raises, saying what is accepted
    if use == "never" and prefer not in (None, "order"):
        raise ConfigurationError(f"prefer={prefer!r} needs the router's catalogue, which catalog='never' turns off; drop one of them")
    return str(use)


def wants_catalog(needs: Needs, prefer: Optional[str], named: bool, use: str = "auto") -> bool:
    """Whether a call fetches the catalogue (else it uses one only if cached): ``always``; never
    with ``never``; with ``auto``, when the mapping's order is to be changed or filtered for
    tools, structured output or ``prefer`` (not for providers the caller named)."""
    if use != "auto":
        return use == "always"
    return not named and (needs.tools or needs.structured or prefer not in (None, "order"))


def skip_reason(entry: Optional[ProviderCapabilities], needs: Needs) -> Optional[str]:
    """Why the catalogue says this provider cannot serve the request; None when it may."""
    if entry is None:
        return None
    if entry.status == "error":
        return "status 'error' in the router's catalogue"
    if needs.tools and entry.supports_tools is False:
        return "no tool calling (router catalogue)"
    if needs.structured and entry.supports_structured_output is False:
        return "no structured output (router catalogue)"
    wanted = needs.prompt_tokens + (needs.max_tokens or 0)
    if entry.context_length is not None and wanted > entry.context_length:
        return f"context length {entry.context_length} < ~{wanted} tokens (prompt ~{needs.prompt_tokens} + max_tokens {needs.max_tokens or 0})"
    return None


def _prices(entry: ProviderCapabilities) -> Tuple[Optional[float], Optional[float]]:
    if entry.is_free and entry.input_price is None and entry.output_price is None:
        return 0.0, 0.0
    return entry.input_price, entry.output_price


def estimated_cost(entry: Optional[ProviderCapabilities], needs: Needs) -> Optional[float]:
    """USD the request would cost there at most (None: a price is unknown)."""
    if entry is None:
        return None
    given, made = _prices(entry)
    if given is None or made is None:
        return None
    output = needs.max_tokens if needs.max_tokens is not None else OUTPUT_GUESS
    return (given * needs.prompt_tokens + made * output) / PER_MILLION


def _last_if_unknown(value: Optional[float]) -> Tuple[bool, float]:
    return (value is None, value or 0.0)


_KEYS: Dict[str, Callable[[Optional[ProviderCapabilities], Needs], Tuple[bool, float]]] = {
    "order": lambda entry, needs: (False, 0.0),
    "cheapest": lambda entry, needs: _last_if_unknown(estimated_cost(entry, needs)),
    "fastest": lambda entry, needs: _last_if_unknown(entry.first_token_latency_ms if entry else None),
    "throughput": lambda entry, needs: _last_if_unknown(-entry.throughput if entry and entry.throughput is not None else None),
}


def plan(
    candidates: Sequence[Tuple[str, str]], catalog: Optional[ModelCatalog], needs: Needs, prefer: str = "order", named: bool = False
) -> List[Step]:
    """The providers (``(name, providerId)`` in the mapping's order) in the order to try them, each
    with its skip reason. ``named``: the caller listed them, so none is skipped or reordered."""
    def entry(name: str) -> Optional[ProviderCapabilities]:
        return catalog.get(name) if catalog is not None else None

    ordered = list(candidates) if named or catalog is None else sorted(candidates, key=lambda c: _KEYS[prefer](entry(c[0]), needs))
    steps = []
    for name, provider_id in ordered:
        reason = skip_reason(entry(name), needs)
        steps.append(Step(name, provider_id, caution=reason) if named else Step(name, provider_id, reason))
    return steps


def cost(entry: Optional[ProviderCapabilities], usage: Optional[Usage]) -> Optional[Cost]:
    """What an answer cost from the provider's prices and the usage; None when either is unknown."""
    if entry is None or usage is None or not (usage.prompt_tokens or usage.completion_tokens):
        return None
    given, made = _prices(entry)
    if given is None or made is None:
        return None
    input_usd, output_usd = given * usage.prompt_tokens / PER_MILLION, made * usage.completion_tokens / PER_MILLION
    return Cost(input_usd, output_usd, input_usd + output_usd, entry.provider)


SORTS: Dict[str, Callable[[ProviderCapabilities], Tuple[bool, float]]] = {
    "price": lambda p: _last_if_unknown(None if None in _prices(p) else sum(_prices(p))),  # type: ignore[arg-type]
    "latency": lambda p: _last_if_unknown(p.first_token_latency_ms),
    "throughput": lambda p: _last_if_unknown(-p.throughput if p.throughput is not None else None),
}


def filter_models(
    models: Sequence[ModelCatalog],
    *,
    provider: Optional[str] = None,
    tools: bool = False,
    structured: bool = False,
    min_context: Optional[int] = None,
    sort: Optional[str] = None,
) -> List[ModelCatalog]:
    """The models with a provider that is not in ``error`` and is known to meet every condition,
    each keeping only those providers; ``sort`` (``price``: input + output price per million,
    ``latency``, ``throughput``) orders the providers and the models by their best one."""
    def fits(p: ProviderCapabilities) -> bool:
        return (
            p.status != "error" and (provider is None or p.provider == provider) and (not tools or p.supports_tools is True)
            and (not structured or p.supports_structured_output is True)
            and (min_context is None or (p.context_length is not None and p.context_length >= min_context))
        )

    found = []
    for model in models:
        kept = [p for p in model.providers if fits(p)]
        if kept:
            found.append(ModelCatalog(model.model, tuple(sorted(kept, key=SORTS[sort]) if sort else kept), model.input_modalities))
    return sorted(found, key=lambda m: SORTS[sort](m.providers[0])) if sort else found
