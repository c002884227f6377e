"""The GET side, as values: the Hub's listing and model info, and the router's model list. No I/O.

Hub answers carry ``pipeline_tag`` (huggingface_hub reads it before it sends a chat to hf-inference).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping
from urllib.parse import parse_qsl, unquote, urlencode

from .answers import Reply, json_reply
from .config import CREATED, Provider

Models = Mapping[str, List[Provider]]


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


def answer_get(path: str, query: str, models: Models, *, shape: str, page_size: int, base_url: str) -> Reply:
    """The answer to ``GET path?query``."""
    if path == "/api/models":
        return listing(query, models, shape=shape, page_size=page_size, base_url=base_url)
    if path.startswith("/api/models/"):
        return hub_model(unquote(path[len("/api/models/"):]), models, shape)
    if path == "/v1/models":
        return json_reply(200, {"object": "list", "data": [
            {"id": model_id, "object": "model", "created": CREATED, "owned_by": model_id.split("/")[0],
             "providers": [{"provider": p.name, "status": p.status} for p in providers]}
            for model_id, providers in models.items() if providers]})
    return json_reply(404, {"error": f"Not Found: GET {path}"})
