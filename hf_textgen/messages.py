"""Message helpers: the seed's length measure, trimming long conversations, and attaching media."""
from __future__ import annotations

import base64
import logging
import mimetypes
import os
import sys
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .errors import ConfigurationError, InputTrimmedWarning
from .types import Trimmed

logger = logging.getLogger("hf_textgen")

Message = Dict[str, Any]


def calculate_lenght(messages: Sequence[Message]) -> int:
    """The seed's measure: sum of ``len(content) + 16``; "Hello" + "Hi there!" -> 46."""
    return sum(len(_text_of(message.get("content"))) + 16 for message in messages)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: count the text parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def trim_messages(messages: List[Message], max_length: Optional[int]) -> Tuple[List[Message], Optional[Trimmed]]:
    """Shorten a conversation longer than ``max_length`` (by :func:`calculate_lenght`); ``None``: never.

    The seed's steps: keep the first 3 and last 3 messages (when there are more than 6), then the
    system messages plus the last user message, then the last message alone. An assistant message
    with ``tool_calls`` and the ``tool`` results after it are kept or dropped together. Returns the
    messages to send and, when anything was dropped, a :class:`~hf_textgen.types.Trimmed`.
    """
    if max_length is None or calculate_lenght(messages) <= max_length:
        return messages, None
    groups = _groups(messages)
    kept = _keep_groups(groups, lambda i: i < 3 or i >= len(messages) - 3) if len(messages) > 6 else list(range(len(messages)))
    if _length(messages, kept) > max_length:
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"][-1:]  # after the system messages, as the seed has it
        kept = _keep_groups(groups, lambda i: messages[i].get("role") == "system") + users
    if not kept or _length(messages, kept) > max_length:
        kept = _keep_groups(groups, lambda i: i == len(messages) - 1)
    kept_set = set(kept)
    dropped = [i for i in range(len(messages)) if i not in kept_set]
    if not dropped:
        return messages, None
    trimmed = Trimmed(len(dropped), sum(len(_text_of(messages[i].get("content"))) for i in dropped), max_length)
    logger.info("left out %d messages (%d characters) over max_inputs_lenght=%d", trimmed.dropped_messages, trimmed.dropped_chars, max_length)
    return [messages[i] for i in kept], trimmed


def _groups(messages: List[Message]) -> List[int]:
    """For each message, the index of the first message of its group: an assistant message with
    ``tool_calls`` and the ``tool`` messages right after it form one group."""
    group, owners = 0, []  # type: int, List[int]
    for index, message in enumerate(messages):
        if not (message.get("role") == "tool" and index and owners[-1] == group and _has_tool_calls(messages[group])):
            group = index
        owners.append(group)
    return owners


def _has_tool_calls(message: Message) -> bool:
    return message.get("role") == "assistant" and bool(message.get("tool_calls"))


def _keep_groups(groups: List[int], wanted: Callable[[int], bool]) -> List[int]:
    """The indices of every message whose group holds a wanted message, in order."""
    chosen = {groups[i] for i in range(len(groups)) if wanted(i)}
    return [i for i in range(len(groups)) if groups[i] in chosen]


def _length(messages: List[Message], indices: List[int]) -> int:
    return calculate_lenght([messages[i] for i in indices])


def warn_trimmed(trimmed: Trimmed) -> None:
    """Issue the warning for left-out messages, pointing at the caller's line (outside hf_textgen)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("hf_textgen."):
        frame, level = frame.f_back, level + 1
    warnings.warn(trimming_warning(trimmed), stacklevel=level)


def trimming_warning(trimmed: Trimmed) -> InputTrimmedWarning:
    """The warning issued when messages are left out."""
    return InputTrimmedWarning(
        f"{trimmed.dropped_messages} message(s) ({trimmed.dropped_chars} characters) were left out of the "
        f"conversation: it is longer than max_inputs_lenght={trimmed.limit}; raise it, or pass "
        "max_inputs_lenght=None to send everything"
    )


def media_to_url(item: Any) -> str:
    """A media item as an image URL: http(s) or data: URLs pass; bytes and file paths become data URLs."""
    if isinstance(item, tuple) and len(item) != 2:
        raise ConfigurationError(f"a media tuple must be (data, name), got {len(item)} items")
    data, name = item if isinstance(item, tuple) else (item, None)
    if isinstance(data, str) and data.startswith(("http://", "https://", "data:")):
        return data
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            raise ConfigurationError(f"cannot read media file {path!r}: {error.strerror}") from None
        name = name or path
    if not isinstance(data, (bytes, bytearray)):
        raise ConfigurationError(f"media items must be URLs, paths, bytes or (data, name) pairs, not {type(data).__name__}")
    mime = (mimetypes.guess_type(name)[0] if name else None) or _sniff_image_type(bytes(data))
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _sniff_image_type(data: bytes) -> str:
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":  # RIFF alone is also WAV, AVI, ...
        return "image/webp"
    signatures = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}
    return next((mime for magic, mime in signatures.items() if data.startswith(magic)), "application/octet-stream")


def attach_media(messages: List[Message], media: Sequence[Any]) -> List[Message]:
    """Return messages whose last user message carries the media as OpenAI ``image_url`` parts."""
    if not media:
        return messages
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last_user is None:
        raise ConfigurationError("media needs a user message to attach to")
    message = messages[last_user]
    content = message.get("content")
    parts = list(content) if isinstance(content, list) else [{"type": "text", "text": _text_of(content)}]
    parts += [{"type": "image_url", "image_url": {"url": media_to_url(item)}} for item in media]
    return messages[:last_user] + [{**message, "content": parts}] + messages[last_user + 1 :]
