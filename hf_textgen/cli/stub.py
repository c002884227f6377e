"""``hf-textgen serve-stub``: the offline stand-in (``python -m hf_textgen.testing``) in the foreground.

Its options (``--host``, ``--port``, ``--mapping-shape``, ``-v``) are forwarded, also when given
after ``--``."""
from __future__ import annotations

import argparse
from typing import List

from .notices import Notices
from .parser import Parser, add_stub_options


def stub_argv(args: argparse.Namespace) -> List[str]:
    """The argument list for ``hf_textgen.testing.main``, from the parsed options and those after ``--``."""
    if args.extra:
        extra = Parser(prog="hf-textgen serve-stub", add_help=False)
        add_stub_options(extra)
        extra.add_argument("-v", "--verbose", action="store_true", default=args.verbose)
        args = extra.parse_args(args.extra, namespace=argparse.Namespace(**vars(args)))
    argv: List[str] = []
    for option, value in (("--host", args.host), ("--port", args.port), ("--mapping-shape", args.mapping_shape)):
        if value is not None:
            argv += [option, str(value)]
    return argv + (["-v"] if args.verbose else [])


def cmd_serve_stub(args: argparse.Namespace, notices: Notices) -> int:
    """Serve until Ctrl-C or SIGTERM."""
    try:
        argv = stub_argv(args)
    except SystemExit as refused:  # a bad option after "--": the parser said why
        return int(refused.code or 0)
    from hf_textgen import testing

    return int(testing.main(argv) or 0)
