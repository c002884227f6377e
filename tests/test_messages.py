"""Messages (pure): the seed's length measure, trimming, media rendering and message validation."""
from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any, Dict, List

import pytest

from hf_textgen import Trimmed, calculate_lenght
from hf_textgen.errors import ConfigurationError
from hf_textgen.messages import attach_media, media_to_url, trim_messages
from hf_textgen.validate import check_messages as validate_messages

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 8


def user(text: str) -> Dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> Dict[str, Any]:
    return {"role": "assistant", "content": text}


def system(text: str) -> Dict[str, Any]:
    return {"role": "system", "content": text}


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# -- calculate_lenght ---------------------------------------------------------------------------------


def test_calculate_lenght_is_the_seeds_sum() -> None:
    assert calculate_lenght([user("Hello"), assistant("Hi there!")]) == 46


@pytest.mark.parametrize(
    "messages, expected",
    [
        ([], 0),
        ([user("")], 16),
        ([{"role": "assistant", "content": None}], 16),
        ([{"role": "user", "content": [{"type": "text", "text": "abc"}, {"type": "image_url", "image_url": {"url": "x"}}]}], 19),
    ],
)
def test_calculate_lenght_counts_text_only(messages: List[Dict[str, Any]], expected: int) -> None:
    assert calculate_lenght(messages) == expected


# -- trimming -------------------------------------------------------------------------------------------


def conversation(count: int, size: int = 10) -> List[Dict[str, Any]]:
    """system, then alternating user/assistant messages of ``size`` characters each."""
    turns = [system("s" * size)]
    for index in range(1, count):
        turns.append((user if index % 2 else assistant)(str(index) * size))
    return turns


def test_a_short_conversation_is_kept_as_it_is() -> None:
    messages = conversation(10)
    assert trim_messages(messages, calculate_lenght(messages)) == (messages, None)
    assert trim_messages(messages, calculate_lenght(messages))[0] is messages


def test_more_than_six_messages_keep_the_first_three_and_the_last_three(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "hf_textgen")
    messages = conversation(10)
    trimmed, report = trim_messages(messages, 6 * 26)
    assert trimmed == messages[:3] + messages[-3:]
    assert report == Trimmed(dropped_messages=4, dropped_chars=4 * 10, limit=6 * 26)
    assert "left out 4 messages" in caplog.text


def test_then_the_system_messages_and_the_last_user_message() -> None:
    messages = conversation(10) + [system("late system")]
    last_user = messages[-2]
    assert last_user["role"] == "user" and messages[-3]["role"] == "assistant"
    trimmed, _ = trim_messages(messages, 3 * 26 + 11)  # too small for first 3 + last 3
    assert trimmed == [messages[0], messages[-1], last_user]


def test_six_or_fewer_messages_go_straight_to_system_and_last_user() -> None:
    messages = conversation(6)
    trimmed, _ = trim_messages(messages, 2 * 26)
    assert messages[-1]["role"] == "user"
    assert trimmed == [messages[0], messages[-1]]


def test_then_the_last_message_alone() -> None:
    messages = [system("s" * 100), user("u" * 100), assistant("a" * 5)]
    assert trim_messages(messages, 50)[0] == [messages[-1]]


def test_without_system_or_user_messages_the_last_message_is_kept() -> None:
    messages = [assistant("a" * 100), assistant("b" * 100)]
    assert trim_messages(messages, 10)[0] == [messages[-1]]


def test_the_last_message_is_kept_even_when_it_alone_is_too_long() -> None:
    messages = [user("u" * 100), user("v" * 100)]
    assert trim_messages(messages, 10)[0] == [messages[-1]]


def test_none_turns_trimming_off() -> None:
    messages = conversation(10)
    assert trim_messages(messages, None) == (messages, None)


def tool_turn(call_id: str, result: str) -> List[Dict[str, Any]]:
    """An assistant message calling a tool, and the tool's result."""
    call = {"id": call_id, "type": "function", "function": {"name": "look", "arguments": "{}"}}
    return [{"role": "assistant", "content": None, "tool_calls": [call]}, {"role": "tool", "tool_call_id": call_id, "content": result}]


def test_a_tool_call_and_its_results_are_kept_together_when_the_cut_falls_between_them() -> None:
    # first 3 would end on the assistant's call; its tool result (index 3) comes along
    messages = [system("s"), user("u" * 10), *tool_turn("a", "r" * 10), user("x" * 40), assistant("y" * 40), user("z" * 40), assistant("w" * 40), user("v")]
    trimmed, report = trim_messages(messages, 9 * 16 + 80)
    kept = [m for m in trimmed]
    assert kept == messages[:4] + messages[-3:]
    assert report is not None and report.dropped_messages == 2


