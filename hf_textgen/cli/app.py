"""``main()``: parse, run the command, turn every failure into one line and a documented exit code.

Output that nobody reads ends quietly: a broken pipe (``| head``) closes the answer's connection
and exits 141, as a shell reports for git; a closed stdout (``>&-``) is refused before anything
is sent, in one line on stderr, with the same code.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Dict, Optional, Sequence

from .exits import EXIT_INTERRUPTED, EXIT_NO_READER, EXIT_USAGE, PROG, error_fields, error_lines, exit_code_for
from .notices import Notices
from .parser import build_parser

Command = Callable[[argparse.Namespace, Notices], int]


def _commands() -> Dict[str, Command]:
    from .chat import cmd_chat
    from .listing import cmd_mapping, cmd_models
    from ..batch import command as batch_command
    from .stub import cmd_serve_stub

    return {
        "chat": cmd_chat, "models": cmd_models, "mapping": cmd_mapping, "serve-stub": cmd_serve_stub,
        "batch": lambda args, notices: batch_command.run(args),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``hf-textgen`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    if _closed(sys.stdout):
        _say(f"{PROG}: error: standard output is closed, so nothing could be shown; "
             "redirect it to a file or to /dev/null instead of closing it (>&-)\n")
        return EXIT_NO_READER
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _tolerant_stdout()
    try:
        with Notices(sys.stderr, args.verbose) as notices:
            return _run(_commands()[args.command], args, notices)
    except BrokenPipeError:  # the reader went away (| head): the answer's connection is closed by now
        _silence_stdout()
        return EXIT_NO_READER


def _run(command: Command, args: argparse.Namespace, notices: Notices) -> int:
    try:
        return int(command(args, notices))
    except BrokenPipeError:
        raise
    except (Exception, KeyboardInterrupt) as error:
        if args.debug:
            raise
        notices.flush()
        return report(error, args)


def report(error: BaseException, args: Any) -> int:
    """Tell the failure (through the chat output too, for ``--json``); return its exit code."""
    model = getattr(args, "model_id", None)
    output = getattr(args, "output", None)
    if output is not None:
        output.error(error_fields(error, model))
    _say("".join(line + "\n" for line in error_lines(error, model, verbose=getattr(args, "verbose", False))))
    return exit_code_for(error)


def _say(text: str) -> None:
    """Write to stderr, unless it is closed or gone too."""
    if sys.stderr is None:
        return
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _closed(stream: Any) -> bool:
    """Whether a standard stream is missing (its descriptor was closed when Python started)."""
    return stream is None or getattr(stream, "closed", False)


def _tolerant_stdout() -> None:
    """Never fail on a character the terminal's encoding cannot show."""
    reconfigure: Optional[Callable[..., None]] = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")


def _silence_stdout() -> None:
    """Point stdout's descriptor at /dev/null, so the interpreter's last flush cannot fail loudly."""
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests): nothing to flush later
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)
