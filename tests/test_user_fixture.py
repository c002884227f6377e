"""The ``hf_stub`` pytest fixture, used the way an application's own test suite would use it.

Nothing here imports hf_textgen.testing: installing hf_textgen registers the fixture, and it points
HF_ENDPOINT, HF_TEXTGEN_ROUTER_URL and HF_TOKEN at a stand-in Hub + router for each test.
"""
from __future__ import annotations

from typing import Any, List

import pytest

from hf_textgen import HuggingFaceAPI, PaymentRequiredError, ProviderInfo

MODEL = "meta-llama/Llama-3.3-70B-Instruct"


# ---- the "application" under test


def ask(question: str) -> str:
    """A tiny app: one question, the whole answer."""
    messages = [{"role": "user", "content": question}]
    return "".join(chunk for chunk in HuggingFaceAPI.create_completion(MODEL, messages) if isinstance(chunk, str))


def answering_providers(question: str) -> List[str]:
    messages = [{"role": "user", "content": question}]
    chunks = HuggingFaceAPI.create_completion(MODEL, messages)
    return [chunk.provider for chunk in chunks if isinstance(chunk, ProviderInfo)]


# ---- its tests


def test_my_app_gets_the_answer(hf_stub: Any) -> None:
    hf_stub.provider(MODEL, "together").update(text="Bonjour, le monde !")
    assert ask("Say hello in French") == "Bonjour, le monde !"


def test_my_app_sends_the_question(hf_stub: Any) -> None:
    ask("What is 2+2?")
    posted = [request for request in hf_stub.requests if request.method == "POST"]
    assert [request.path for request in posted] == [
        "/novita/v3/openai/chat/completions",  # answers 402 in the default configuration
        "/together/v1/chat/completions",
    ]
    assert posted[-1].body["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert posted[-1].headers["Authorization"] == "Bearer ***"  # the stub records tokens redacted


def test_my_app_survives_a_provider_out_of_credits(hf_stub: Any) -> None:
    assert answering_providers("hi") == ["novita", "together"]


def test_my_app_reports_when_every_provider_wants_payment(hf_stub: Any) -> None:
    hf_stub.provider(MODEL, "together").update(error_status=402)
    with pytest.raises(PaymentRequiredError) as caught:
        ask("hi")
    assert [provider for provider, _ in caught.value.attempts] == ["novita", "together"]


def test_each_test_gets_a_fresh_stub(hf_stub: Any) -> None:
    assert hf_stub.requests == []
    assert hf_stub.provider(MODEL, "together").error_status is None