def test_a_tool_call_and_its_results_are_dropped_together() -> None:
    messages = [*tool_turn("a", "r" * 10), user("u" * 10), *tool_turn("b", "t" * 50), user("last")]
    trimmed, report = trim_messages(messages, 40)  # only the last user message fits
    assert trimmed == [messages[-1]]
    assert report == Trimmed(dropped_messages=5, dropped_chars=10 + 10 + 50, limit=40)


def test_a_last_tool_result_alone_keeps_its_call() -> None:
    messages = [user("u" * 100), *tool_turn("a", "r" * 100)]
    trimmed, _ = trim_messages(messages, 10)
    assert trimmed == messages[1:]


def test_several_tool_results_belong_to_the_call_before_them() -> None:
    call, first = tool_turn("a", "r" * 100)
    second = {"role": "tool", "tool_call_id": "b", "content": "q" * 100}
    messages = [user("u" * 300), call, first, second]
    trimmed, _ = trim_messages(messages, 10)
    assert trimmed == [call, first, second]


# -- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "messages",
    [None, [], "Hi", {"role": "user", "content": "Hi"}, ["Hi"], [{"content": "Hi"}], [{"role": 1, "content": "Hi"}], [user("ok"), None]],
)
def test_invalid_messages_are_refused(messages: Any) -> None:
    with pytest.raises(ConfigurationError) as raised:
        validate_messages(messages)
    assert isinstance(raised.value, ValueError) and "messages" in str(raised.value)


def test_valid_messages_come_back_as_a_list() -> None:
    assert validate_messages((user("a"), assistant("b"))) == [user("a"), assistant("b")]


# -- media ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://example.com/cat.png", "http://example.com/cat", "data:image/png;base64,AAAA"])
def test_urls_pass_unchanged(url: str) -> None:
    assert media_to_url(url) == url


@pytest.mark.parametrize(
    "data, mime",
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (b"GIF89a...", "image/gif"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"), (b"plain", "application/octet-stream")],
)
def test_bytes_become_data_urls_with_a_sniffed_type(data: bytes, mime: str) -> None:
    assert media_to_url(data) == data_url(mime, data)
    assert media_to_url(bytearray(data)) == data_url(mime, data)


def test_a_riff_file_that_is_not_webp_is_not_called_webp() -> None:
    wave = b"RIFF\x24\x00\x00\x00WAVEfmt "
    assert media_to_url(wave) == data_url("application/octet-stream", wave)


def test_a_data_name_pair_takes_its_type_from_the_name() -> None:
    assert media_to_url((PNG, "photo.jpg")) == data_url("image/jpeg", PNG)
    assert media_to_url((PNG, "no-extension")) == data_url("image/png", PNG)


def test_paths_are_read(tmp_path: Path) -> None:
    named = tmp_path / "picture.gif"
    named.write_bytes(PNG)
    unnamed = tmp_path / "picture"
    unnamed.write_bytes(JPEG)
    assert media_to_url(str(named)) == data_url("image/gif", PNG)
    assert media_to_url(named) == data_url("image/gif", PNG)
    assert media_to_url(unnamed) == data_url("image/jpeg", JPEG)


@pytest.mark.parametrize("item", ["/no/such/file.png", 42, None, (PNG,), (PNG, "a.png", "extra"), [PNG]])
def test_unusable_media_is_refused(item: Any) -> None:
    with pytest.raises(ConfigurationError):
        media_to_url(item)


def test_media_go_into_the_last_user_message_as_image_parts() -> None:
    messages = [system("s"), user("first"), user("look"), assistant("ok")]
    attached = attach_media(messages, ["https://example.com/a.png", PNG])
    assert attached[:2] == messages[:2] and attached[3] == messages[3]
    assert attached[2] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}},
        ],
    }
    assert messages[2] == user("look")  # the caller's messages are not changed


def test_media_extend_existing_content_parts() -> None:
    parts = [{"type": "text", "text": "look"}]
    attached = attach_media([{"role": "user", "content": parts}], [PNG])
    assert attached[0]["content"] == parts + [{"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}}]
    assert len(parts) == 1


def test_no_media_changes_nothing() -> None:
    messages = [user("x")]
    assert attach_media(messages, []) is messages


def test_media_need_a_user_message() -> None:
    with pytest.raises(ConfigurationError, match="user message"):
        attach_media([system("s")], [PNG])
