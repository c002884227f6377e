"""JSON payloads -> chunks (pure): ``chunks.StreamChunks`` and ``chunks.completion_chunks``."""
from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Optional, Tuple

import pytest

from hf_textgen import chunks
from hf_textgen.errors import ResponseError
from hf_textgen.types import FinishReason, Logprobs, Reasoning, ToolCalls, Usage

from support import delta

PLACE = "provider 'p', model 'm'"
USAGE = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


DONE = object()  # stands for ``data: [DONE]`` among the payloads: the stream ends there


def stream_chunks(payloads: Iterable[Any], place: str = PLACE) -> Iterator[Any]:
    """Drive ``StreamChunks`` as the exchange does: payloads one read at a time, then the end."""
    decoder = chunks.StreamChunks(place)
    done = False
    for payload in payloads:
        if payload is DONE:
            done = True
            break
        try:
            decoder.add(payload)
        finally:
            yield from decoder.take()
    yield from decoder.end()
    cut = decoder.cut(done)
    if cut is not None:
        raise cut


def stream(*payloads: Any) -> list:
    return list(stream_chunks(payloads))


def stream_until_error(*payloads: Any) -> Tuple[list, Optional[ResponseError]]:
    got: list = []
    try:
        for chunk in stream_chunks(payloads):
            got.append(chunk)
    except ResponseError as error:
        return got, error
    return got, None


def tool_delta(index: Optional[int] = None, id: str = "", name: str = "", arguments: str = "") -> dict:
    call: dict = {"function": {}}
    if index is not None:
        call["index"] = index
    if id:
        call.update(id=id, type="function")
    if name:
        call["function"]["name"] = name
    if arguments:
        call["function"]["arguments"] = arguments
    return delta(tool_calls=[call])


def call(id: str, name: str, arguments: str) -> dict:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_text_deltas_are_yielded_byte_exact() -> None:
    texts = [" Hello", "", "world ", "\n", "  ", "\t", "é€😀", "\u2028"]
    got = stream(*[delta(t) for t in texts], delta(finish="stop"), DONE)
    assert got == [t for t in texts if t] + [FinishReason("stop")]


def test_reasoning_content_and_reasoning_are_reasoning() -> None:
    got = stream(delta(reasoning_content="think "), delta(reasoning="more"), delta("answer"), delta(finish="stop"), DONE)
    assert got == [Reasoning("think "), Reasoning("more"), "answer", FinishReason("stop")]


def test_tool_call_deltas_are_assembled_before_the_finish_reason() -> None:
    got = stream(
        tool_delta(0, id="call_a", name="get_weather"),
        tool_delta(1, id="call_b", name="get_time"),
        tool_delta(0, arguments='{"city": '),
        tool_delta(1, arguments='{"tz": "UTC"}'),
        tool_delta(0, arguments='"Paris"}'),
        delta(finish="tool_calls"),
        {"choices": [], "usage": USAGE},
        DONE,
    )
    assert got == [
        ToolCalls([call("call_a", "get_weather", '{"city": "Paris"}'), call("call_b", "get_time", '{"tz": "UTC"}')]),
        FinishReason("tool_calls"),
        Usage(3, 5, 8),
    ]


def test_tool_call_deltas_without_index_continue_the_last_call() -> None:
    got = stream(
        tool_delta(id="a", name="f"),
        tool_delta(arguments='{"x"'),
        tool_delta(arguments=": 1}"),
        tool_delta(id="b", name="g", arguments="{}"),
        delta(finish="tool_calls"),
        DONE,
    )
    assert got == [ToolCalls([call("a", "f", '{"x": 1}'), call("b", "g", "{}")]), FinishReason("tool_calls")]


def test_tool_calls_without_a_finish_reason_come_at_the_end() -> None:
    got = stream(tool_delta(0, id="a", name="f", arguments="{}"), DONE)
    assert got == [ToolCalls([call("a", "f", "{}")])]


def test_usage_from_a_final_chunk_with_empty_choices_after_finish_reason() -> None:
    got = stream(delta("Hi"), delta(finish="stop"), {"choices": [], "usage": USAGE}, DONE)
    assert got == ["Hi", FinishReason("stop"), Usage(3, 5, 8)]
    assert got[-1].raw == USAGE


