"""Chat output: for people (text on stdout; provider, failover and reasoning on stderr) or for
scripts (``--json``: one JSON object per chunk on stdout). Both read chunks, never log records.

Human notes on stderr, one line each::

    [left out 4 earlier messages (5120 characters): over --max-inputs-length 10000]
    [nebius skipped: status 'error']
    [novita failed: 402 You have exceeded your monthly included credits... -> trying together]
    [provider: together]

JSON objects: ``trimmed``, ``skipped``, ``failover``, ``provider``, ``text``, ``reasoning``,
``tool_calls``, ``finish``, ``usage``, ``cost``, ``error``.
"""
from __future__ import annotations

import json
import os
from typing import IO, Any, Dict, List, Optional, Union

from .notices import Notices

FAILOVER_REASON = 100  # characters of a failover line's reason


def attempt_reason(attempt: Any, limit: int = FAILOVER_REASON) -> str:
    """Why a provider was left, short: ``402 <server message>``, from the library's ``Attempt``."""
    from hf_textgen.errors import shorten

    return shorten(f"{attempt.status} {attempt.reason}" if attempt.status else attempt.reason, limit)


class ChatOutput:
    """Writes chat chunks for people: text to stdout, provider notes and reasoning to stderr."""

    def __init__(
        self, out: IO[str], err: IO[str], notices: Notices, *, show_reasoning: bool, verbose: bool, show_cost: bool = False
    ) -> None:
        self.out, self.err, self.notices = out, err, notices
        self.show_reasoning, self.verbose, self.show_cost = show_reasoning, verbose, show_cost
        self.provider: Optional[str] = None
        self.failed: Any = None  # the Attempt to report with the next provider
        self.announced = False
        self.at_line_start = True
        self.reasoning_open = False
        self.dim = err.isatty() and "NO_COLOR" not in os.environ

    # -- the chunk kinds

    def trimmed(self, chunk: Any) -> None:
        self._note(f"left out {chunk.dropped_messages} earlier message{'s' if chunk.dropped_messages != 1 else ''} "
                   f"({chunk.dropped_chars} characters): over --max-inputs-length {chunk.limit}")

    def attempt(self, attempt: Any) -> None:
        self._failed_alone()
        if attempt.skipped:
            self._note(f"{attempt.provider} skipped: {attempt_reason(attempt)}")
        else:
            self.failed = attempt

    def provider_info(self, provider: str, model: str, label: str) -> None:
        self.notices.flush()
        if self.failed is not None:
            self._note(f"{self.failed.provider} failed: {attempt_reason(self.failed)} -> trying {provider}")
            self.failed = None
        self.provider, self.announced = provider, False

    def text(self, text: str) -> None:
        self._announce()
        self._end_reasoning()
        self.out.write(text)
        self.out.flush()
        if text:
            self.at_line_start = text.endswith("\n")

    def reasoning(self, text: str) -> None:
        self._announce()
        if self.show_reasoning and text:
            self.err.write(f"\x1b[2m{text}\x1b[0m" if self.dim else text)
            self.err.flush()
            self.reasoning_open = not text.endswith("\n")

    def tool_calls(self, calls: List[Dict[str, Any]]) -> None:
        self._announce()
        self._note(f"tool calls: {json.dumps(calls, ensure_ascii=False)}")

    def finish(self, reason: str) -> None:
        self._announce()
        if reason == "length":
            self._note("the answer was cut at the token limit (--max-tokens)")

    def usage(self, chunk: Any) -> None:
        if self.verbose:
            self._note(f"usage: {chunk.prompt_tokens} prompt + {chunk.completion_tokens} completion = {chunk.total_tokens} tokens")

    def cost(self, chunk: Any) -> None:
        if self.verbose or self.show_cost:
            self._note(f"cost: ${chunk.total_usd:.6f} at {chunk.provider} (${chunk.input_usd:.6f} in + ${chunk.output_usd:.6f} out)")

    # -- end of the answer

    def close(self) -> None:
        """Finish the line on stdout and print warnings that came after the last chunk."""
        self._announce()
        self._failed_alone()
        self._end_line()
        self.notices.flush()

    def error(self, fields: Dict[str, Any]) -> None:
        """An answer ended by an error (reported on stderr by the caller): end the line."""
        self._failed_alone()
        self._end_line()

    def note(self, text: str) -> None:
        """A line of the CLI's own in the notes' style: ``[text]`` on stderr."""
        self._note(text)

    # -- helpers

    def _failed_alone(self) -> None:
        if self.failed is not None:  # no provider followed it
            self._note(f"{self.failed.provider} failed: {attempt_reason(self.failed)}")
            self.failed = None

    def _announce(self) -> None:
        if self.provider is not None and not self.announced:
            self.announced = True
            self._note(f"provider: {self.provider}")

    def _note(self, text: str) -> None:
        self._end_line()
        self.err.write(f"[{text}]\n")
        self.err.flush()

    def _end_reasoning(self) -> None:
        if self.reasoning_open:
            self.err.write("\n")
            self.reasoning_open = False

    def _end_line(self) -> None:
        """End the current line of the answer (stdout) and of the reasoning (stderr)."""
        self._end_reasoning()
        if not self.at_line_start:
            self.out.write("\n")
            self.out.flush()
            self.at_line_start = True


