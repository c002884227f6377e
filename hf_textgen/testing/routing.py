"""The POST side, as values: which provider answers a chat request, and what it answers. No I/O.

- ``POST /{provider}{route}``: the provider named in the path, when it serves the body's ``model`` (its
  ``providerId``) on exactly that route;
- ``POST /v1/chat/completions``: server-side routing. ``model`` is ``org/name[:policy]``: the first live
  chat provider answers (``:<provider>`` names one, whatever its status), named by ``x-inference-provider``.
"""
from __future__ import annotations

from typing import Any, Union

from .answers import Answer, Reply, answer_chat, json_reply
from .config import DEFAULT_ROUTE, POLICIES, ROUTES, Provider, route_for
from .hub import Models

def auto_route(model: Any, models: Models) -> Union[Provider, Reply]:
    """Server-side routing: ``org/name[:policy]`` → the provider the router would pick."""
    model_id, _, policy = str(model or "").partition(":")
    if model_id not in models:
        return json_reply(404, {"error": {"message": f"The requested model '{model_id}' does not exist.",
                                          "type": "invalid_request_error", "param": "model",
                                          "code": "model_not_found"}})
    policy = policy or "fastest"
    if policy in POLICIES:
        candidates = [p for p in models[model_id] if p.status == "live" and p.task == "conversational"]
    else:
        candidates = [p for p in models[model_id] if p.name == policy]
    if not candidates:
        return json_reply(400, {"error": {"message": f"Model '{model_id}' is not supported by any provider "
                                                     f"matching '{policy}'.", "type": "invalid_request_error"}})
    return candidates[0]


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


def answer_post(path: str, request: Any, models: Models) -> Answer:
    """The answer to a chat ``POST path`` whose parsed JSON body is ``request``."""
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
        return json_reply(400, {"error": "The body must be a JSON object with a 'messages' list"})
    if path == DEFAULT_ROUTE:
        target = auto_route(request.get("model"), models)
    else:
        target = provider_route(path, request.get("model"), models)
    return target if isinstance(target, Reply) else answer_chat(target, request)
