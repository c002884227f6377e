"""``hf-textgen chat`` as a conversation: no PROMPT on a terminal, or ``-i``.

Each answer streams as in one-shot use (provider, failover and trimming on stderr); the whole
conversation is sent each turn, and the answer's ``ChatResult.message`` is appended to it.
Ctrl-C while an answer streams closes its connection at once and keeps the session: the partial
answer stays in the conversation (nothing arrived: the question is left out too). A turn that
fails prints its error and leaves the conversation as it was. Ctrl-D or ``/exit`` ends with 0.
Commands are in :mod:`hf_textgen.cli.commands`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional

from . import conversation
from .chat import client_for, completion_options, provider_choice, run_turn
from .exits import EXIT_OK, PROG, TurnInterrupted, UsageError, error_lines
from .lineinput import LineReader
from .notices import Notices
from .output import ChatOutput


class Session:
    """The state of a conversation (model, providers, messages) and its turns."""

    def __init__(self, args: argparse.Namespace, notices: Notices, messages: List[Dict[str, Any]]) -> None:
        from hf_textgen import HuggingFaceAPI

        self.args, self.notices = args, notices
        self.model = HuggingFaceAPI.get_model(args.model or None)
        self.providers: List[str] = list(args.provider or [])
        self.messages = messages
        self.options = completion_options(args)
        self.client = client_for(args)
        self.options.pop("provider", None)  # self.providers, changed by /provider

    # -- one turn

    def ask(self, text: str) -> None:
        """Send ``text`` with the conversation; stream the answer; keep both (see the module doc)."""
        asked = self.messages + [conversation.user(text)]
        output = ChatOutput(sys.stdout, sys.stderr, self.notices, show_reasoning=self.args.show_reasoning,
                            verbose=self.args.verbose, show_cost=self.args.show_cost)
        options = dict(self.options, provider=provider_choice(self.providers))
        try:
            result = run_turn(self.model, asked, options, output, self.client)
        except TurnInterrupted as stop:
            output.error({})
            if stop.partial:
                self.messages = asked + [{"role": "assistant", "content": stop.partial}]
                output.note("stopped; the partial answer stays in the conversation")
            else:
                output.note("stopped before the answer began; your message was left out")
            return
        except BrokenPipeError:  # nobody reads the answers any more: main() ends quietly
            raise
        except Exception as error:  # every provider failed, a bad model id, ...: the session goes on
            if self.args.debug:
                raise
            output.error({})
            self.notices.flush()
            self.tell(*error_lines(error, self.model, verbose=self.args.verbose))
            return
        self.messages = asked + [result.message]

    # -- saying things

    def note(self, text: str) -> None:
        sys.stderr.write(f"[{text}]\n")
        sys.stderr.flush()

    def tell(self, *lines: str) -> None:
        """Plain lines on stderr (errors, help)."""
        sys.stderr.write("".join(line + "\n" for line in lines))
        sys.stderr.flush()

    def describe(self) -> str:
        providers = ", ".join(self.providers) if self.providers else "automatic"
        where = f"at {self.options['api_base']}" if self.options.get("api_base") else f"providers: {providers}"
        return f"model {self.model} ({where})"

    # -- the loop

    def run(self, reader: LineReader, first: Optional[str] = None) -> int:
        from .commands import run_command

        self.note(f"{PROG} chat: {self.describe()}; /help for help, Ctrl-D or /exit to leave")
        if first:
            self.ask(first)
        while True:
            try:
                text = reader.read()
            except KeyboardInterrupt:  # at the prompt: clear the line, keep the session
                sys.stdout.write("\n")
                continue
            if text is None:  # Ctrl-D
                if reader.terminal:
                    sys.stdout.write("\n")
                return EXIT_OK
            if text.startswith("/") and not text.startswith("//"):
                if not run_command(self, text):
                    return EXIT_OK
            elif text.strip():
                try:
                    self.ask(text[1:] if text.startswith("//") else text)
                except KeyboardInterrupt:  # between the answer's end and the next prompt
                    sys.stdout.write("\n")


def run_session(args: argparse.Namespace, notices: Notices) -> int:
    """Hold a conversation on stdin/stdout until Ctrl-D or ``/exit``."""
    if args.json:
        raise UsageError("--json is for one answer: give PROMPT (or pipe stdin) without -i")
    if args.image:
        raise UsageError("--image works with one PROMPT, not in a conversation")
    if sys.stdin is None:
        raise UsageError("no prompt: give PROMPT, or pipe it on stdin (stdin is closed)")
    loaded = conversation.load(args.load) if args.load else []
    messages = conversation.with_system(loaded, args.system or conversation.system_of(loaded))
    session = Session(args, notices, messages)
    if loaded:
        session.note(f"loaded {len(loaded)} messages from {args.load}")
    first = args.prompt if args.prompt not in (None, "-") else None
    with LineReader(sys.stdin) as reader:
        return session.run(reader, first)
