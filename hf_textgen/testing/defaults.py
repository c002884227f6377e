"""The configuration the CLI, the demo and the ``hf_stub`` fixture serve: :func:`default_models`."""
from __future__ import annotations

from typing import Dict, List

from .config import Provider


def default_models(delay: float = 0.03) -> Dict[str, List[Provider]]:
    """The configuration of the CLI and the demo (``delay`` between stream events; the fixture uses 0).

    Llama 3.3 70B: novita answers 402, together streams a greeting; Qwen 2.5 72B on hf-inference;
    DeepSeek-R1 on fireworks-ai with reasoning; the vision model Qwen 2.5 VL 7B
    on nebius (status ``error``) then hyperbolic. Each provider has catalogue figures of the kind the
    router publishes (prices in USD per million tokens), so ``:cheapest`` picks novita for Llama and
    ``:fastest`` (highest throughput) picks together. The ``False`` capabilities sit on providers that
    fail anyway (novita's 402, nebius's ``error`` status), so what every live provider answers is unchanged.
    """
    return {
        "meta-llama/Llama-3.3-70B-Instruct": [
            Provider("novita", provider_id="meta-llama/llama-3.3-70b-instruct", error_status=402,
                     context_length=131072, pricing={"input": 0.135, "output": 0.4}, is_free=False,
                     supports_tools=True, supports_structured_output=False,
                     first_token_latency_ms=742.0, throughput=31.6, is_model_author=False),
            Provider("together", provider_id="meta-llama/Llama-3.3-70B-Instruct-Turbo", delay=delay, text=(
                "Hello! I am Llama 3.3 70B, played by the hf_textgen offline stub. novita answered "
                "402 (credits exhausted), so the request failed over to together, which streams this "
                "reply one word per server-sent event. Nothing left your machine."
            ), context_length=131072, pricing={"input": 0.88, "output": 0.88}, is_free=False,
                     supports_tools=True, supports_structured_output=True,
                     first_token_latency_ms=412.0, throughput=88.3, is_model_author=False),
        ],
        "Qwen/Qwen2.5-72B-Instruct": [
            Provider("hf-inference", text="Hi! Qwen 2.5 72B here, served by hf-inference.",
                     context_length=32768, is_free=False, supports_tools=True, supports_structured_output=True,
                     first_token_latency_ms=951.0, throughput=21.4, is_model_author=False,
                     unsupported_shape="tgi"),
        ],
        "deepseek-ai/DeepSeek-R1": [
            Provider("fireworks-ai", provider_id="accounts/fireworks/models/deepseek-r1", delay=delay,
                     reasoning="The user says hello. A short, friendly greeting fits.",
                     text="Hello! How can I help you today?",
                     context_length=163840, pricing={"input": 3.0, "output": 8.0}, is_free=False,
                     supports_tools=True, supports_structured_output=True,
                     first_token_latency_ms=1630.0, throughput=52.7, is_model_author=False),
        ],
        "Qwen/Qwen2.5-VL-7B-Instruct": [
            Provider("nebius", provider_id="Qwen/Qwen2.5-VL-7B-Instruct-fast", status="error", vision=True,
                     context_length=32000, pricing={"input": 0.2, "output": 0.6}, is_free=False,
                     supports_tools=False, supports_structured_output=True, is_model_author=False),
            Provider("hyperbolic", provider_id="Qwen/Qwen2.5-VL-7B-Instruct", vision=True,
                     text="The image shows a cat asleep on a sunny windowsill.",
                     context_length=32768, pricing={"input": 0.2, "output": 0.2}, is_free=False,
                     supports_tools=True, supports_structured_output=True, unsupported_shape="vllm",
                     first_token_latency_ms=1108.0, throughput=45.2, is_model_author=False),
        ],
    }
