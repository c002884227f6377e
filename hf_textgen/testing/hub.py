"""The GET side, as values: the Hub's listing and model info, and the router's catalogue. No I/O.

- ``GET /api/models?...`` and ``GET /api/models/{id}``: ``{"id", "pipeline_tag", "inferenceProviderMapping"}``;
- ``GET /v1/models`` and ``GET /v1/models/{id}``: each model's ``architecture`` and its providers with the
  catalogue figures that are known (hub-docs ``docs/inference-providers/hub-api.md``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import parse_qsl, unquote, urlencode

from .answers import Reply, json_reply, phrase
from .config import CREATED, Provider

Models = Mapping[str, List[Provider]]
#: The catalogue fields of a :class:`Provider`, in the router's order; ``None`` values are left out.
CATALOG_FIELDS = ("context_length", "pricing", "is_free", "supports_tools", "supports_structured_output",
                    "first_token_latency_ms", "throughput", "is_model_author")


def pipeline_tag(providers: List[Provider]) -> str:
    """``image-text-to-text`` when a provider takes images (``vision=True``), else ``text-generation``."""
    return "image-text-to-text" if any(p.vision for p in providers) else "text-generation"


def model_info(model_id: str, providers: List[Provider], shape: str) -> Dict[str, Any]:
    """One model as ``GET /api/models/{id}?expand[]=inferenceProviderMapping`` answers it."""
    entries = [{"provider": p.name, "providerId": p.provider_id, "status": p.status, "task": p.task}
               for p in providers]
    if shape == "dict":
        mapping: Any = {entry["provider"]: {k: v for k, v in entry.items() if k != "provider"} for entry in entries}
    else:
        mapping = entries
    return {"id": model_id, "pipeline_tag": pipeline_tag(providers), "inferenceProviderMapping": mapping}


def hub_model(model_id: str, models: Models, shape: str) -> Reply:
    if model_id not in models:
        return json_reply(404, {"error": "Repository Not Found"},
                          {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository Not Found"})
    return json_reply(200, model_info(model_id, models[model_id], shape))


def listing(query: str, models: Models, *, shape: str, page_size: int, base_url: str) -> Reply:
    """A page of ``GET /api/models``, filtered by ``inference_provider`` and ``pipeline_tag``."""
    params = parse_qsl(query, keep_blank_values=True)
    options = dict(params)
    try:
        size = max(1, min(int(options.get("limit") or page_size), page_size))
        start = int(options.get("cursor") or 0)
    except ValueError:
        return json_reply(400, {"error": "Invalid 'limit' or 'cursor'"})
    wanted, tag = options.get("inference_provider"), options.get("pipeline_tag")
    ids = [model_id for model_id, providers in models.items()
           if (wanted is None or any(wanted == "all" or p.name in wanted.split(",") for p in providers))
           and (tag is None or tag == pipeline_tag(providers))]
    headers = {}
    if start + size < len(ids):
        following = [(k, v) for k, v in params if k != "cursor"] + [("cursor", str(start + size))]
        headers["Link"] = f'<{base_url}/api/models?{urlencode(following)}>; rel="next"'
    page = [model_info(model_id, models[model_id], shape) for model_id in ids[start:start + size]]
    return json_reply(200, page, headers)


# ------------------------------------------------------------------------------------------ catalogue
def catalog_entry(provider: Provider) -> Dict[str, Any]:
    """One provider as the router's catalogue lists it: ``provider``, ``status``, then what is known."""
    entry: Dict[str, Any] = {"provider": provider.name, "status": provider.status}
    entry.update({name: getattr(provider, name) for name in CATALOG_FIELDS if getattr(provider, name) is not None})
    return entry


def catalog_model(model_id: str, providers: List[Provider]) -> Optional[Dict[str, Any]]:
    """One chat model of ``GET /v1/models``; ``None`` when no provider is listed (staging, not chat)."""
    listed = [p for p in providers if p.status in ("live", "error") and p.task == "conversational"]
    if not listed:
        return None
    inputs = ["text", "image"] if any(p.vision for p in listed) else ["text"]
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": model_id.split("/")[0],
            "architecture": {"input_modalities": inputs, "output_modalities": ["text"]},
            "providers": [catalog_entry(p) for p in listed]}


def catalog(path: str, models: Models) -> Reply:
    """``GET /v1/models`` (every chat model) or ``GET /v1/models/{org}/{name}`` (one, or a 404)."""
    if path == "/v1/models":
        entries = [catalog_model(model_id, providers) for model_id, providers in models.items()]
        return json_reply(200, {"object": "list", "data": [entry for entry in entries if entry]})
    model_id = unquote(path[len("/v1/models/"):])
    entry = catalog_model(model_id, models[model_id]) if model_id in models else None
    if entry is None:
        return json_reply(404, {"error": {"message": f"The model '{model_id}' does not exist",
                                          "type": "invalid_request_error", "param": "model",
                                          "code": "model_not_found"}})
    return json_reply(200, entry)


def catalog_fault(status: Optional[int], body: Optional[bytes]) -> Optional[Reply]:
    """The broken catalogue answer a test asked for: raw ``body`` bytes (with ``status`` or 200), or ``status``."""
    if body is not None:
        return Reply(status or 200, body, {"Content-Type": "application/json; charset=utf-8"})
    if status is not None:
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return json_reply(status, {"error": {"message": phrase(status), "type": kind}})
    return None


def answer_get(path: str, query: str, models: Models, *, shape: str, page_size: int, base_url: str,
               catalog_status: Optional[int] = None, catalog_body: Optional[bytes] = None,
               catalog_delay: float = 0.0) -> Reply:
    """The answer to ``GET path?query``; the ``catalog_*`` settings break or delay the catalogue."""
    if path == "/api/models":
        return listing(query, models, shape=shape, page_size=page_size, base_url=base_url)
    if path.startswith("/api/models/"):
        return hub_model(unquote(path[len("/api/models/"):]), models, shape)
    if path == "/v1/models" or path.startswith("/v1/models/"):
        reply = catalog_fault(catalog_status, catalog_body) or catalog(path, models)
        reply.delay = catalog_delay
        return reply
    return json_reply(404, {"error": f"Not Found: GET {path}"})
