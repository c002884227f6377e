"""The ``hf-textgen`` command (also ``python -m hf_textgen``).

Usage::

    hf-textgen chat [PROMPT] [--model M] [--system TEXT] [--provider P ...] [--image FILE_OR_URL ...]
                    [--max-tokens N] [--temperature T] [--timeout S] [--api-base URL]
                    [--no-stream] [--json] [--show-reasoning]
    hf-textgen models [--refresh] [--json]
    hf-textgen mapping MODEL [--json]
    hf-textgen serve-stub [--port N] [...]

``chat`` streams the answer to stdout as it arrives; the provider that answered and any failover go
to stderr. The prompt is read from stdin when PROMPT is ``-``, or absent and stdin is not a terminal.
``--json`` prints one JSON object per chunk on stdout (``{"type": "text", "text": ...}``,
``provider``, ``failover``, ``reasoning``, ``tool_calls``, ``finish``, ``usage``, ``error``).

Exit codes::

    0    success
    1    any other error (server error, invalid or cut stream, ...)
    2    usage error: bad arguments, bad model id, unreadable image, empty prompt
    3    authentication: no token found, or the token was refused (401)
    4    payment required (402) - when every provider failed, the last provider's error decides
    5    model not supported: unknown model, or no usable provider for it
    6    timeout
    7    rate limited (429)
    130  interrupted (Ctrl-C)

Expected failures print one line, ``hf-textgen: error: ...``, on stderr and no traceback
(``--debug`` shows it). Tokens are never printed. Only the standard library is imported until a
command runs, so ``hf-textgen --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import closing
from typing import IO, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

__all__ = ["main", "build_parser", "exit_code_for", "EXIT_CODES"]

PROG = "hf-textgen"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_PAYMENT = 4
EXIT_MODEL = 5
EXIT_TIMEOUT = 6
EXIT_RATE_LIMIT = 7
EXIT_INTERRUPTED = 130

EXIT_CODES: Dict[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "any other error (server error, invalid or cut stream, ...)",
    EXIT_USAGE: "usage error: bad arguments, bad model id, unreadable image, empty prompt",
    EXIT_AUTH: "authentication: no token found, or the token was refused (401)",
    EXIT_PAYMENT: "payment required (402); after failover, the last provider's error decides",
    EXIT_MODEL: "model not supported: unknown model, or no usable provider for it",
    EXIT_TIMEOUT: "timeout",
    EXIT_RATE_LIMIT: "rate limited (429)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


class UsageError(Exception):
    """A command-line mistake found after parsing (exit code 2)."""


# ---------------------------------------------------------------------------------------------
# argument parsing (standard library only)


def _epilog() -> str:
    rows = "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
    return (
        "environment:\n"
        "  HF_TOKEN (or HUGGING_FACE_HUB_TOKEN, or the token file in $HF_HOME)\n"
        "  HF_ENDPOINT            Hub URL (default https://huggingface.co)\n"
        "  HF_TEXTGEN_ROUTER_URL  router URL (default https://router.huggingface.co)\n\n"
        f"exit codes:\n{rows}"
    )


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


def _command(commands: Any, name: str, run: Callable[[argparse.Namespace], int], summary: str) -> argparse.ArgumentParser:
    """A sub-command parser with the shared options, the exit-code epilog and its ``run`` function."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary[0].upper() + summary[1:] + ".", epilog=_epilog(),
        formatter_class=_formatter,
    )
    _add_common(parser)
    parser.set_defaults(run=run)
    return parser


def _add_chat(commands: Any) -> None:
    chat = _command(commands, "chat", cmd_chat, "stream a chat answer to stdout; the provider and any failover go to stderr")
    chat.add_argument("prompt", nargs="?", metavar="PROMPT", help="the user message; '-' or absent: read stdin")
    chat.add_argument("-m", "--model", default="", help="Hub model id or alias (default: the library's default)")
    chat.add_argument("-s", "--system", help="a system message")
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N", help="answer length limit")
    chat.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    chat.add_argument(
        "-p", "--provider", action="append", metavar="NAME",
        help="provider to use; repeat for a failover order (default: the user's order on the Hub)",
    )
    chat.add_argument("--api-base", metavar="URL", help="any OpenAI-compatible server instead of the router")
    chat.add_argument("-i", "--image", action="append", metavar="FILE_OR_URL", help="attach an image (repeatable)")
    chat.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="network timeout")
    chat.add_argument("--no-stream", dest="stream", action="store_false", help="ask for one non-streamed answer")
    chat.add_argument("--json", action="store_true", help="one JSON object per chunk on stdout")
    chat.add_argument("--show-reasoning", action="store_true", help="print the model's reasoning (dimmed, stderr)")


