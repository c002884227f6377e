"""The ``hf-textgen`` command, driven as a subprocess against the offline stand-in (hf_textgen.testing).

Every run goes through :func:`run_cli`, which also checks that the token never reaches the output.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any, Dict, Iterator, List, Optional

import pytest

from hf_textgen.testing import Provider, StubServer, default_models

TOKEN = "hf_cliTestSecret0123456789"
LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
TIMEOUT = 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def stub_models() -> Dict[str, List[Provider]]:
    models = default_models(delay=0.0)
    models.update({
        "org/ok": [Provider("together", text="Hello there, friend!")],
        "org/slow-words": [Provider("together", text="one two three", delay=0.5)],
        "org/all-402": [Provider("novita", error_status=402), Provider("together", error_status=402)],
        "org/401": [Provider("together", error_status=401)],
        "org/429": [Provider("together", error_status=429)],
        "org/500": [Provider("together", error_status=500, error_body="html")],
        "org/stalls": [Provider("together", delay=10.0)],
        "org/cut": [Provider("together", cut_after=1)],
        "org/echoes-token": [Provider("together", error_status=500, error_message=f"bad key Bearer {TOKEN} ({TOKEN})")],
        "org/thinks": [Provider("fireworks-ai", reasoning="Let me think.", text="42")],
        "org/no-live": [Provider("nebius", status="error")],
    })
    return models


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with StubServer(stub_models(), token=TOKEN) as server:
        yield server


def cli_env(stub: StubServer, **overrides: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")}
    env.update(stub.env(TOKEN), NO_COLOR="1")
    env.update(overrides)
    return env


def run_cli(stub: StubServer, *args: str, input: Optional[str] = "", **env: str) -> "subprocess.CompletedProcess[str]":
    """``python -m hf_textgen ARGS`` against the stub; asserts the token appears nowhere in the output."""
    done = subprocess.run(
        [sys.executable, "-m", "hf_textgen", *args],
        env=cli_env(stub, **env), input=input, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert TOKEN not in done.stdout + done.stderr
    return done


def last_post(stub: StubServer) -> Any:
    return [request for request in stub.requests if request.method == "POST"][-1]


def assert_one_error_line(stderr: str, fragment: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("hf-textgen: error: ")]
    assert len(errors) == 1, stderr
    assert fragment.lower() in errors[0].lower(), stderr
    assert "Traceback" not in stderr


# --------------------------------------------------------------------------------------- help


def test_help_documents_the_exit_codes(stub: StubServer) -> None:
    done = run_cli(stub, "--help")
    assert done.returncode == 0
    for line in ("0    success", "3    authentication", "4    payment required", "6    timeout", "130  interrupted"):
        assert line in done.stdout
    assert "chat" in done.stdout and "serve-stub" in done.stdout


def test_no_command_is_a_usage_error(stub: StubServer) -> None:
    done = run_cli(stub)
    assert done.returncode == 2
    assert "usage: hf-textgen" in done.stderr


def test_unknown_option_is_a_usage_error(stub: StubServer) -> None:
    assert run_cli(stub, "chat", "--no-such-option", "hi").returncode == 2


def test_version(stub: StubServer) -> None:
    done = run_cli(stub, "--version")
    assert done.returncode == 0
    assert done.stdout.startswith("hf-textgen ")


# --------------------------------------------------------------------------------------- chat


def test_chat_streams_the_answer_and_names_the_provider(stub: StubServer) -> None:
    done = run_cli(stub, "chat", "--model", "org/ok", "Say hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello there, friend!\n"
    assert done.stderr == "[provider: together]\n"
    assert last_post(stub).body["messages"] == [{"role": "user", "content": "Say hi"}]


def test_chat_writes_each_delta_as_it_arrives(stub: StubServer) -> None:
    command = [sys.executable, "-m", "hf_textgen", "chat", "-m", "org/slow-words", "hi"]
    with subprocess.Popen(command, env=cli_env(stub), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        first = os.read(process.stdout.fileno(), 100)
        still_running = process.poll() is None
        rest, _ = process.communicate(timeout=TIMEOUT)
    assert first == b"one"
    assert still_running
    assert first + rest == b"one two three\n"


def test_chat_options_reach_the_request(stub: StubServer) -> None:
    done = run_cli(stub, "chat", "-m", "org/ok", "--system", "Be brief.", "--max-tokens", "7",
                   "--temperature", "0.5", "--no-stream", "Hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello there, friend!\n"
    body = last_post(stub).body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (body["max_tokens"], body["temperature"], body.get("stream", False)) == (7, 0.5, False)


@pytest.mark.parametrize("args", [["-"], []], ids=["dash", "absent"])
def test_chat_reads_the_prompt_from_stdin(stub: StubServer, args: List[str]) -> None:
    done = run_cli(stub, "chat", "-m", "org/ok", *args, input="What is 2+2?\n")
    assert done.returncode == 0, done.stderr
    assert last_post(stub).body["messages"][-1]["content"] == "What is 2+2?"


def test_chat_json_prints_one_object_per_chunk(stub: StubServer) -> None:
    done = run_cli(stub, "chat", "--json", "-m", "org/ok", "hi")
    assert done.returncode == 0, done.stderr
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    assert objects[0] == {"type": "provider", "provider": "together", "model": "org/ok",
                          "label": "HuggingFace (together)"}
    assert "".join(o["text"] for o in objects if o["type"] == "text") == "Hello there, friend!"
    assert {"type": "finish", "reason": "stop"} in objects
    assert [o for o in objects if o["type"] == "usage"][0]["total_tokens"] > 0
    assert done.stderr == ""


def test_failover_is_reported_on_stderr(stub: StubServer) -> None:
    done = run_cli(stub, "chat", "-m", LLAMA, "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Hello! I am Llama")
    failover, provider = done.stderr.splitlines()
    assert failover.startswith("[novita failed: 402 ") and failover.endswith(" -> trying together]")
    assert provider == "[provider: together]"


def test_failover_in_json(stub: StubServer) -> None:
    done = run_cli(stub, "chat", "--json", "-m", LLAMA, "hi")
    kinds = [json.loads(line) for line in done.stdout.splitlines()][:3]
    assert [o["type"] for o in kinds] == ["provider", "failover", "provider"]
    assert (kinds[1]["provider"], kinds[1]["next"]) == ("novita", "together")
    assert kinds[1]["reason"].startswith("402 ")


def test_explicit_provider_skips_the_others(stub: StubServer) -> None:
    stub.clear_requests()
    done = run_cli(stub, "chat", "-m", LLAMA, "--provider", "together", "hi")
    assert done.returncode == 0, done.stderr
    assert [r.path for r in stub.requests if r.method == "POST"] == ["/together/v1/chat/completions"]


def test_show_reasoning(stub: StubServer) -> None:
    hidden = run_cli(stub, "chat", "-m", "org/thinks", "hi")
    shown = run_cli(stub, "chat", "-m", "org/thinks", "--show-reasoning", "hi")
    assert hidden.stdout == shown.stdout == "42\n"
    assert "Let me think." not in hidden.stderr
    assert "Let me think.\n" in shown.stderr


def test_image_file_is_sent_as_a_data_url(stub: StubServer, tmp_path: Any) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(PNG)
    done = run_cli(stub, "chat", "-m", "org/ok", "--image", str(image), "--image", "https://example.com/a.jpg", "What?")
    assert done.returncode == 0, done.stderr
    parts = last_post(stub).body["messages"][-1]["content"]
    urls = [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]
    assert urls[0].startswith("data:image/png;base64,") and urls[1] == "https://example.com/a.jpg"


def test_api_base_talks_to_any_openai_server(stub: StubServer) -> None:
    provider_id = stub.provider("org/ok", "together").provider_id
    done = run_cli(stub, "chat", "--api-base", f"{stub.url}/together/v1", "-m", provider_id, "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello there, friend!\n"
    assert last_post(stub).path == "/together/v1/chat/completions"


# ------------------------------------------------------------------------------ expected failures

FAILURES = [
    # id, arguments, exit code, a fragment of the one error line
    ("402-everywhere", ["-m", "org/all-402"], 4, "402"),
    ("401", ["-m", "org/401"], 3, "401"),
    ("429", ["-m", "org/429"], 7, "429"),
    ("unknown-model", ["-m", "org/does-not-exist"], 5, "not found"),
    ("no-live-provider", ["-m", "org/no-live"], 5, "no live conversational provider"),
    ("timeout", ["-m", "org/stalls", "--timeout", "0.5"], 6, "0.5 s"),
    ("bad-model-id", ["-m", "../x"], 2, "invalid model id"),
    ("missing-image", ["-m", "org/ok", "--image", "/no/such/image.png"], 2, "image.png"),
    ("server-error", ["-m", "org/500"], 1, "500"),
    ("stream-cut", ["-m", "org/cut"], 1, "cut"),
    ("server-echoes-token", ["-m", "org/echoes-token"], 1, "bad key"),
]


@pytest.mark.parametrize("args, code, fragment", [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_expected_failure(stub: StubServer, args: List[str], code: int, fragment: str) -> None:
    done = run_cli(stub, "chat", *args, "hi")
    assert done.returncode == code, done.stderr
    assert_one_error_line(done.stderr, fragment)


def test_no_token(stub: StubServer, tmp_path: Any) -> None:
    stub.clear_requests()
    done = run_cli(stub, "chat", "-m", "org/ok", "hi", HF_TOKEN="", HF_HOME=str(tmp_path))
    assert done.returncode == 3
    assert_one_error_line(done.stderr, "token")
    assert stub.requests == []  # nothing was sent


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_is_a_usage_error(stub: StubServer, prompt: str) -> None:
    done = run_cli(stub, "chat", "-m", "org/ok", prompt)
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "prompt is empty")


def test_failure_in_json_mode_is_also_a_json_object(stub: StubServer) -> None:
    done = run_cli(stub, "chat", "--json", "-m", "org/does-not-exist", "hi")
    assert done.returncode == 5
    error = json.loads(done.stdout.splitlines()[-1])
    assert error["type"] == "error" and error["exit_code"] == 5
    assert_one_error_line(done.stderr, "not found")


def test_partial_answer_then_error_ends_the_line(stub: StubServer) -> None:
    done = run_cli(stub, "chat", "-m", "org/cut", "hi")
    assert done.stdout.endswith("\n")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_exits_130_without_traceback(stub: StubServer) -> None:
    command = [sys.executable, "-m", "hf_textgen", "chat", "-m", "org/slow-words", "hi"]
    with subprocess.Popen(command, env=cli_env(stub), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        os.read(process.stdout.fileno(), 100)  # streaming has started
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130
    assert_one_error_line(stderr, "interrupted")


# ------------------------------------------------------------------------------ models and mapping


def test_models(stub: StubServer) -> None:
    done = run_cli(stub, "models")
    assert done.returncode == 0, done.stderr
    listed = done.stdout.splitlines()
    assert LLAMA in listed and "org/ok" in listed
    assert "org/no-live" not in listed


def test_models_json(stub: StubServer) -> None:
    done = run_cli(stub, "models", "--json", "--refresh")
    assert done.returncode == 0, done.stderr
    models = json.loads(done.stdout)
    assert isinstance(models, list) and LLAMA in models


def test_mapping_table(stub: StubServer) -> None:
    done = run_cli(stub, "mapping", LLAMA)
    assert done.returncode == 0, done.stderr
    header, novita, together = done.stdout.splitlines()
    assert header.split() == ["PROVIDER", "STATUS", "TASK", "PROVIDER", "ID"]
    assert novita.split() == ["novita", "live", "conversational", "meta-llama/llama-3.3-70b-instruct"]
    assert together.split()[0] == "together"


def test_mapping_json(stub: StubServer) -> None:
    done = run_cli(stub, "mapping", "--json", "org/no-live")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "nebius": {"providerId": "nebius/no-live", "status": "error", "task": "conversational"}
    }


def test_mapping_of_an_unknown_model(stub: StubServer) -> None:
    done = run_cli(stub, "mapping", "org/does-not-exist")
    assert done.returncode == 5
    assert_one_error_line(done.stderr, "not found")


# ------------------------------------------------------------------------------ serve-stub, demo


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_serve_stub_serves_until_terminated() -> None:
    command = [sys.executable, "-m", "hf_textgen", "serve-stub", "--port", "0"]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = banner.split("serving on ", 1)[1].split()[0]
        with urllib.request.urlopen(f"{url}/api/models/{LLAMA}", timeout=TIMEOUT) as answer:
            info = json.load(answer)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT)
    assert info["id"] == LLAMA
    assert process.returncode == 0


@pytest.mark.slow
def test_demo_shows_a_streamed_answer_and_a_failover() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "hf_textgen.demo"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert "$ hf-textgen chat" in done.stdout and "Hello! I am Llama" in done.stdout
    assert "[novita failed: 402" in done.stderr and "[provider: together]" in done.stderr
    assert "PROVIDER" in done.stdout and "together" in done.stdout
    assert time.monotonic() - started < TIMEOUT
