"""Chat text generation through Hugging Face Inference Providers.

Sync first (``HuggingFaceAPI.create_completion``, a plain iterator; ``complete`` for a finished
``ChatResult``), async through a thin anyio bridge (``create_async_generator``, ``complete_async``),
with automatic failover between a model's providers.

Importing the package itself loads nothing heavy: each name below is imported from its module
when first used (PEP 562), so ``hf-textgen --help`` and ``import hf_textgen.testing`` stay fast;
``HuggingFaceAPI`` and ``Client`` bring requests and sseclient-py, never anyio.
"""
import importlib
import logging
from typing import TYPE_CHECKING, Any, List

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from . import errors
    from .capabilities import ModelCatalog, ProviderCapabilities
    from .client import Client
    from .errors import (
        ConfigurationError,
        ConnectError,
        HFTextGenError,
        InputTrimmedWarning,
        MissingAuthError,
        ModelNotSupportedError,
        PaymentRequiredError,
        RateLimitError,
        ResponseError,
        ResponseStatusError,
        StreamTimeoutError,
    )
    from .hub import clear_caches
    from .messages import calculate_lenght
    from .provider import HuggingFaceAPI
    from .results import AsyncChatStream, ChatResult, ChatStream, ResultCollector
    from .types import Attempt, Chunk, Cost, FinishReason, Logprobs, ProviderInfo, Reasoning, Timeouts, ToolCalls, Trimmed, Usage

__version__ = "0.1.0"

logging.getLogger("hf_textgen").addHandler(logging.NullHandler())  # a library prints nothing unasked

_ERRORS = ("HFTextGenError", "ConfigurationError", "ConnectError", "ModelNotSupportedError", "MissingAuthError",
           "PaymentRequiredError", "RateLimitError", "ResponseError", "ResponseStatusError", "StreamTimeoutError",
           "InputTrimmedWarning")
_TYPES = ("Chunk", "ProviderInfo", "Usage", "FinishReason", "ToolCalls", "Reasoning", "Attempt", "Trimmed", "Logprobs", "Cost", "Timeouts")
#: Where each public name lives.
_HOMES = {
    "HuggingFaceAPI": "provider",
    "Client": "client",
    "calculate_lenght": "messages",
    "clear_caches": "hub",
    "ModelCatalog": "capabilities",
    "ProviderCapabilities": "capabilities",
    **{name: "results" for name in ("ChatResult", "ChatStream", "AsyncChatStream", "ResultCollector")},
    **{name: "errors" for name in _ERRORS},
    **{name: "types" for name in _TYPES},
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    elif name == "errors":
        value = importlib.import_module(".errors", __name__)
    else:
        raise AttributeError(f"module 'hf_textgen' has no attribute {name!r}")
    globals()[name] = value  # the next look-up is a plain one
    return value


def __dir__() -> List[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "HuggingFaceAPI",
    "Client",
    "calculate_lenght",
    "errors",
    "ChatResult",
    "ChatStream",
    "AsyncChatStream",
    "ResultCollector",
    "Chunk",
    "ProviderInfo",
    "Usage",
    "FinishReason",
    "ToolCalls",
    "Reasoning",
    "Attempt",
    "Trimmed",
    "Logprobs",
    "Cost",
    "Timeouts",
    "ModelCatalog",
    "ProviderCapabilities",
    "clear_caches",
    "HFTextGenError",
    "ConfigurationError",
    "ConnectError",
    "ModelNotSupportedError",
    "MissingAuthError",
    "PaymentRequiredError",
    "RateLimitError",
    "ResponseError",
    "ResponseStatusError",
    "StreamTimeoutError",
    "InputTrimmedWarning",
]
