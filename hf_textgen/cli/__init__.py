"""The ``hf-textgen`` command (also ``python -m hf_textgen``).

Usage::

    hf-textgen chat [PROMPT] [-m MODEL] [-s TEXT] [-p PROVIDER ...] [--image FILE_OR_URL ...]
                    [--max-tokens N] [--temperature T] [--timeout S] [--max-inputs-length N]
                    [--api-base URL] [--no-stream] [--json] [--show-reasoning] [-i] [--load FILE]
    hf-textgen models [--refresh] [--json]
    hf-textgen mapping MODEL [--json]
    hf-textgen serve-stub [--host H] [--port N] [--mapping-shape dict|list]

``chat`` streams the answer to stdout as it arrives; the provider, any failover or trimming go to
stderr. The prompt is read from stdin when PROMPT is ``-``, or absent with stdin piped. With no
PROMPT on a terminal (or ``-i``) it holds a conversation (:mod:`hf_textgen.cli.session`).
``--json`` prints one JSON object per chunk (:mod:`hf_textgen.cli.output`).

Expected failures print one line, ``hf-textgen: error: ...``, on stderr and no traceback
(``--debug`` shows it), and exit with a code of :data:`EXIT_CODES`. Tokens are never printed.
The CLI's modules import only the standard library until a command runs.

Modules: ``app`` (main), ``parser``, ``exits`` (codes, error lines), ``notices`` (library
warnings), ``output`` (human and JSON chat output), ``chat``, ``session`` and ``lineinput``
(the conversation), ``conversation`` (messages, files), ``listing`` (models, mapping), ``stub``.
"""
from .app import main
from .exits import EXIT_CODES, exit_code_for
from .parser import build_parser

__all__ = ["main", "build_parser", "exit_code_for", "EXIT_CODES"]