def _add_models(commands: Any) -> None:
    models = _command(commands, "models", cmd_models, "list the chat models")
    models.add_argument("--refresh", action="store_true", help="bypass the cache")
    models.add_argument("--json", action="store_true", help="print a JSON list")


def _add_mapping(commands: Any) -> None:
    mapping = _command(commands, "mapping", cmd_mapping, "show the providers serving a model, in your order")
    mapping.add_argument("model", metavar="MODEL", help="Hub model id or alias")
    mapping.add_argument("--json", action="store_true", help="print the mapping as JSON")


def _add_serve_stub(commands: Any) -> None:
    stub = _command(commands, "serve-stub", cmd_serve_stub, "run the offline stand-in of the Hub and router until Ctrl-C")
    stub.add_argument("--port", type=int, metavar="N", help="port on 127.0.0.1 (default: a free one)")
    stub.add_argument("extra", nargs=argparse.REMAINDER, help="further options for hf_textgen.testing")


def build_parser() -> argparse.ArgumentParser:
    """The ``hf-textgen`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Chat text generation through Hugging Face Inference Providers.",
        epilog=_epilog(),
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    _add_common(parser, default=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_chat, _add_models, _add_mapping, _add_serve_stub):
        add(commands)
    return parser


def _add_common(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    """``-v`` and ``--debug``, accepted before and after the command (SUPPRESS: keep the main value)."""
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log what the library does on stderr")
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks instead of one-line errors")


class _VersionAction(argparse.Action):
    """``--version``, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("hf_textgen")
        except PackageNotFoundError:
            text = "(version unknown)"
        sys.stdout.write(f"{PROG} {text}\n")
        parser.exit()


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


# ---------------------------------------------------------------------------------------------
# chat


def read_prompt(prompt: Optional[str], stdin: IO[str]) -> str:
    """The prompt argument, or stdin when it is ``-`` or absent (and stdin is not a terminal)."""
    if prompt is not None and prompt != "-":
        text = prompt
    elif prompt is None and stdin.isatty():
        raise UsageError("no prompt: give PROMPT, or pipe it on stdin")
    else:
        text = stdin.read().rstrip("\r\n")
    if not text.strip():
        raise UsageError("the prompt is empty")
    return text


def build_messages(prompt: str, system: Optional[str]) -> List[Dict[str, str]]:
    """The chat messages: an optional system message, then the user's prompt."""
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": prompt}]


def completion_arguments(args: argparse.Namespace, prompt: str) -> Dict[str, Any]:
    """Keyword arguments for ``HuggingFaceAPI.create_completion`` from the parsed options."""
    optional = {
        "api_base": args.api_base,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "timeout": args.timeout,
        "media": args.image,  # URLs, data: URIs or files; the library reads them
        "provider": _provider_choice(args.provider),
    }
    kwargs = {key: value for key, value in optional.items() if value is not None}
    return dict(model=args.model, messages=build_messages(prompt, args.system), stream=args.stream, **kwargs)


def _provider_choice(providers: Optional[List[str]]) -> Union[None, str, List[str]]:
    if not providers:
        return None
    return providers[0] if len(providers) == 1 else providers


class WarningBuffer(logging.Handler):
    """Collects the library's warnings (logger ``hf_textgen``) so the CLI can word them itself."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> List[logging.LogRecord]:
        """The warnings received since the last call."""
        records, self.records = self.records, []
        return records


def log_text(record: logging.LogRecord) -> str:
    """A log record's message on one line."""
    try:
        return " ".join(record.getMessage().split())
    except Exception:  # a malformed log call must not break the answer
        return str(record.msg)


def failure_reason(attempt: Any, limit: int = 100) -> str:
    """Why a provider failed, short: ``402 <server message>``, from the library's ``Attempt``."""
    from hf_textgen.errors import shorten

    return shorten(f"{attempt.status} {attempt.reason}" if attempt.status else attempt.reason, limit)


