"""The POST side, as values: which provider answers a chat request, and what it answers. No I/O.

- ``POST /{provider}{route}``: the provider named in the path, when it serves the body's ``model`` (its
  ``providerId``) on exactly that route;
- ``POST /v1/chat/completions``: server-side routing. ``model`` is ``org/name[:policy]``; ``:fastest``
  (the default) orders the live chat providers by throughput, then first-token latency; ``:cheapest``
  by output price, then input price (``is_free`` without prices counts as 0); ``:preferred`` keeps the
  mapping (the user's) order; ``:<provider>`` names one, whatever its status. Unknown figures sort last
  and ties keep the mapping order. When a provider answers a status in ``retry_statuses``, the next one
  in that order answers instead, as the router fails over; ``x-inference-provider`` names who answered.
"""
from __future__ import annotations

from typing import AbstractSet, Any, Callable, Dict, List, Optional, Tuple, Union

from .answers import Answer, Reply, answer_chat, json_reply
from .config import DEFAULT_ROUTE, POLICIES, ROUTES, Provider, route_for
from .hub import Models

#: Statuses after which the router tries the policy's next provider: 402, 408, 429 and every 5xx.
RETRY_STATUSES: AbstractSet[int] = frozenset({402, 408, 429, *range(500, 600)})


def _last_if_unknown(value: Optional[float]) -> Tuple[bool, float]:
    return (value is None, value or 0.0)


def _price(provider: Provider, kind: str) -> Optional[float]:
    if provider.pricing is not None and kind in provider.pricing:
        return provider.pricing[kind]
    return 0.0 if provider.is_free and provider.pricing is None else None


_POLICY_KEYS: Dict[str, Callable[[Provider], Tuple[Tuple[bool, float], ...]]] = {
    "fastest": lambda p: (_last_if_unknown(None if p.throughput is None else -p.throughput),
                          _last_if_unknown(p.first_token_latency_ms)),
    "cheapest": lambda p: (_last_if_unknown(_price(p, "output")), _last_if_unknown(_price(p, "input"))),
    "preferred": lambda p: (),
}


def policy_order(policy: str, providers: List[Provider]) -> List[Provider]:
    """The live chat providers in the order ``policy`` tries them (a stable sort: ties keep mapping order)."""
    usable = [p for p in providers if p.status == "live" and p.task == "conversational"]
    return sorted(usable, key=_POLICY_KEYS[policy])


def auto_route(model: Any, models: Models) -> Union[List[Provider], Reply]:
    """Server-side routing: ``org/name[:policy]`` → the providers the router would try, in order."""
    model_id, _, policy = str(model or "").partition(":")
    if model_id not in models:
        return json_reply(404, {"error": {"message": f"The requested model '{model_id}' does not exist.",
                                          "type": "invalid_request_error", "param": "model",
                                          "code": "model_not_found"}})
    policy = policy or "fastest"
    if policy in POLICIES:
        candidates = policy_order(policy, models[model_id])
    else:
        candidates = [p for p in models[model_id] if p.name == policy]
    if not candidates:
        return json_reply(400, {"error": {"message": f"Model '{model_id}' is not supported by any provider "
                                                     f"matching '{policy}'.", "type": "invalid_request_error"}})
    return candidates


def provider_route(path: str, model: Any, models: Models) -> Union[Provider, Reply]:
    """``/{provider}{route}``: the provider serving ``model`` (its providerId) on that exact route."""
    name = path.split("/")[1]
    candidates = [(model_id, p) for model_id, providers in models.items() for p in providers if p.name == name]
    if not candidates:
        return json_reply(404, {"error": f"Not Found: no provider {name!r} serves POST {path}"})
    on_route = [p for model_id, p in candidates if route_for(name, model_id) == path]
    if not on_route:
        expected = f"/{name}" + ROUTES.get(name, DEFAULT_ROUTE)
        return json_reply(404, {"error": f"Not Found: POST {path} (provider {name!r} serves {expected})"})
    for provider in on_route:
        if provider.provider_id == model:
            return provider
    known = sorted({str(p.provider_id) for p in on_route})
    return json_reply(400, {"error": f"Model {model!r} is not served by provider {name!r} here; "
                                     f"use its providerId: {', '.join(known)}"})


def answer_post(path: str, request: Any, models: Models, retry_statuses: AbstractSet[int] = RETRY_STATUSES) -> Answer:
    """The answer to a chat ``POST path`` whose parsed JSON body is ``request``."""
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
        return json_reply(400, {"error": "The body must be a JSON object with a 'messages' list"})
    if path != DEFAULT_ROUTE:
        target = provider_route(path, request.get("model"), models)
        return target if isinstance(target, Reply) else answer_chat(target, request)
    candidates = auto_route(request.get("model"), models)
    if isinstance(candidates, Reply):
        return candidates
    for provider in candidates[:-1]:
        answer = answer_chat(provider, request)
        if not (isinstance(answer, Reply) and answer.status in retry_statuses):
            return answer
    return answer_chat(candidates[-1], request)
