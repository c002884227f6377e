"""``Client``: settings of its own that beat the environment; ``HuggingFaceAPI`` is the default
client; results as one value (``complete``, ``stream(...).result()``), sync and async."""
from __future__ import annotations

from typing import Any, List

import anyio
import pytest
import responses

from hf_textgen import Attempt, ChatResult, Client, HuggingFaceAPI, ResultCollector, Timeouts, ToolCalls, Usage, clear_caches
from hf_textgen.errors import MissingAuthError, ResponseError

from mocked import backoffs, isolated, mock  # noqa: F401  (fixtures)
from mocked import HUB, MESSAGES, MODEL, ROUTER, TOKEN, answer_ok, auth_headers, chat_url, completion, gets, mapping_of, posts, serve_mapping

OTHER_HUB = "https://hub.example"
OTHER_ROUTER = "https://router.example"
OTHER_TOKEN = "hf_OTHERotherOTHER456"


def test_settings_beat_the_environment(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", HUB)
    monkeypatch.setenv("HF_TEXTGEN_ROUTER_URL", ROUTER)
    serve_mapping(mock, mapping_of("together", "novita"), hub_url=OTHER_HUB)
    answer_ok(mock, chat_url("novita", "/v3/openai/chat/completions", router=OTHER_ROUTER))
    client = Client(api_key=OTHER_TOKEN, hub_url=OTHER_HUB + "/", router_url=OTHER_ROUTER, provider="novita", timeout=(3, 7))
    assert client.complete(MODEL, MESSAGES, stream=False).text == "ok"
    assert gets(mock) == [f"{OTHER_HUB}/api/models/{MODEL}?expand%5B%5D=inferenceProviderMapping"]
    assert posts(mock) == [chat_url("novita", "/v3/openai/chat/completions", router=OTHER_ROUTER)]
    assert auth_headers(mock) == [f"Bearer {OTHER_TOKEN}"] * 2


def test_what_a_client_leaves_out_comes_from_the_environment_at_call_time(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client(provider="together")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", OTHER_HUB)
    serve_mapping(mock, mapping_of("together"), hub_url=OTHER_HUB)
    answer_ok(mock, chat_url("together"))
    assert client.complete(MODEL, MESSAGES, stream=False).provider == "together"
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(MissingAuthError):
        client.complete(MODEL, MESSAGES)


def test_a_call_argument_beats_the_client(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together", "novita"))
    answer_ok(mock, chat_url("together"))
    client = Client(api_key=TOKEN, provider="novita")
    assert client.complete(MODEL, MESSAGES, stream=False, provider="together", api_key=OTHER_TOKEN).provider == "together"
    assert auth_headers(mock)[-1] == f"Bearer {OTHER_TOKEN}"


def test_headers_and_bill_to_go_with_router_requests_only(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together"))
    answer_ok(mock, chat_url("together"))
    client = Client(api_key=TOKEN, headers={"X-Trace": "client"}, bill_to="my-org")
    client.complete(MODEL, MESSAGES, stream=False, headers={"X-Call": "yes"})
    hub_call, chat_call = mock.calls
    assert "X-HF-Bill-To" not in hub_call.request.headers and "X-Trace" not in hub_call.request.headers
    sent = chat_call.request.headers
    assert (sent["X-HF-Bill-To"], sent["X-Trace"], sent["X-Call"], sent["Authorization"]) == ("my-org", "client", "yes", f"Bearer {TOKEN}")


def test_two_clients_with_different_tokens_never_share_a_cached_mapping(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together"))
    first, second, third = Client(api_key=TOKEN), Client(api_key="not-an-hf-token-1"), Client(api_key="not-an-hf-token-2")
    for client in (first, second, third, first, second, third):
        client.get_mapping_sync(MODEL)
    assert len(gets(mock)) == 3


def test_the_mapping_can_be_refreshed_and_the_caches_cleared(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together"))
    client = Client(api_key=TOKEN)
    client.get_mapping_sync(MODEL)
    client.get_mapping_sync(MODEL)
    assert len(gets(mock)) == 1
    client.get_mapping_sync(MODEL, refresh=True)
    assert len(gets(mock)) == 2
    clear_caches()
    HuggingFaceAPI.get_mapping_sync(MODEL, api_key=TOKEN)
    assert len(gets(mock)) == 3


def test_the_repr_never_shows_the_token() -> None:
    client = Client(api_key=TOKEN, router_url=OTHER_ROUTER, bill_to="my-org")
    assert TOKEN not in repr(client) and "api_key=***" in repr(client) and "my-org" in repr(client)


def test_huggingface_api_is_the_default_client_with_its_class_attributes(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    class Mine(HuggingFaceAPI):
        model_aliases = {"mine": MODEL}

    serve_mapping(mock, mapping_of("together"))
    answer_ok(mock, chat_url("together"))
    assert Mine.complete("mine", MESSAGES, api_key=TOKEN, stream=False).model == MODEL
    assert Mine.client().get_model("mine") == MODEL and Client().get_model("mine") == "mine"


# -- results ----------------------------------------------------------------------------------------------


TWO = mapping_of("first", "second")


def test_complete_returns_the_whole_answer_with_failover_as_data(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, TWO)
    mock.post(chat_url("first"), status=402, json={"error": "no credits"})
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    mock.post(chat_url("second"), json={**completion("Hi there", reasoning_content="think"), "usage": usage})
    result = HuggingFaceAPI.complete(MODEL, MESSAGES, api_key=TOKEN, stream=False)
    assert isinstance(result, ChatResult) and str(result) == "Hi there"
    assert (result.text, result.reasoning, result.finish_reason, result.provider, result.model) == ("Hi there", "think", "stop", "second", MODEL)
    assert result.usage == Usage(3, 2, 5) and result.attempts == (Attempt("first", 402, "no credits"),)
    assert result.message == {"role": "assistant", "content": "Hi there"}


def test_a_tool_call_answer_gives_the_message_for_the_next_turn(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together"))
    call = {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
    mock.post(chat_url("together"), json=completion(None, finish="tool_calls", tool_calls=[call]))  # type: ignore[arg-type]
    result = HuggingFaceAPI.complete(MODEL, MESSAGES, api_key=TOKEN, stream=False)
    assert result.tool_calls == [call] and result.finish_reason == "tool_calls"
    assert result.message == {"role": "assistant", "content": None, "tool_calls": [call]}
    result.message["tool_calls"][0]["id"] = "changed"
    assert result.tool_calls[0]["id"] == "c1"  # the message is a copy


def test_a_stream_gives_the_same_result_at_the_end(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together"))
    answer_ok(mock, chat_url("together"), content="streamed")
    with HuggingFaceAPI.stream(MODEL, MESSAGES, api_key=TOKEN, stream=False) as stream:
        texts = list(stream.text())
        result = stream.result()
    assert texts == ["streamed"] and result.text == "streamed" and result.provider == "together"


def test_result_reads_what_the_caller_did_not(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together"))
    answer_ok(mock, chat_url("together"))
    stream = HuggingFaceAPI.stream(MODEL, MESSAGES, api_key=TOKEN, stream=False)
    next(stream)  # ProviderInfo
    assert stream.result().text == "ok"


def test_result_after_an_early_close_says_there_is_no_complete_result(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, mapping_of("together"))
    answer_ok(mock, chat_url("together"))
    stream = HuggingFaceAPI.stream(MODEL, MESSAGES, api_key=TOKEN, stream=False)
    next(stream)
    stream.close()
    with pytest.raises(ResponseError, match="closed before it finished"):
        stream.result()


def test_a_collector_fed_by_hand_gives_the_same_result(mock: responses.RequestsMock) -> None:
    serve_mapping(mock, TWO)
    mock.post(chat_url("first"), status=503)
    answer_ok(mock, chat_url("second"))
    collector = ResultCollector(MODEL)
    seen: List[Any] = [collector.add(chunk) for chunk in HuggingFaceAPI.create_completion(MODEL, MESSAGES, api_key=TOKEN, stream=False)]
    assert collector.result() == HuggingFaceAPI.complete(MODEL, MESSAGES, api_key=TOKEN, stream=False)
    assert [type(chunk).__name__ for chunk in seen] == ["ProviderInfo", "Attempt", "ProviderInfo", "str", "FinishReason"]


def test_tool_call_deltas_are_collected_once(mock: responses.RequestsMock) -> None:
    collector = ResultCollector(MODEL)
    collector.add(ToolCalls([{"id": "a"}]))
    collector.add(ToolCalls([{"id": "b"}]))
    assert collector.result().tool_calls == [{"id": "a"}, {"id": "b"}]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_complete_async_and_stream_async(mock: responses.RequestsMock, backend: str) -> None:
    serve_mapping(mock, TWO)
    mock.post(chat_url("first"), status=429, json={"error": "slow down"})
    answer_ok(mock, chat_url("second"), content="async ok")

    async def main() -> "tuple[ChatResult, ChatResult, List[str]]":
        whole = await HuggingFaceAPI.complete_async(MODEL, MESSAGES, api_key=TOKEN, stream=False, timeout=Timeouts(2, 5))
        async with HuggingFaceAPI.stream_async(MODEL, MESSAGES, api_key=TOKEN, stream=False) as stream:
            texts = [text async for text in stream.text()]
            streamed = await stream.result()
        return whole, streamed, texts

    whole, streamed, texts = anyio.run(main, backend=backend)
    assert whole == streamed and whole.text == "async ok" and texts == ["async ok"]
    assert whole.attempts == (Attempt("first", 429, "slow down"),)
