"""The configuration the CLI, the demo and the ``hf_stub`` fixture serve: :func:`default_models`."""
from __future__ import annotations

from typing import Dict, List

from .config import Provider


def default_models(delay: float = 0.03) -> Dict[str, List[Provider]]:
    """The configuration of the CLI and the demo (``delay`` between stream events; the fixture uses 0).

    Llama 3.3 70B: novita answers 402, together streams a greeting; Qwen 2.5 72B on hf-inference;
    DeepSeek-R1 on fireworks-ai with reasoning; the vision model Qwen 2.5 VL 7B on nebius (status
    ``error``) then hyperbolic.
    """
    return {
        "meta-llama/Llama-3.3-70B-Instruct": [
            Provider("novita", provider_id="meta-llama/llama-3.3-70b-instruct", error_status=402),
            Provider("together", provider_id="meta-llama/Llama-3.3-70B-Instruct-Turbo", delay=delay, text=(
                "Hello! I am Llama 3.3 70B, played by the hf_textgen offline stub. novita answered "
                "402 (credits exhausted), so the request failed over to together, which streams this "
                "reply one word per server-sent event. Nothing left your machine."
            )),
        ],
        "Qwen/Qwen2.5-72B-Instruct": [
            Provider("hf-inference", text="Hi! Qwen 2.5 72B here, served by hf-inference."),
        ],
        "deepseek-ai/DeepSeek-R1": [
            Provider("fireworks-ai", provider_id="accounts/fireworks/models/deepseek-r1", delay=delay,
                     reasoning="The user says hello. A short, friendly greeting fits.",
                     text="Hello! How can I help you today?"),
        ],
        "Qwen/Qwen2.5-VL-7B-Instruct": [
            Provider("nebius", provider_id="Qwen/Qwen2.5-VL-7B-Instruct-fast", status="error", vision=True),
            Provider("hyperbolic", provider_id="Qwen/Qwen2.5-VL-7B-Instruct", vision=True,
                     text="The image shows a cat asleep on a sunny windowsill."),
        ],
    }
