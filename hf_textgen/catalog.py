"""Static knowledge: model aliases and defaults, the provider route table, id validation, and the
normalisation of a Hub provider mapping (dict or list shape) into one shape.

A normalised mapping is an ordered ``dict``: provider name -> ``{"providerId", "status", "task"}``,
in the order the Hub gave (the user's preferred order).
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, Mapping

from .errors import ConfigurationError

logger = logging.getLogger("hf_textgen")

DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"
DEFAULT_VISION_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
VISION_MODELS = [
    DEFAULT_VISION_MODEL,
    "Qwen/Qwen2.5-VL-72B-Instruct",
    "meta-llama/Llama-3.2-11B-Vision-Instruct",
    "google/gemma-3-27b-it",
]
MODEL_ALIASES = {
    "llama-3.3-70b": DEFAULT_MODEL,
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "llama-3.2-11b-vision": "meta-llama/Llama-3.2-11B-Vision-Instruct",
    "qwen-2.5-72b": "Qwen/Qwen2.5-72B-Instruct",
    "qwen-2.5-coder-32b": "Qwen/Qwen2.5-Coder-32B-Instruct",
    "qwen-2.5-vl-7b": DEFAULT_VISION_MODEL,
    "qwen-3-235b": "Qwen/Qwen3-235B-A22B",
    "deepseek-r1": "deepseek-ai/DeepSeek-R1",
    "deepseek-v3": "deepseek-ai/DeepSeek-V3-0324",
    "gemma-3-27b": "google/gemma-3-27b-it",
}
FALLBACK_MODELS = [
    DEFAULT_MODEL,
    "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "Qwen/Qwen2.5-Coder-32B-Instruct",
    "Qwen/Qwen3-235B-A22B",
    "deepseek-ai/DeepSeek-R1",
    "deepseek-ai/DeepSeek-V3-0324",
    "google/gemma-3-27b-it",
    *VISION_MODELS[:1],
]

DEFAULT_ROUTE = "/v1/chat/completions"
HF_INFERENCE = "hf-inference"
# Provider -> path after "/{provider}"; anything not listed (known or not) takes DEFAULT_ROUTE.
PROVIDER_ROUTES: Dict[str, str] = {
    "novita": "/v3/openai/chat/completions",
    "fireworks-ai": "/inference/v1/chat/completions",
    "groq": "/openai/v1/chat/completions",
    "cohere": "/compatibility/v1/chat/completions",
    "deepinfra": "/v1/openai/chat/completions",
    "zai-org": "/api/paas/v4/chat/completions",
    HF_INFERENCE: "/models/{model}/v1/chat/completions",
}
SERVER_SIDE_POLICIES = ("fastest", "cheapest", "preferred")

# Each part starts and ends with a letter, digit or '_' (the Hub's rule); fullmatch: no trailing "\n".
_ID_PART = r"\w(?:[\w.\-]*\w)?"
_MODEL_ID = re.compile(rf"(?:{_ID_PART}/)?{_ID_PART}", re.ASCII)
_PROVIDER = re.compile(r"[a-z0-9](?:[a-z0-9_\-]{0,62}[a-z0-9])?", re.ASCII)


def validate_model_id(model: str) -> str:
    """Apply the Hub's repo-id rule before a model id touches a URL; return it unchanged."""
    if (
        not isinstance(model, str)
        or len(model) > 96
        or not _MODEL_ID.fullmatch(model)
        or "--" in model
        or ".." in model
    ):
        raise ConfigurationError(
            f"invalid model id {model!r}: use 'org/name' (letters, digits, '-', '_', '.', each part "
            "starting and ending with a letter or digit; at most one '/', 96 characters, no '--' or '..')"
        )
    return model


def is_valid_provider(name: Any) -> bool:
    """Provider names become a URL path segment: lowercase letters, digits, '-' and '_' only."""
    return isinstance(name, str) and bool(_PROVIDER.fullmatch(name))


def validate_provider(name: Any) -> str:
    if not is_valid_provider(name):
        raise ConfigurationError(
            f"invalid provider name {name!r}: expected a name such as 'together' or 'fireworks-ai'"
        )
    return name  # type: ignore[no-any-return]


def provider_label(provider: str) -> str:
    """The label of a provider's answer (``ProviderInfo.label``), as the seed names it."""
    return f"HuggingFace ({provider})"


def route_for(provider: str, hub_model: str) -> str:
    """The path after ``/{provider}`` for a provider's chat completions."""
    return PROVIDER_ROUTES.get(provider, DEFAULT_ROUTE).format(model=hub_model)


def normalize_mapping(raw: Any, model: str = "") -> Dict[str, Dict[str, str]]:
    """Turn either Hub shape (dict keyed by provider, or a list of entries) into the one shape.

    Entries that are not objects or whose provider name could alter a URL are skipped with a
    warning; an unexpected top-level value raises ``ValueError``.
    """
    if isinstance(raw, Mapping):
        entries = [(name, entry) for name, entry in raw.items()]
    elif isinstance(raw, list):
        entries = [(entry.get("provider") if isinstance(entry, Mapping) else None, entry) for entry in raw]
    elif raw is None:
        return {}
    else:
        raise ValueError(f"unexpected inferenceProviderMapping of type {type(raw).__name__}")
    mapping: Dict[str, Dict[str, str]] = {}
    for name, entry in entries:
        if not isinstance(entry, Mapping) or not is_valid_provider(name):
            logger.warning("skipping provider entry %.60r of model %s: not a valid provider", name, model)
            continue
        mapping.setdefault(
            name,
            {
                "providerId": str(entry.get("providerId") or ""),
                "status": str(entry.get("status") or ""),
                "task": str(entry.get("task") or ""),
            },
        )
    return mapping


def is_usable(entry: Mapping[str, str]) -> bool:
    """Automatic provider order uses live conversational entries only."""
    return entry.get("status") == "live" and entry.get("task") == "conversational"
