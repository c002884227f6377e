"""Chat text generation through Hugging Face Inference Providers.

Sync first (``HuggingFaceAPI.create_completion``, a plain iterator), async through a thin anyio
bridge (``HuggingFaceAPI.create_async_generator``), with automatic failover between a model's
providers. Importing this package loads requests and sseclient-py, never anyio.
"""
import logging

from . import errors
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
from .capabilities import ModelCatalog, ProviderCapabilities
from .hub import clear_caches
from .messages import calculate_lenght
from .client import Client
from .provider import HuggingFaceAPI
from .results import AsyncChatStream, ChatResult, ChatStream, ResultCollector
from .types import Attempt, Chunk, Cost, FinishReason, Logprobs, ProviderInfo, Reasoning, Timeouts, ToolCalls, Trimmed, Usage

__version__ = "0.1.0"

logging.getLogger("hf_textgen").addHandler(logging.NullHandler())  # a library prints nothing unasked

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