def test_usage_is_yielded_once_last() -> None:
    early = {**delta("a"), "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
    last = {**delta(finish="length"), "usage": USAGE}
    assert stream(early, last, DONE) == ["a", FinishReason("length"), Usage(3, 5, 8)]


def test_finish_reason_is_yielded_once() -> None:
    assert stream(delta("a", finish="stop"), {**delta(finish="stop"), "usage": USAGE}, DONE) == [
        "a",
        FinishReason("stop"),
        Usage(3, 5, 8),
    ]


@pytest.mark.parametrize(
    "payload",
    [{}, {"choices": []}, {"choices": None}, {"object": "ping"}, {"choices": [{"delta": {}}]}, {"choices": [{"index": 0}]}],
)
def test_payloads_without_choices_or_delta_are_harmless(payload: dict) -> None:
    assert stream(payload, delta("x"), payload, delta(finish="stop"), DONE) == ["x", FinishReason("stop")]


def test_content_parts_are_text() -> None:
    parts = [{"type": "text", "text": "a "}, {"type": "image_url", "image_url": {}}, {"type": "text", "text": "b"}]
    assert stream(delta(parts), delta(finish="stop"), DONE) == ["a b", FinishReason("stop")]


def test_end_after_a_finish_reason_without_done_is_fine() -> None:
    assert stream(delta("a"), delta(finish="stop")) == ["a", FinishReason("stop")]


def test_end_after_done_without_a_finish_reason_is_fine() -> None:
    assert stream(delta("a"), DONE) == ["a"]


def test_nothing_after_done_is_read() -> None:
    def payloads() -> Any:
        yield delta("a")
        yield DONE
        raise AssertionError("read after [DONE]")

    assert list(stream_chunks(payloads())) == ["a"]


@pytest.mark.parametrize("tail", [[], [{"choices": [], "usage": USAGE}]])
def test_a_cut_stream_raises_after_yielding_what_arrived(tail: List[dict]) -> None:
    got, error = stream_until_error(delta(reasoning="r"), delta("a"), tool_delta(0, id="c", name="f"), *tail)
    assert got[:3] == [Reasoning("r"), "a", ToolCalls([call("c", "f", "")])]
    assert got[3:] == ([Usage(3, 5, 8)] if tail else [])
    assert error is not None and "cut" in str(error) and PLACE in str(error)


def test_an_empty_stream_is_cut() -> None:
    got, error = stream_until_error()
    assert got == [] and "cut" in str(error)


@pytest.mark.parametrize(
    "payload, what",
    [
        ([1, 2], "stream payload"),
        ("text", "stream payload"),
        ({"choices": {"0": {}}}, "choices"),
        ({"choices": ["x"]}, "choices"),
        ({"choices": [{"delta": "x"}]}, "delta"),
        ({"choices": [{"delta": {"content": 5}}]}, "content"),
        ({"choices": [{"delta": {"reasoning": {"x": 1}}}]}, "reasoning"),
        ({"choices": [{"delta": {"tool_calls": {"index": 0}}}]}, "tool_calls"),
        ({"choices": [{"delta": {"tool_calls": ["x"]}}]}, "tool call"),
        ({"choices": [], "usage": [1]}, "usage"),
    ],
)
def test_unexpected_shapes_raise_response_error(payload: Any, what: str) -> None:
    got, error = stream_until_error(delta("a"), payload, delta(finish="stop"), DONE)
    assert got == ["a"]
    assert error is not None and f"unexpected {what}" in str(error) and PLACE in str(error)


# --- non-stream answers --------------------------------------------------------------------------


def answer(message: dict, finish: Optional[str] = "stop", **extra: Any) -> dict:
    return {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": finish}], **extra}


def completion(payload: Any) -> list:
    return list(chunks.completion_chunks(payload, PLACE))


def test_completion_yields_the_same_chunk_types() -> None:
    message = {"role": "assistant", "content": " Hi there! ", "reasoning_content": "think", "tool_calls": [call("a", "f", "{}")]}
    assert completion(answer(message, "tool_calls", usage=USAGE)) == [
        Reasoning("think"),
        " Hi there! ",
        ToolCalls([call("a", "f", "{}")]),
        FinishReason("tool_calls"),
        Usage(3, 5, 8),
    ]


@pytest.mark.parametrize(
    "payload, expected",
    [
        (answer({"content": ""}, None), []),
        (answer({"content": None, "reasoning": "r"}, "length"), [Reasoning("r"), FinishReason("length")]),
        ({"choices": [], "usage": USAGE}, [Usage(3, 5, 8)]),
        (answer({"content": [{"type": "text", "text": "a"}]}, None), ["a"]),
    ],
)
def test_completion_partial_answers(payload: dict, expected: list) -> None:
    assert completion(payload) == expected


@pytest.mark.parametrize(
    "payload, match",
    [
        ({"error": {"message": "model overloaded"}}, "reported an error.*model overloaded"),
        ({"error": "bad input"}, "reported an error.*bad input"),
        ({"object": "error", "message": "engine died", "choices": []}, "reported an error.*engine died"),
        ([1], "unexpected answer"),
        ({"object": "list"}, "unexpected answer"),
        ({"choices": ["x"]}, "unexpected choice"),
        (answer({"content": 5}), "unexpected content"),
        (answer({"content": "a", "tool_calls": {"x": 1}}), "unexpected tool_calls"),
        (answer({"content": "a"}, usage=7), "unexpected usage"),
    ],
)
def test_completion_errors_and_unexpected_answers_raise(payload: Any, match: str) -> None:
    with pytest.raises(ResponseError, match=match):
        completion(payload)


def test_several_payloads_in_one_read_give_their_chunks_in_order() -> None:
    decoder = chunks.StreamChunks(PLACE)
    for payload in [delta("a"), delta("b"), delta(finish="stop"), {"choices": [], "usage": USAGE}]:
        decoder.add(payload)
    assert decoder.take() == ["a", "b", FinishReason("stop")] and decoder.take() == []
    assert decoder.end() == [Usage(3, 5, 8)] and decoder.cut(done=False) is None


def test_a_bad_payload_after_good_ones_in_the_same_read_comes_after_their_chunks() -> None:
    decoder = chunks.StreamChunks(PLACE)
    decoder.add(delta("a"))
    with pytest.raises(ResponseError, match="unexpected choices"):
        decoder.add({"choices": "nope"})
    assert decoder.take() == ["a"]


def test_logprobs_are_carried_in_a_chunk() -> None:
    logprobs = {"content": [{"token": "a", "logprob": -0.1}]}
    payload = {"choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": logprobs, "finish_reason": None}]}
    assert stream(payload, delta(finish="stop"), DONE) == ["a", Logprobs(logprobs), FinishReason("stop")]
    answer = {"choices": [{"message": {"content": "a"}, "logprobs": logprobs, "finish_reason": "stop"}]}
    assert list(chunks.completion_chunks(answer, PLACE)) == ["a", Logprobs(logprobs), FinishReason("stop")]