class ChatOutput:
    """Writes chat chunks for people: text to stdout, provider notes and reasoning to stderr."""

    def __init__(
        self, out: IO[str], err: IO[str], warnings: WarningBuffer, *, show_reasoning: bool, verbose: bool
    ) -> None:
        self.out, self.err, self.warnings = out, err, warnings
        self.show_reasoning, self.verbose = show_reasoning, verbose
        self.provider: Optional[str] = None
        self.failed: Any = None  # the Attempt to report with the next provider
        self.announced = False
        self.at_line_start = True
        self.reasoning_open = False
        self.dim = err.isatty() and "NO_COLOR" not in os.environ

    # -- the chunk kinds

    def provider_info(self, provider: str, model: str, label: str) -> None:
        print_warnings(self.err, self.warnings.take())
        if self.failed is not None:
            self._note(f"{self.failed.provider} failed: {failure_reason(self.failed)} -> trying {provider}")
            self.failed = None
        self.provider, self.announced = provider, False

    def attempt(self, attempt: Any) -> None:
        self.failed = attempt

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
            self._end_line()
            self._note("the answer was cut at the token limit (--max-tokens)")

    def usage(self, prompt_tokens: int, completion_tokens: int, total_tokens: int) -> None:
        if self.verbose:
            self._note(f"usage: {prompt_tokens} prompt + {completion_tokens} completion = {total_tokens} tokens")

    # -- end of the answer

    def close(self) -> None:
        """Finish the line on stdout and print warnings that came after the last chunk."""
        self._announce()
        self._end_line()
        print_warnings(self.err, self.warnings.take())

    def error(self, message: str, code: int) -> None:
        self._end_line()

    # -- helpers

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

    def __init__(self, out: IO[str], err: IO[str], warnings: WarningBuffer) -> None:
        self.out, self.err, self.warnings = out, err, warnings
        self.provider: Optional[str] = None
        self.failed: Any = None

    def provider_info(self, provider: str, model: str, label: str) -> None:
        print_warnings(self.err, self.warnings.take())
        if self.failed is not None:
            self._emit(type="failover", provider=self.failed.provider, next=provider, reason=failure_reason(self.failed, 1000))
            self.failed = None
        self.provider = provider
        self._emit(type="provider", provider=provider, model=model, label=label)

    def attempt(self, attempt: Any) -> None:
        self.failed = attempt

    def text(self, text: str) -> None:
        self._emit(type="text", text=text)

    def reasoning(self, text: str) -> None:
        self._emit(type="reasoning", text=text)

    def tool_calls(self, calls: List[Dict[str, Any]]) -> None:
        self._emit(type="tool_calls", calls=calls)

    def finish(self, reason: str) -> None:
        self._emit(type="finish", reason=reason)

    def usage(self, prompt_tokens: int, completion_tokens: int, total_tokens: int) -> None:
        self._emit(
            type="usage", prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=total_tokens
        )

    def close(self) -> None:
        print_warnings(self.err, self.warnings.take())

    def error(self, message: str, code: int) -> None:
        self._emit(type="error", message=message, exit_code=code)

    def _emit(self, **fields: Any) -> None:
        self.out.write(json.dumps(fields, ensure_ascii=False) + "\n")
        self.out.flush()



Output = Union[ChatOutput, JsonChatOutput]


def print_warnings(err: IO[str], records: Iterable[logging.LogRecord]) -> None:
    """The library's warnings, one ``hf-textgen: warning: ...`` line each."""
    for record in records:
        err.write(f"{PROG}: warning: {log_text(record)}\n")
    err.flush()


def render_chunk(chunk: Any, output: Output) -> None:
    """Send one completion chunk to the matching ``output`` method."""
    from hf_textgen import Attempt, FinishReason, ProviderInfo, Reasoning, ToolCalls, Usage

    if isinstance(chunk, str):
        output.text(chunk)
    elif isinstance(chunk, Attempt):
        output.attempt(chunk)
    elif isinstance(chunk, ProviderInfo):
        output.provider_info(chunk.provider, chunk.model, chunk.label)
    elif isinstance(chunk, Reasoning):
        output.reasoning(chunk.text)
    elif isinstance(chunk, ToolCalls):
        output.tool_calls(chunk.calls)
    elif isinstance(chunk, FinishReason):
        output.finish(chunk.reason)
    elif isinstance(chunk, Usage):
        output.usage(chunk.prompt_tokens, chunk.completion_tokens, chunk.total_tokens)


def cmd_chat(args: argparse.Namespace) -> int:
    """``hf-textgen chat``: stream one answer."""
    prompt = read_prompt(args.prompt, sys.stdin)
    kwargs = completion_arguments(args, prompt)
    from hf_textgen import HuggingFaceAPI

    warnings = _capture_warnings()
    output: Output = (
        JsonChatOutput(sys.stdout, sys.stderr, warnings)
        if args.json
        else ChatOutput(sys.stdout, sys.stderr, warnings, show_reasoning=args.show_reasoning, verbose=args.verbose)
    )
    args.output = output  # main() reports a failure through it
    with closing(HuggingFaceAPI.create_completion(**kwargs)) as chunks:
        for chunk in chunks:
            render_chunk(chunk, output)
    output.close()
    return EXIT_OK


