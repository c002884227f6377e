"""A conversation as data: OpenAI messages, the system message in front, saved and loaded as a
JSON list (``/save``, ``/load``, ``--load``). Standard library only."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from .exits import UsageError

Message = Dict[str, Any]
ROLES = ("system", "user", "assistant", "tool")


def with_system(messages: List[Message], system: Optional[str]) -> List[Message]:
    """``messages`` with ``system`` as the system message in front (replacing one that is there);
    ``system`` empty or None: without a leading system message."""
    rest = messages[1:] if messages and messages[0].get("role") == "system" else list(messages)
    return ([{"role": "system", "content": system}] if system else []) + rest


def system_of(messages: List[Message]) -> Optional[str]:
    """The leading system message's text, if there is one."""
    if messages and messages[0].get("role") == "system":
        content = messages[0].get("content")
        return content if isinstance(content, str) else json.dumps(content)
    return None


def user(text: str) -> Message:
    return {"role": "user", "content": text}


def check_messages(value: Any, where: str) -> List[Message]:
    """``value`` as a list of OpenAI messages, or :class:`UsageError` saying what is wrong and where."""
    if not isinstance(value, list):
        raise UsageError(f"{where}: expected a JSON list of messages, found a JSON {type(value).__name__}")
    for number, message in enumerate(value, 1):
        if not isinstance(message, dict):
            raise UsageError(f"{where}: message {number} is not a JSON object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise UsageError(f"{where}: message {number} has role {role!r}; expected one of {', '.join(ROLES)}")
        if content is not None and not isinstance(content, (str, list)):
            raise UsageError(f"{where}: message {number}'s content must be text or a list of parts")
    return [dict(message) for message in value]


def load(path: str) -> List[Message]:
    """The conversation saved in ``path``."""
    name = os.path.expanduser(path)
    try:
        with open(name, encoding="utf-8") as handle:
            value = json.load(handle)
    except OSError as error:
        raise UsageError(f"cannot read the conversation {path}: {error.strerror or error}") from None
    except ValueError as error:  # JSON or UTF-8
        raise UsageError(f"cannot read the conversation {path}: not JSON ({error})") from None
    return check_messages(value, path)


def save(path: str, messages: List[Message]) -> None:
    """Write ``messages`` to ``path`` as an indented JSON list (replacing the file)."""
    name = os.path.expanduser(path)
    try:
        with open(name, "w", encoding="utf-8") as handle:
            json.dump(messages, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
    except OSError as error:
        raise UsageError(f"cannot write the conversation to {path}: {error.strerror or error}") from None
