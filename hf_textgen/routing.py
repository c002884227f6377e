"""Which providers a call tries, in which order: the model id and its ``:policy`` suffix, the
names the caller gave, and the Hub mapping's live conversational entries in the user's order."""
from __future__ import annotations

import logging
from typing import Dict, List, Sequence, Tuple, Union

from . import catalog
from .errors import ConfigurationError, ModelNotSupportedError

logger = logging.getLogger("hf_textgen")

ProviderChoice = Union[None, str, Sequence[str]]
Mapping_ = Dict[str, Dict[str, str]]


def check_routing(model: str, provider: ProviderChoice) -> List[str]:
    """Validate the model id (and a ``:policy`` suffix) and the explicit provider names; return them."""
    base, _, policy = model.partition(":")
    catalog.validate_model_id(base)
    if policy and policy not in catalog.SERVER_SIDE_POLICIES:
        catalog.validate_provider(policy)
    if policy and provider not in (None, "auto"):
        raise ConfigurationError(f"model {model!r} already names a routing policy; drop provider= or the ':{policy}' suffix")
    if provider == "auto":
        return []
    if provider is not None and not isinstance(provider, (str, list, tuple)):
        raise ConfigurationError(f"provider must be a name such as 'together', a list of names, or 'auto', not {type(provider).__name__} {provider!r:.60}")
    names = [provider] if isinstance(provider, str) else list(provider or [])
    for name in names:
        catalog.validate_provider(name)
    return names


def server_side(model: str, provider: ProviderChoice) -> bool:
    """Whether the router chooses the provider (``provider="auto"`` or a ``:policy`` suffix)."""
    return provider == "auto" or ":" in model


def choose_providers(model: str, mapping: Mapping_, names: List[str]) -> List[Tuple[str, str]]:
    """(provider, providerId) pairs to try: the explicit ``names`` in their order, else the
    mapping's live conversational entries in the user's order. Nothing usable raises."""
    if names:
        chosen = []
        for name in names:
            entry = mapping.get(name)
            if entry is None:
                logger.warning("provider %s does not serve %s (its providers: %s)", name, model, ", ".join(mapping) or "none")
                continue
            if not catalog.is_usable(entry):
                logger.warning("using provider %s for %s although its status is %r and task %r", name, model, entry["status"], entry["task"])
            chosen.append((name, entry["providerId"]))
        if chosen:
            return chosen
        raise ModelNotSupportedError(f"model {model!r} is not served by {', '.join(names)}; its providers are: {describe(mapping)}")
    usable = [(name, entry["providerId"]) for name, entry in mapping.items() if catalog.is_usable(entry)]
    skipped = [name for name in mapping if name not in dict(usable)]
    if skipped:
        logger.info("skipping providers of %s that are not live conversational: %s", model, ", ".join(skipped))
    if not usable:
        raise ModelNotSupportedError(
            f"model {model!r} has no live conversational provider; the Hub lists: {describe(mapping)}. "
            "Pick another model, or name a provider with provider="
        )
    return usable


def describe(mapping: Mapping_) -> str:
    return ", ".join(f"{name} ({entry['status'] or '?'}, {entry['task'] or '?'})" for name, entry in mapping.items()) or "no providers"
