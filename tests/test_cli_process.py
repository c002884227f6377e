"""What only a real process shows: the entry points, the import cost of ``--help``, a broken pipe,
a closed stdout, Ctrl-C, ``serve-stub`` in the foreground, and the demo."""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from cli_support import LLAMA, MODELS, TOKEN, WAIT, process_env, run_process
from hf_textgen.testing import Provider, StubServer, default_models

CLI_PACKAGE = Path(__file__).resolve().parent.parent / "hf_textgen" / "cli"


def _stdlib_names() -> frozenset:
    names = getattr(sys, "stdlib_module_names", None)  # Python 3.10+
    if names is not None:
        return frozenset(names)
    import sysconfig  # Python 3.9: what the standard library directory holds

    folder = Path(sysconfig.get_paths()["stdlib"])
    found = {path.name.split(".")[0] for path in folder.iterdir()} | {path.name.split(".")[0] for path in (folder / "lib-dynload").iterdir()}
    return frozenset(found | set(sys.builtin_module_names))


STDLIB = _stdlib_names()
LONG_SLOW = "org/long-slow"


@pytest.fixture(scope="module")
def server() -> Iterator[StubServer]:
    models: Dict[str, List[Provider]] = {**default_models(delay=0.0), **MODELS}
    models[LONG_SLOW] = [Provider("together", text=" ".join(f"word{i}" for i in range(400)), delay=0.05)]
    with StubServer(models) as stub:
        yield stub


def chat_posts(server: StubServer) -> int:
    return sum(1 for r in server.requests if r.method == "POST")


# --------------------------------------------------------------------------------------- entry points


def test_the_console_script_runs(server: StubServer) -> None:
    script = Path(sys.executable).with_name("hf-textgen")
    assert script.exists(), "install the project (make install) to get the hf-textgen script"
    done = subprocess.run([str(script), "chat", "-m", "org/ok", "hi"], env=process_env(server), capture_output=True,
                          text=True, timeout=WAIT, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout, done.stderr) == (0, "Hello there, friend!\n", "[provider: together]\n")


def test_python_dash_m_runs_a_failover(server: StubServer) -> None:
    done = run_process(["chat", "-m", LLAMA, "hi"], process_env(server))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Hello! I am Llama")
    assert done.stderr.splitlines()[0].startswith("[novita failed: 402 ")


def loaded_modules(code: str) -> List[str]:
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=WAIT,
                          env=process_env())
    return json.loads(done.stdout.splitlines()[-1])


def test_help_loads_nothing_beyond_the_package_and_the_standard_library() -> None:
    report = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    package = set(loaded_modules(f"import hf_textgen; {report}"))
    helped = loaded_modules(
        "import sys; sys.argv = ['hf-textgen', '--help']\n"
        "from hf_textgen.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"{report}"
    )
    parsers = {"hf_textgen.batch", "hf_textgen.batch.command"}  # batch's parser: standard library only too
    extra = {name for name in set(helped) - package - parsers if not name.startswith("hf_textgen.cli")}
    third_party = {name for name in extra if name.split(".")[0] not in STDLIB}
    assert third_party == set(), sorted(third_party)
    assert not {"hf_textgen.testing", "hf_textgen.aio", "anyio", "readline", "requests"} & set(helped)


def test_cli_modules_import_only_the_standard_library_at_the_top() -> None:
    for path in sorted(CLI_PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: commands import the library when they run
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [] if node.level else [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in STDLIB or name == "__future__", f"{path.name} imports {name}"


# --------------------------------------------------------------------------------------- output nobody reads


def test_broken_pipe_is_quiet_exits_141_and_closes_the_stream(server: StubServer) -> None:
    command = [sys.executable, "-m", "hf_textgen", "chat", "-m", LONG_SLOW, "hi"]
    with subprocess.Popen(command, env=process_env(server), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.read(10)  # what `| head -c 10` reads, then it leaves
        process.stdout.close()
        code = process.wait(timeout=WAIT)  # 400 words 0.05 s apart: only a closed stream ends it this early
        stderr = process.stderr.read().decode()
    assert first == b"word0 word"
    assert code == 141
    assert stderr == "[provider: together]\n"  # no traceback, no "Exception ignored", no error line


def test_broken_pipe_in_a_shell_pipeline(server: StubServer) -> None:
    script = f'"$0" -m hf_textgen chat -m {LONG_SLOW} hi | head -c 10; echo " status=${{PIPESTATUS[0]}}"'
    done = subprocess.run(["bash", "-c", script, sys.executable], env=process_env(server), capture_output=True,
                          text=True, timeout=WAIT, stdin=subprocess.DEVNULL)
    assert done.stdout == "word0 word status=141\n"  # what the shell reports for git in the same place
    assert done.stderr == "[provider: together]\n"


def test_closed_stdout_is_refused_before_anything_is_sent(server: StubServer) -> None:
    before = chat_posts(server)
    done = subprocess.run(["bash", "-c", '"$0" -m hf_textgen chat -m org/ok hi >&-', sys.executable],
                          env=process_env(server), capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL)
    assert done.returncode == 141
    assert done.stderr == ("hf-textgen: error: standard output is closed, so nothing could be shown; "
                           "redirect it to a file or to /dev/null instead of closing it (>&-)\n")
    assert chat_posts(server) == before


# --------------------------------------------------------------------------------------- Ctrl-C, serve-stub


def test_ctrl_c_exits_130_without_traceback(server: StubServer) -> None:
    command = [sys.executable, "-m", "hf_textgen", "chat", "-m", "org/slow-words", "hi"]
    with subprocess.Popen(command, env=process_env(server), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        first = os.read(process.stdout.fileno(), 100)  # streaming has started: the first word, alone
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=WAIT)
    assert first == b"one"
    assert process.returncode == 130
    errors = [line for line in stderr.splitlines() if line.startswith("hf-textgen: error: ")]
    assert errors == ["hf-textgen: error: interrupted"] and "Traceback" not in stderr


def test_serve_stub_forwards_the_mapping_shape_and_serves_until_terminated() -> None:
    command = [sys.executable, "-m", "hf_textgen", "serve-stub", "--port", "0", "--mapping-shape", "list"]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=process_env()) as process:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = banner.split("serving on ", 1)[1].split()[0]
        with urllib.request.urlopen(f"{url}/api/models/{LLAMA}", timeout=WAIT) as answer:
            info = json.load(answer)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=WAIT)
    assert info["id"] == LLAMA
    assert [entry["provider"] for entry in info["inferenceProviderMapping"]] == ["novita", "together"]  # list shape
    assert process.returncode == 0


@pytest.mark.slow
def test_demo_shows_a_streamed_answer_and_a_failover() -> None:
    done = subprocess.run([sys.executable, "-m", "hf_textgen.demo"], env=process_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=WAIT * 2)
    assert done.returncode == 0, done.stderr
    assert "$ hf-textgen chat" in done.stdout and "Hello! I am Llama" in done.stdout
    assert "[novita failed: 402" in done.stderr and "[provider: together]" in done.stderr
    assert "PROVIDER" in done.stdout and "together" in done.stdout
    assert TOKEN not in done.stdout + done.stderr
