"""``hf-textgen batch IN.jsonl -o OUT.jsonl``, also ``python -m hf_textgen.batch IN.jsonl -o OUT.jsonl``.

The CLI registers it with :func:`add_parser` (its sub-parsers) and calls :func:`run` with the parsed
arguments; :func:`main` is the stand-alone entry point. Standard library only at import: the
library is imported when the command runs.

Progress goes to stderr (a redrawn line on a terminal, a line every 10 s otherwise; ``--quiet``:
none), notes too (a repaired output, error rows to retry); the summary goes to stdout.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Dict, NoReturn, Optional, Sequence, Tuple

__all__ = ["add_parser", "build_parser", "run", "main", "EXIT_CODES", "exit_code"]

PROG = "hf-textgen batch"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AUTH, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 3, 130, 143
EXIT_CODES: Dict[int, str] = {
    EXIT_OK: "every row of this run was answered (or there was nothing left to do)",
    EXIT_FAILED: "some rows failed (error rows written; a rerun retries them), or another error",
    EXIT_USAGE: "usage: bad options, unreadable input, ids missing or repeated, bad rows with --strict, "
                "an output that cannot be resumed or is in use",
    EXIT_AUTH: "authentication: no token found, or the token was refused (401); the run stopped",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGINT): rows in progress cancelled, the output is resumable",
    EXIT_TERMINATED: "terminated (SIGTERM): the same as Ctrl-C",
}
SUMMARY = "answer every row of a JSONL file, resumably, spreading the load over the model's providers"
DESCRIPTION = (
    "Answer every row of IN.jsonl ({\"id\", \"messages\"} or {\"id\", \"prompt\"}, plus any chat parameter) and\n"
    "append one JSON line per finished row to OUT.jsonl, in completion order. Rerun the same command to\n"
    "resume: rows already in OUT are skipped, error rows are retried (--keep-errors keeps them).\n"
    "--shard K/N takes every row whose position (0-based, among non-empty lines) is K modulo N, so N\n"
    "machines share one input; give each its own OUT and concatenate them."
)


class _Parser(argparse.ArgumentParser):
    """Errors in one line that names the option."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):
            message = message[len("argument "):]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _value(kind: str, convert: Any) -> Any:
    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None

    parse.__name__ = kind
    return parse


def _whole(low: int) -> Any:
    def convert(text: str) -> int:
        value = int(text)
        if value < low:
            raise ValueError(text)
        return value

    return _value(f"a whole number >= {low}", convert)


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise ValueError(text)
    return value


def _shard(text: str) -> Tuple[int, int]:
    k, slash, n = text.partition("/")
    shard = (int(k), int(n)) if slash else (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(text)
    return shard


def _epilog() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())


def _arguments(parser: argparse.ArgumentParser, common_default: Any) -> None:
    parser.add_argument("input", metavar="IN.jsonl", help="the rows, one JSON object a line (read twice: a file, not a pipe)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.jsonl", help="where the answers go (appended; resumed)")
    parser.add_argument("-m", "--model", metavar="M", help="model for rows that name none (default: the library's default)")
    parser.add_argument("-c", "--concurrency", type=_whole(1), default=16, metavar="N", help="rows in progress at once (default 16)")
    parser.add_argument("-r", "--retries", type=_whole(0), default=2, metavar="K",
                        help="further rounds for a row that failed on every provider (default 2)")
    parser.add_argument("--retry-backoff", type=_value("a number of seconds >= 0", _seconds), default=1.0, metavar="S",
                        help="wait before a row's first retry, doubling (default 1; at least the server's Retry-After)")
    parser.add_argument("--shard", type=_value("K/N with whole numbers 0 <= K < N, such as 0/4", _shard), metavar="K/N",
                        help="only rows whose position is K modulo N")
    parser.add_argument("--strict", action="store_true", help="refuse the run if any row is bad (default: an error row each)")
    parser.add_argument("--keep-errors", action="store_true", help="error rows already in OUT count as done (default: retried)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr (the summary still prints)")
    parser.add_argument("-v", "--verbose", action="store_true", default=common_default, help="log what the library does on stderr")
    parser.add_argument("--debug", action="store_true", default=common_default, help="show tracebacks instead of one-line errors")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``batch`` to a CLI's sub-parsers (``parser.add_subparsers()``); ``run`` is its function."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "batch", help=SUMMARY, description=DESCRIPTION, epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(parser, argparse.SUPPRESS)  # -v / --debug keep the main parser's value when not given here
    parser.set_defaults(run=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone parser of ``python -m hf_textgen.batch``."""
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(parser, False)
    return parser


def exit_code(summary: Any) -> int:
    """0, 1 (rows failed), 130 (SIGINT) or 143 (SIGTERM) for a finished run's Summary."""
    if summary.stopped:
        return EXIT_TERMINATED if summary.stopped == "SIGTERM" else EXIT_INTERRUPTED
    return EXIT_FAILED if summary.failed else EXIT_OK


def _error_code(error: BaseException) -> int:
    from ..errors import ConfigurationError, MissingAuthError

    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, MissingAuthError):
        return EXIT_AUTH
    return EXIT_USAGE if isinstance(error, ConfigurationError) else EXIT_FAILED


class _Formatter(logging.Formatter):
    """Notes of the batch package as ``hf-textgen batch: note: ...``; the library's log (``-v``) with its level."""

    def format(self, record: logging.LogRecord) -> str:
        batch_note = record.name.startswith("hf_textgen.batch") and record.levelno == logging.WARNING
        kind = "note" if batch_note else record.levelname.lower()
        return f"{PROG}: {kind}: {record.getMessage()}"


def _log_handler(verbose: bool) -> "tuple[logging.Logger, logging.Handler]":
    """Notes on stderr (and with ``verbose`` the library's whole log); remove the handler after."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    logger = logging.getLogger("hf_textgen" if verbose else "hf_textgen.batch")
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if verbose:
        logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, handler


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; print the summary on stdout; return the exit code (:data:`EXIT_CODES`)."""
    from ..errors import redact
    from . import runner
    from .progress import Printer, format_summary

    if args.input == "-":
        sys.stderr.write(f"{PROG}: error: the input must be a file: it is read twice (a first pass checks every row)\n")
        return EXIT_USAGE
    logger, handler = _log_handler(bool(getattr(args, "verbose", False)))
    try:
        summary = runner.run(
            args.input, args.output, model=args.model, concurrency=args.concurrency, retries=args.retries,
            shard=args.shard, strict=args.strict, keep_errors=args.keep_errors, retry_backoff=args.retry_backoff,
            progress=None if args.quiet else Printer(sys.stderr),
        )
    except (Exception, KeyboardInterrupt) as error:
        if getattr(args, "debug", False):
            raise
        text = str(error) if not isinstance(error, KeyboardInterrupt) else "interrupted"
        sys.stderr.write(f"{PROG}: error: {redact(' '.join(text.split()))}\n")
        return _error_code(error)
    finally:
        logger.removeHandler(handler)
    sys.stdout.write(format_summary(summary) + "\n")
    sys.stdout.flush()
    return exit_code(summary)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m hf_textgen.batch``: parse ``argv`` (default ``sys.argv[1:]``), run, return the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    return run(args)
