"""``hf-textgen chat``: one answer (PROMPT, or stdin when piped), or a conversation (no PROMPT on a
terminal, or ``-i``: see :mod:`hf_textgen.cli.session`). Both run each turn with :func:`run_turn`."""
from __future__ import annotations

import argparse
import sys
from typing import IO, Any, Dict, List, Optional, Union

from . import conversation
from .exits import EXIT_OK, TurnInterrupted, UsageError
from .notices import Notices
from .output import ChatOutput, JsonChatOutput, Output, render_chunk


def wants_session(args: argparse.Namespace, stdin: Optional[IO[str]]) -> bool:
    """A conversation with ``-i``, or without PROMPT when stdin is a terminal."""
    return bool(args.interactive) or (args.prompt is None and stdin is not None and stdin.isatty())


def read_prompt(prompt: Optional[str], stdin: Optional[IO[str]]) -> str:
    """The prompt argument, or stdin when it is ``-`` or absent."""
    if prompt is not None and prompt != "-":
        text = prompt
    elif stdin is None:
        raise UsageError("no prompt: give PROMPT, or pipe it on stdin (stdin is closed)")
    else:
        text = stdin.read().rstrip("\r\n")
    if not text.strip():
        raise UsageError("the prompt is empty")
    return text


def completion_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments for ``HuggingFaceAPI.stream`` (all but model and messages) from the options."""
    optional = {
        "api_base": args.api_base,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "timeout": args.timeout,
        "media": args.image,  # URLs, data: URIs or files; the library reads them
        "provider": provider_choice(args.provider),
        "prefer": getattr(args, "prefer", None),
    }
    options = {key: value for key, value in optional.items() if value is not None}
    if args.max_inputs_length is not None:  # 0 (also "none"): send everything
        options["max_inputs_lenght"] = args.max_inputs_length or None
    options["stream"] = args.stream
    return options


def provider_choice(providers: Optional[List[str]]) -> Union[None, str, List[str]]:
    """``--provider`` values as the library takes them: None (automatic), a name, or an order."""
    if not providers:
        return None
    return providers[0] if len(providers) == 1 else list(providers)


def make_output(args: argparse.Namespace, notices: Notices) -> Output:
    if getattr(args, "json", False):
        return JsonChatOutput(sys.stdout, sys.stderr, notices)
    return ChatOutput(sys.stdout, sys.stderr, notices, show_reasoning=args.show_reasoning, verbose=args.verbose,
                      show_cost=args.show_cost)


def client_for(args: argparse.Namespace) -> Any:
    """The library's default client; with ``--show-cost``, one that reads the router's catalogue
    for every call (the prices a ``Cost`` needs)."""
    from hf_textgen import Client, HuggingFaceAPI

    return Client(catalog="always", models=HuggingFaceAPI) if getattr(args, "show_cost", False) else HuggingFaceAPI.client()


def run_turn(model: str, messages: List[Dict[str, Any]], options: Dict[str, Any], output: Output, client: Any = None) -> Any:
    """Stream one answer through ``output`` and return its ``ChatResult``. Ctrl-C closes the
    connection at once and raises :class:`TurnInterrupted` with the text received so far."""
    from hf_textgen import HuggingFaceAPI

    received: List[str] = []
    try:
        with (client or HuggingFaceAPI.client()).stream(model, messages, **options) as stream:
            for chunk in stream:
                if chunk.__class__ is str:
                    received.append(chunk)
                render_chunk(chunk, output)
            result = stream.result()
    except KeyboardInterrupt:
        raise TurnInterrupted("".join(received)) from None
    output.close()
    return result


def cmd_chat(args: argparse.Namespace, notices: Notices) -> int:
    """``hf-textgen chat``."""
    if wants_session(args, sys.stdin):
        from .session import run_session

        return run_session(args, notices)
    prompt = read_prompt(args.prompt, sys.stdin)
    history = conversation.load(args.load) if args.load else []
    messages = conversation.with_system(history, args.system or conversation.system_of(history))
    messages.append(conversation.user(prompt))
    from hf_textgen import HuggingFaceAPI

    model = HuggingFaceAPI.get_model(args.model or (HuggingFaceAPI.default_vision_model if args.image else None))
    args.model_id = model  # main() names it when every provider failed
    args.output = make_output(args, notices)  # and reports a failure through it
    run_turn(model, messages, completion_options(args), args.output, client_for(args))
    return EXIT_OK
