"""The ``hf-textgen`` argument parser (standard library only).

Every bad option value is refused in plain words, one line:
``hf-textgen chat: error: --timeout: expected a positive number of seconds, got 'abc' (see ...)``.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Callable, NoReturn, Optional, Sequence

from .exits import EXIT_CODES, EXIT_USAGE, PROG

MAPPING_SHAPES = ("dict", "list")  # as hf_textgen.testing serves them


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line that names the option, not argparse's internals."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):  # "argument --timeout: ..." -> "--timeout: ..."
            message = message[len("argument "):]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


PREFER = ("order", "cheapest", "fastest", "throughput")  # hf_textgen.selection's prefer= values

def _value(kind: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` that refuses with ``expected <kind>, got 'text'``."""

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None

    parse.__name__ = kind  # what argparse would otherwise show
    return parse


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(text)
    return value


def _temperature(text: str) -> float:
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(text)
    return value


def _input_limit(text: str) -> int:
    """``--max-inputs-length``: a length >= 0; ``0`` and ``none`` mean no limit (returned as 0)."""
    if text.strip().lower() == "none":
        return 0
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


positive_int = _value("a positive whole number", _positive_int)
positive_seconds = _value("a positive number of seconds", _positive_seconds)
temperature = _value("a number >= 0", _temperature)
input_limit = _value("a number of characters >= 0, or 'none' (0 and none: no limit)", _input_limit)
port = _value("a port number from 0 to 65535 (0: a free one)", _port)


def _epilog() -> str:
    rows = "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
    return (
        "environment:\n"
        "  HF_TOKEN (or HUGGING_FACE_HUB_TOKEN, or the token file in $HF_HOME)\n"
        "  HF_ENDPOINT            Hub URL (default https://huggingface.co)\n"
        "  HF_TEXTGEN_ROUTER_URL  router URL (default https://router.huggingface.co)\n"
        "  HF_HOME                where the chat history file lives (default ~/.cache/huggingface)\n\n"
        f"exit codes:\n{rows}"
    )


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


def _command(commands: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """A sub-command parser with the shared options and the exit-code epilog."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary[0].upper() + summary[1:] + ".", epilog=_epilog(),
        formatter_class=_formatter,
    )
    _add_common(parser)
    return parser


def _add_chat(commands: Any) -> None:
    chat = _command(commands, "chat", "stream a chat answer to stdout (no PROMPT on a terminal: a conversation)")
    chat.add_argument("prompt", nargs="?", metavar="PROMPT", help="the user message; '-', or absent with stdin piped: read stdin")
    chat.add_argument("-m", "--model", default="", help="Hub model id or alias (default: the library's default)")
    chat.add_argument("-s", "--system", help="a system message")
    chat.add_argument("-i", "--interactive", action="store_true", help="a multi-turn conversation (the default on a terminal without PROMPT)")
    chat.add_argument("--load", metavar="FILE", help="start from a conversation saved with /save (a JSON list of messages)")
    chat.add_argument("--max-tokens", type=positive_int, metavar="N", help="answer length limit")
    chat.add_argument("--temperature", type=temperature, metavar="T", help="sampling temperature")
    chat.add_argument(
        "-p", "--provider", action="append", metavar="NAME",
        help="provider to use; repeat for a failover order (default: the user's order on the Hub)",
    )
    chat.add_argument("--api-base", metavar="URL", help="any OpenAI-compatible server instead of the router")
    chat.add_argument("--image", action="append", metavar="FILE_OR_URL", help="attach an image (repeatable; one-shot only)")
    chat.add_argument("--timeout", type=positive_seconds, metavar="SECONDS", help="network timeout")
    chat.add_argument(
        "--max-inputs-length", type=input_limit, metavar="N",
        help="leave out earlier messages beyond N characters (default 10000; 0 or none: send everything)",
    )
    chat.add_argument("--no-stream", dest="stream", action="store_false", help="ask for one non-streamed answer")
    chat.add_argument("--json", action="store_true", help="one JSON object per chunk on stdout (one-shot only)")
    chat.add_argument("--show-reasoning", action="store_true", help="print the model's reasoning (dimmed, stderr)")
    chat.add_argument(
        "--prefer", choices=PREFER, help="order the model's providers by the router's catalogue, with failover (default: your order)"
    )
    chat.add_argument("--show-cost", action="store_true", help="print what the answer cost (from the router's catalogue) on stderr")


def _add_models(commands: Any) -> None:
    models = _command(commands, "models", "list the chat models")
    models.add_argument("--refresh", action="store_true", help="bypass the cache")
    models.add_argument("--json", action="store_true", help="print a JSON list")
    catalog = models.add_argument_group("from the router's catalogue (each keeps the providers known to qualify)")
    catalog.add_argument("--provider", metavar="NAME", help="served by this provider")
    catalog.add_argument("--tools", action="store_true", help="with tool calling")
    catalog.add_argument("--structured", action="store_true", help="with structured output (JSON)")
    catalog.add_argument("--min-context", type=positive_int, metavar="N", help="a context of at least N tokens")
    catalog.add_argument("--sort", choices=("price", "latency", "throughput"), help="best provider first, models by their best")


def _add_mapping(commands: Any) -> None:
    mapping = _command(commands, "mapping", "show the providers serving a model, in your order")
    mapping.add_argument("model", metavar="MODEL", help="Hub model id or alias")
    mapping.add_argument("--json", action="store_true", help="print the mapping as JSON")


def add_stub_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m hf_textgen.testing``, which ``serve-stub`` forwards."""
    parser.add_argument("--host", metavar="ADDRESS", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=port, metavar="N", help="port (default: a free one)")
    parser.add_argument("--mapping-shape", choices=MAPPING_SHAPES, help="shape of inferenceProviderMapping (default: dict)")


def _add_serve_stub(commands: Any) -> None:
    stub = _command(commands, "serve-stub", "run the offline stand-in of the Hub and router until Ctrl-C")
    add_stub_options(stub)
    stub.add_argument("extra", nargs="*", metavar="-- OPTION", help="the same options after '--' are accepted too")


def build_parser() -> argparse.ArgumentParser:
    """The ``hf-textgen`` argument parser."""
    parser = Parser(
        prog=PROG,
        description="Chat text generation through Hugging Face Inference Providers.",
        epilog=_epilog(),
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    _add_common(parser, default=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from ..batch import command as batch_command  # standard library only until it runs

    for add in (_add_chat, _add_models, _add_mapping, _add_serve_stub, batch_command.add_parser):
        add(commands)
    return parser


def _add_common(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    """``-v`` and ``--debug``, accepted before and after the command (SUPPRESS: keep the main value)."""
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="say more: the library's log, full error messages")
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks instead of one-line errors")


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kw)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Optional[str] = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("hf_textgen")
        except PackageNotFoundError:
            text = "(version unknown)"
        sys.stdout.write(f"{PROG} {text}\n")
        parser.exit()
