"""``make demo``: see hf-textgen stream an answer and fail over, offline, with no token.

It starts the stand-in Hub + router of :mod:`hf_textgen.testing` on a free loopback port (its default
configuration: ``meta-llama/Llama-3.3-70B-Instruct`` is served by novita, which answers 402, then by
together, which streams), runs ``hf-textgen chat`` and ``hf-textgen mapping`` against it as a user
would, and stops the server. The exit code is the chat's.

Run it with ``python -m hf_textgen.demo``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, List, Mapping

__all__ = ["main"]

MODEL = "meta-llama/Llama-3.3-70B-Instruct"
PROMPT = "Hello! Who are you?"


def say(text: str = "") -> None:
    """An explanatory line of the demo (flushed, so it stays in order with the commands' output)."""
    print(text, flush=True)


def child_env(stub_env: Mapping[str, str]) -> Dict[str, str]:
    """This process's environment, pointed at the stand-in (HF_ENDPOINT, HF_TEXTGEN_ROUTER_URL, a fake HF_TOKEN)."""
    env = dict(os.environ)
    env.pop("HUGGING_FACE_HUB_TOKEN", None)
    env.update(stub_env)
    return env


def run_command(args: List[str], env: Mapping[str, str]) -> int:
    """Show ``hf-textgen ARGS`` as typed, run it with this Python, its output going to the terminal."""
    say("$ hf-textgen " + " ".join(_quote(arg) for arg in args))
    return subprocess.call([sys.executable, "-m", "hf_textgen", *args], env=dict(env), timeout=60)


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def run_demo(url: str, stub_env: Mapping[str, str]) -> int:
    """The demo's steps against a running stand-in; returns the chat's exit code."""
    env = child_env(stub_env)
    say(f"The stand-in Hub and router listen on {url} (offline; a fake hf_ token is enough).")
    say(f"{MODEL} is served there by novita (answers 402: no credits) and then by together.")
    say("The answer streams to stdout; the provider and the failover are reported on stderr.")
    say()
    code = run_command(["chat", "--model", MODEL, PROMPT], env)
    say()
    say("The providers the Hub lists for that model, in the user's preferred order, with the router's catalogue:")
    say()
    run_command(["mapping", MODEL], env)
    say()
    say("Against the real router, with a token from https://huggingface.co/settings/tokens:")
    say('  export HF_TOKEN=hf_...   then   hf-textgen chat "Hello!"')
    say("or `hf-textgen chat` alone on a terminal for a conversation (/help lists its commands).")
    return code


def main() -> int:
    """Start the stand-in, run the demo, always stop the stand-in."""
    from hf_textgen.testing import StubServer

    say("Starting the offline stand-in of the Hugging Face Hub and router...")
    with StubServer() as server:
        return run_demo(server.url, server.env())


if __name__ == "__main__":
    raise SystemExit(main())
