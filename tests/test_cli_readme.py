"""The shell examples proposed for the README's "Command line" section work against the stand-in's
default models (the README is not the CLI's to edit: the block below is the proposed text)."""
from __future__ import annotations

import shlex
from typing import List, Tuple

import pytest

from cli_support import Cli, cli  # noqa: F401
from hf_textgen.testing import StubServer

PROPOSED = """\
$ hf-textgen chat "Hello"                       # streams to stdout; provider and failover on stderr
$ echo "Hello" | hf-textgen chat --json         # one JSON object per chunk, for scripts
$ hf-textgen chat -m deepseek-r1 --show-reasoning "2+2?"
$ hf-textgen chat -m llama-3.3-70b --provider together --provider novita "Hi"   # your failover order
$ hf-textgen chat -m qwen-2.5-vl-7b --image https://huggingface.co/datasets/huggingface/documentation-images/resolve/main/cat.png "What is this?"
$ hf-textgen chat -m qwen-2.5-72b:fastest "Hi"   # the router picks the provider
$ hf-textgen models --refresh
$ hf-textgen models --json
$ hf-textgen mapping meta-llama/Llama-3.3-70B-Instruct --json
"""


def examples() -> List[Tuple[str, List[str]]]:
    """(stdin, hf-textgen arguments) for each ``$`` line: ``echo TEXT | hf-textgen ...`` pipes TEXT."""
    found = []
    for line in PROPOSED.splitlines():
        words = shlex.split(line[2:], comments=True)
        stdin = ""
        if "|" in words:
            left, words = words[: words.index("|")], words[words.index("|") + 1:]
            assert left[0] == "echo"
            stdin = " ".join(left[1:]) + "\n"
        assert words[0] == "hf-textgen"
        found.append((stdin, words[1:]))
    return found


@pytest.mark.parametrize("stdin, argv", examples(), ids=[" ".join(argv) for _, argv in examples()])
def test_readme_example_works_against_the_stand_in(cli: Cli, hf_stub: StubServer, stdin: str, argv: List[str]) -> None:
    done = cli(*argv, stdin=stdin)
    assert done.code == 0, done.err
    assert done.out.strip()
    assert "error" not in done.err and "warning" not in done.err


def test_the_old_example_fails_and_says_why(cli: Cli, hf_stub: StubServer) -> None:
    done = cli("chat", "-m", "deepseek-r1", "--show-reasoning", "--provider", "together", "--provider", "novita", "2+2?")
    assert done.code == 5
    assert "is not served by together, novita; its providers are: fireworks-ai" in done.error_line()
