"""What the user types in a conversation: line editing and history through the standard
``readline`` module when there is one (never required), and messages of several lines.

A message is one line, or several: a line ending in ``\\`` continues on the next one, and a
line starting with ``\"\"\"`` opens a block that the next line ending in ``\"\"\"`` closes.
History lives in ``$HF_HOME/hf_textgen_history`` (``HF_HOME`` default ``~/.cache/huggingface``).
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import IO, List, Optional

HISTORY_NAME = "hf_textgen_history"
HISTORY_LENGTH = 1000
PROMPT = "> "
CONTINUATION = "... "
QUOTES = '"""'


def history_path() -> str:
    """Where the history of what was typed is kept."""
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, HISTORY_NAME)


def _readline() -> Optional[ModuleType]:
    try:
        import readline
    except ImportError:  # Python built without it (or Windows): plain input() still works
        return None
    return readline


class LineReader:
    """Reads messages from stdin: with prompts, line editing and history on a terminal; plain
    lines from a pipe. ``with LineReader(stdin) as reader: reader.read()``."""

    def __init__(self, stdin: IO[str]) -> None:
        self.terminal = stdin.isatty()
        self.readline = _readline() if self.terminal else None
        self.history = history_path()

    def __enter__(self) -> LineReader:
        if self.readline is not None:
            try:
                self.readline.read_history_file(self.history)
            except (OSError, ValueError):  # none yet, or unreadable: start without
                pass
            self.readline.set_history_length(HISTORY_LENGTH)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.readline is not None:
            try:
                os.makedirs(os.path.dirname(self.history), exist_ok=True)
                self.readline.write_history_file(self.history)
            except OSError:  # a read-only home must not spoil the end of a session
                pass

    def _line(self, prompt: str) -> str:
        return input(prompt) if self.terminal else input()

    def read(self) -> Optional[str]:
        """The next message; None at the end of input (Ctrl-D). Ctrl-C raises KeyboardInterrupt
        and drops what was typed of the message."""
        try:
            line = self._line(PROMPT)
        except EOFError:
            return None
        if line.lstrip().startswith(QUOTES):
            return self._block(line.lstrip()[len(QUOTES):])
        lines: List[str] = []
        while line.endswith("\\"):
            lines.append(line[:-1])
            try:
                line = self._line(CONTINUATION)
            except EOFError:
                return None
        return "\n".join(lines + [line])

    def _block(self, first: str) -> Optional[str]:
        """The lines up to the closing quotes; ``first`` is the text after the opening ones."""
        if first.rstrip().endswith(QUOTES):  # """all on one line"""
            return first.rstrip()[: -len(QUOTES)]
        lines = [first] if first else []
        while True:
            try:
                line = self._line(CONTINUATION)
            except EOFError:
                return None
            if line.rstrip().endswith(QUOTES):
                last = line.rstrip()[: -len(QUOTES)]
                return "\n".join(lines + ([last] if last else []))
            lines.append(line)