class JsonChatOutput:
    """Writes one JSON object per chunk on stdout (for scripts); warnings still go to stderr."""

    def __init__(self, out: IO[str], err: IO[str], notices: Notices) -> None:
        self.out, self.err, self.notices = out, err, notices
        self.failed: Any = None

    def trimmed(self, chunk: Any) -> None:
        self._emit(type="trimmed", dropped_messages=chunk.dropped_messages, dropped_chars=chunk.dropped_chars,
                   limit=chunk.limit)

    def attempt(self, attempt: Any) -> None:
        self._failed_alone()
        if attempt.skipped:
            self._emit(type="skipped", provider=attempt.provider, reason=attempt_reason(attempt, 1000))
        else:
            self.failed = attempt

    def provider_info(self, provider: str, model: str, label: str) -> None:
        self.notices.flush()
        if self.failed is not None:
            self._emit(type="failover", provider=self.failed.provider, status=self.failed.status,
                       reason=attempt_reason(self.failed, 1000), next=provider)
            self.failed = None
        self._emit(type="provider", provider=provider, model=model, label=label)

    def text(self, text: str) -> None:
        self._emit(type="text", text=text)

    def reasoning(self, text: str) -> None:
        self._emit(type="reasoning", text=text)

    def tool_calls(self, calls: List[Dict[str, Any]]) -> None:
        self._emit(type="tool_calls", calls=calls)

    def finish(self, reason: str) -> None:
        self._emit(type="finish", reason=reason)

    def usage(self, chunk: Any) -> None:
        self._emit(type="usage", prompt_tokens=chunk.prompt_tokens, completion_tokens=chunk.completion_tokens,
                   total_tokens=chunk.total_tokens)

    def cost(self, chunk: Any) -> None:
        self._emit(type="cost", input_usd=chunk.input_usd, output_usd=chunk.output_usd, total_usd=chunk.total_usd,
                   provider=chunk.provider)

    def close(self) -> None:
        self._failed_alone()
        self.notices.flush()

    def error(self, fields: Dict[str, Any]) -> None:
        self._failed_alone()
        self._emit(type="error", **fields)

    def note(self, text: str) -> None:
        self.err.write(f"[{text}]\n")
        self.err.flush()

    def _failed_alone(self) -> None:
        if self.failed is not None:
            self._emit(type="failover", provider=self.failed.provider, status=self.failed.status,
                       reason=attempt_reason(self.failed, 1000), next=None)
            self.failed = None

    def _emit(self, **fields: Any) -> None:
        self.out.write(json.dumps(fields, ensure_ascii=False) + "\n")
        self.out.flush()


Output = Union[ChatOutput, JsonChatOutput]


def render_chunk(chunk: Any, output: Output) -> None:
    """Send one completion chunk to the matching ``output`` method (unknown kinds are ignored)."""
    from hf_textgen import Attempt, Cost, FinishReason, ProviderInfo, Reasoning, ToolCalls, Trimmed, Usage

    if isinstance(chunk, str):
        output.text(chunk)
    elif isinstance(chunk, ProviderInfo):
        output.provider_info(chunk.provider, chunk.model, chunk.label)
    elif isinstance(chunk, Attempt):
        output.attempt(chunk)
    elif isinstance(chunk, Trimmed):
        output.trimmed(chunk)
    elif isinstance(chunk, Reasoning):
        output.reasoning(chunk.text)
    elif isinstance(chunk, ToolCalls):
        output.tool_calls(chunk.calls)
    elif isinstance(chunk, FinishReason):
        output.finish(chunk.reason)
    elif isinstance(chunk, Usage):
        output.usage(chunk)
    elif isinstance(chunk, Cost):
        output.cost(chunk)