def _capture_warnings() -> WarningBuffer:
    buffer = WarningBuffer()
    logger = logging.getLogger("hf_textgen")
    logger.addHandler(buffer)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    return buffer


# ---------------------------------------------------------------------------------------------
# models, mapping, serve-stub


def cmd_models(args: argparse.Namespace) -> int:
    """``hf-textgen models``: the chat models, one per line."""
    from hf_textgen import HuggingFaceAPI

    models = HuggingFaceAPI.get_models(refresh=args.refresh)
    _write(json.dumps(models, indent=2) if args.json else "\n".join(models))
    return EXIT_OK


def cmd_mapping(args: argparse.Namespace) -> int:
    """``hf-textgen mapping MODEL``: the providers of one model, in the user's order."""
    from hf_textgen import HuggingFaceAPI

    model = HuggingFaceAPI.get_model(args.model)
    mapping = HuggingFaceAPI.get_mapping_sync(model)
    if args.json:
        _write(json.dumps(mapping, indent=2, ensure_ascii=False))
    else:
        _write(format_mapping(mapping))
    if not mapping:
        sys.stderr.write(f"{PROG}: no inference provider serves {model}\n")
    return EXIT_OK


MAPPING_COLUMNS = (("PROVIDER", None), ("STATUS", "status"), ("TASK", "task"), ("PROVIDER ID", "providerId"))


def format_mapping(mapping: Dict[str, Dict[str, Any]]) -> str:
    """The mapping as an aligned text table: provider, status, task, providerId."""
    rows = [[title for title, _ in MAPPING_COLUMNS]]
    for provider, entry in mapping.items():
        rows.append([provider] + [str(entry.get(key) or "-") for _, key in MAPPING_COLUMNS[1:]])
    widths = [max(len(row[column]) for row in rows) for column in range(len(MAPPING_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def cmd_serve_stub(args: argparse.Namespace) -> int:
    """``hf-textgen serve-stub``: run the stand-in in the foreground."""
    from hf_textgen import testing

    argv = (["--port", str(args.port)] if args.port is not None else []) + (["-v"] if args.verbose else [])
    argv += list(args.extra)
    return int(testing.main(argv) or 0)


def _write(text: str) -> None:
    sys.stdout.write(text + "\n" if text else "")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# errors and the entry point


def exit_code_for(error: BaseException) -> int:
    """The documented exit code for an exception (see the module docstring)."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, UsageError):
        return EXIT_USAGE
    from hf_textgen import errors

    table: Tuple[Tuple[Any, int], ...] = (
        (errors.MissingAuthError, EXIT_AUTH),
        (errors.PaymentRequiredError, EXIT_PAYMENT),
        (errors.RateLimitError, EXIT_RATE_LIMIT),
        (TimeoutError, EXIT_TIMEOUT),
        (errors.ModelNotSupportedError, EXIT_MODEL),
        (errors.ConfigurationError, EXIT_USAGE),
    )
    return next((code for kind, code in table if isinstance(error, kind)), EXIT_ERROR)


def error_message(error: BaseException) -> str:
    """One line describing ``error``, with anything token-like removed."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    text = str(error) or type(error).__name__
    if not _is_expected(error):
        text = f"{type(error).__name__}: {text}"
    from hf_textgen.errors import redact

    return redact(" ".join(text.split()))


def _is_expected(error: BaseException) -> bool:
    from hf_textgen.errors import HFTextGenError

    return isinstance(error, (HFTextGenError, UsageError, TimeoutError))


def _report(error: BaseException, args: Optional[argparse.Namespace]) -> int:
    code = exit_code_for(error)
    message = error_message(error)
    output = getattr(args, "output", None)
    if output is not None:
        output.error(message, code)
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    return code


def _configure_logging(verbose: bool) -> None:
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
        handler.addFilter(lambda record: record.levelno < logging.WARNING)  # chat words warnings itself
        logger = logging.getLogger("hf_textgen")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


def _tolerant_stdout() -> None:
    """Never fail on a character the terminal's encoding cannot show."""
    reconfigure: Optional[Callable[..., None]] = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args))
    except BrokenPipeError:
        raise
    except (Exception, KeyboardInterrupt) as error:
        if args.debug:
            raise
        return _report(error, args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``hf-textgen`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose)
    _tolerant_stdout()
    try:
        return _run(args)
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
