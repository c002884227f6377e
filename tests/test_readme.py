"""Every example in README.md runs here, against the offline stand-in, so the README cannot drift.

- ```python blocks run as they are, each in a fresh namespace and in a fresh working directory,
  with ``HF_ENDPOINT``, ``HF_TEXTGEN_ROUTER_URL`` and ``HF_TOKEN`` pointing at a ``StubServer`` of
  the default models; a ``test_*`` function a block defines is called too (with a ``monkeypatch``).
- ```console blocks: every ``$ `` line runs in bash with that environment and must exit 0; the
  setup lines ``export ...`` (the environment is given) and ``make ...`` (CI runs those targets
  itself) are the only ones not run. The folder holds ``cat.png`` and a 20-row ``prompts.jsonl``. A command whose comment says ``until Ctrl-C`` must print a
  line, then stop with exit code 0 on SIGINT.
- A ```text block right after ``<!-- output of: COMMAND -->`` must equal what COMMAND prints, with
  the stand-in's port written as ``PORT``.
"""
from __future__ import annotations

import inspect
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from hf_textgen import clear_caches
from hf_textgen.testing import StubServer, default_models

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
OUTPUT_OF = re.compile(r"<!-- output of: (.+?) -->\s*\n```text\n(.*?)^```", re.MULTILINE | re.DOTALL)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def blocks(language: str) -> List[Tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == language]


def commands() -> List[Tuple[int, str, bool]]:
    """(line, command, runs until Ctrl-C) of each ``$ `` line to run."""
    found = []
    for line, block in blocks("console"):
        for offset, text in enumerate(block.splitlines()):
            if text.startswith("$ "):
                command, _, comment = text[2:].partition("  #")  # an aligned comment is no part of it
                if not command.startswith(("export ", "make ")):
                    found.append((line + 1 + offset, command.strip(), "until Ctrl-C" in comment))
    return found


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    """The stand-in with the default models (no delays); its environment; an empty folder with an image."""
    with StubServer(default_models(delay=0.0)) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
        monkeypatch.chdir(tmp_path)
        (tmp_path / "cat.png").write_bytes(PNG)
        (tmp_path / "prompts.jsonl").write_text("".join(f'{{"id": "q{n}", "prompt": "Question {n}?"}}\n' for n in range(20)))
        (tmp_path / ".venv").symlink_to(sys.prefix)  # the README's ".venv/bin/hf-textgen" is this environment's
        clear_caches()
        yield server
    clear_caches()


def shell_env() -> Dict[str, str]:
    """This environment, with this Python's scripts (hf-textgen) first on PATH."""
    return {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


@pytest.mark.parametrize("line, source", blocks("python"), ids=lambda v: f"line {v}" if isinstance(v, int) else "")
def test_python_examples_run(stub: StubServer, monkeypatch: pytest.MonkeyPatch, line: int, source: str) -> None:
    namespace: Dict[str, Any] = {"__name__": f"readme_line_{line}"}
    exec(compile(source, f"README.md:{line}", "exec"), namespace)
    for name, function in list(namespace.items()):
        if name.startswith("test_") and callable(function):
            arguments = {"monkeypatch": monkeypatch} if "monkeypatch" in inspect.signature(function).parameters else {}
            function(**arguments)


@pytest.mark.parametrize("line, command, interrupted", commands(), ids=lambda v: f"line {v}" if isinstance(v, int) and not isinstance(v, bool) else "")
def test_shell_examples_run(stub: StubServer, line: int, command: str, interrupted: bool) -> None:
    if interrupted:
        with subprocess.Popen(["bash", "-c", f"exec {command}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=shell_env(), stdin=subprocess.DEVNULL) as process:
            try:
                first = process.stdout.readline()  # type: ignore[union-attr]
                process.send_signal(signal.SIGINT)
                code = process.wait(30)
            finally:
                process.kill()
        assert first and code == 0, f"README.md:{line}: {command} printed {first!r}, exit {code}"
        return
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=shell_env(), timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"README.md:{line}: {command}\n{done.stdout}\n{done.stderr}"


def test_shown_output_is_what_the_command_prints(stub: StubServer) -> None:
    text = README.read_text(encoding="utf-8")
    shown = OUTPUT_OF.findall(text)
    assert shown, "the README shows no command output to check"
    for command, expected in shown:
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=shell_env(), timeout=120, stdin=subprocess.DEVNULL)
        printed = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", done.stdout)
        assert printed == expected, f"{command} printed:\n{printed}"


def test_the_exit_code_table_is_the_codes() -> None:
    from hf_textgen.cli import EXIT_CODES

    text = README.read_text(encoding="utf-8")
    table = text[text.index("| code | meaning |"):].split("\n\n", 1)[0].splitlines()[2:]
    rows = {int(row.split("|")[1]): row.split("|", 2)[2].rsplit("|", 1)[0].strip() for row in table}
    assert set(rows) == set(EXIT_CODES)
    for code, meaning in EXIT_CODES.items():  # the README may add markup and an explanation
        plain = rows[code].replace("`", "").replace("\\|", "|")
        assert plain.startswith(meaning.split(" (")[0]), (code, rows[code], meaning)
