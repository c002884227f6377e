"""Message helpers: the seed's length measure, trimming long conversations, and attaching media."""
from __future__ import annotations

import base64
import logging
import mimetypes
import os
from typing import Any, Dict, List, Sequence

from .errors import ConfigurationError

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


def validate_messages(messages: Any) -> List[Message]:
    """Check the OpenAI message shape up front so bad input fails before anything is sent."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ConfigurationError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ConfigurationError(f"messages[{index}] must be a dict with a 'role' string, got {message!r:.80}")
    return list(messages)


def trim_messages(messages: List[Message], max_length: int) -> List[Message]:
    """Shorten a conversation longer than ``max_length`` (by :func:`calculate_lenght`).

    First keep the first 3 and last 3 messages (when there are more than 6), then the system
    messages plus the last user message, then the last message alone.
    """
    original = calculate_lenght(messages)
    if original <= max_length:
        return messages
    trimmed = messages
    if len(trimmed) > 6:
        trimmed = trimmed[:3] + trimmed[-3:]
    if calculate_lenght(trimmed) > max_length:
        last_user = [m for m in messages if m.get("role") == "user"][-1:]
        trimmed = [m for m in messages if m.get("role") == "system"] + last_user
    if calculate_lenght(trimmed) > max_length or not trimmed:
        trimmed = messages[-1:]
    logger.info("trimmed messages from %d to %d (max_inputs_lenght=%d)", original, calculate_lenght(trimmed), max_length)
    return trimmed


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
