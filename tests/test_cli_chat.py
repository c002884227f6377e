"""``hf-textgen chat`` (one answer), in-process against the stand-in."""
from __future__ import annotations

import io
import json
import warnings
from typing import Any, List

import pytest

from cli_support import LLAMA, PNG, TOKEN, Cli, cli, last_post, posts, stub  # noqa: F401
from hf_textgen import Attempt, ProviderInfo
from hf_textgen.cli.notices import Notices
from hf_textgen.cli.output import ChatOutput, JsonChatOutput, render_chunk
from hf_textgen.testing import StubServer


def test_chat_streams_the_answer_and_names_the_provider(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "--model", "org/ok", "Say hi")
    assert done.code == 0, done.err
    assert done.out == "Hello there, friend!\n"
    assert done.err == "[provider: together]\n"
    assert last_post(stub).body["messages"] == [{"role": "user", "content": "Say hi"}]


class FlushLog(io.StringIO):
    """A stdout that records whether each write was flushed before the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.events: List[str] = []

    def write(self, text: str) -> int:
        self.events.append("write")
        return super().write(text)

    def flush(self) -> None:
        self.events.append("flush")


def test_each_delta_is_flushed_before_the_next_is_read(stub: StubServer) -> None:
    out, err = FlushLog(), io.StringIO()
    output = ChatOutput(out, err, Notices(err), show_reasoning=False, verbose=False)
    for text in ["one", " two", " three"]:
        render_chunk(text, output)
        assert out.events[-1] == "flush"
    assert out.getvalue() == "one two three"


def test_chat_options_reach_the_request(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "-m", "org/ok", "--system", "Be brief.", "--max-tokens", "7", "--temperature", "0.5", "--no-stream", "Hi")
    assert done.code == 0, done.err
    assert done.out == "Hello there, friend!\n"
    body = last_post(stub).body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (body["max_tokens"], body["temperature"], body.get("stream", False)) == (7, 0.5, False)


@pytest.mark.parametrize("args", [["-"], []], ids=["dash", "absent"])
def test_chat_reads_the_prompt_from_stdin(cli: Cli, stub: StubServer, args: List[str]) -> None:
    done = cli("chat", "-m", "org/ok", *args, stdin="What is 2+2?\n")
    assert done.code == 0, done.err
    assert last_post(stub).body["messages"][-1]["content"] == "What is 2+2?"


def test_chat_json_prints_one_object_per_chunk(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "--json", "-m", "org/ok", "hi")
    assert done.code == 0, done.err
    objects = [json.loads(line) for line in done.out.splitlines()]
    assert objects[0] == {"type": "provider", "provider": "together", "model": "org/ok", "label": "HuggingFace (together)"}
    assert "".join(o["text"] for o in objects if o["type"] == "text") == "Hello there, friend!"
    assert {"type": "finish", "reason": "stop"} in objects
    assert [o for o in objects if o["type"] == "usage"][0]["total_tokens"] > 0
    assert done.err == ""


def test_failover_is_reported_on_stderr_from_the_attempt(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "-m", LLAMA, "hi")
    assert done.code == 0, done.err
    assert done.out.startswith("Hello! I am Llama")
    failover, provider = done.err.splitlines()
    assert failover.startswith("[novita failed: 402 You have exceeded") and failover.endswith(" -> trying together]")
    assert provider == "[provider: together]"


def test_failover_line_does_not_depend_on_the_log(cli: Cli, stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    monkeypatch.setattr(logging.getLogger("hf_textgen"), "disabled", True)  # no record reaches any handler
    done = cli("chat", "-m", LLAMA, "hi")
    assert done.err.splitlines()[0].startswith("[novita failed: 402 ")


def test_failover_in_json(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "--json", "-m", LLAMA, "hi")
    kinds = [json.loads(line) for line in done.out.splitlines()][:3]
    assert [o["type"] for o in kinds] == ["provider", "failover", "provider"]
    assert (kinds[1]["provider"], kinds[1]["next"], kinds[1]["status"]) == ("novita", "together", 402)
    assert kinds[1]["reason"].startswith("402 You have exceeded")


def chunks_through(output: Any, chunks: List[Any]) -> None:
    for chunk in chunks:
        render_chunk(chunk, output)
    output.close()


def test_a_skipped_provider_reads_skipped() -> None:
    out, err = io.StringIO(), io.StringIO()
    chunks = [Attempt("nebius", None, "status 'error'", skipped=True), ProviderInfo("HuggingFace (hyperbolic)", "m", "hyperbolic"), "Hi"]
    chunks_through(ChatOutput(out, err, Notices(err), show_reasoning=False, verbose=False), chunks)
    assert err.getvalue() == "[nebius skipped: status 'error']\n[provider: hyperbolic]\n"
    out = io.StringIO()
    chunks_through(JsonChatOutput(out, err, Notices(err)), chunks)
    assert json.loads(out.getvalue().splitlines()[0]) == {"type": "skipped", "provider": "nebius", "reason": "status 'error'"}


LONG = [{"role": "user", "content": "x" * 40}, {"role": "assistant", "content": "y" * 40}] * 4


def test_trimming_is_one_line_and_not_a_raw_warning(cli: Cli, stub: StubServer, tmp_path: Any) -> None:
    saved = tmp_path / "long.json"
    saved.write_text(json.dumps(LONG))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping the CLI would fail here
        done = cli("chat", "-m", "org/ok", "--load", str(saved), "--max-inputs-length", "320", "and now?")
    assert done.code == 0, done.err
    assert done.err.splitlines() == [
        "[left out 3 earlier messages (120 characters): over --max-inputs-length 320]", "[provider: together]"]
    assert "InputTrimmedWarning" not in done.err and "warning" not in done.err
    assert len(last_post(stub).body["messages"]) == 6


def test_trimming_in_json(cli: Cli, stub: StubServer, tmp_path: Any) -> None:
    saved = tmp_path / "long.json"
    saved.write_text(json.dumps(LONG))
    done = cli("chat", "--json", "-m", "org/ok", "--load", str(saved), "--max-inputs-length", "320", "and now?")
    assert json.loads(done.out.splitlines()[0]) == {"type": "trimmed", "dropped_messages": 3, "dropped_chars": 120, "limit": 320}


@pytest.mark.parametrize("limit", ["0", "none", "NONE"])
def test_no_trimming(cli: Cli, stub: StubServer, tmp_path: Any, limit: str) -> None:
    saved = tmp_path / "long.json"
    saved.write_text(json.dumps(LONG))
    done = cli("chat", "-m", "org/ok", "--load", str(saved), "--max-inputs-length", limit, "and now?")
    assert done.err == "[provider: together]\n"
    assert last_post(stub).body["messages"] == LONG + [{"role": "user", "content": "and now?"}]


def test_load_then_one_prompt(cli: Cli, stub: StubServer, tmp_path: Any) -> None:
    saved = tmp_path / "c.json"
    saved.write_text(json.dumps([{"role": "system", "content": "old"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]))
    assert cli("chat", "-m", "org/ok", "--load", str(saved), "--system", "new", "c").code == 0
    assert last_post(stub).body["messages"] == [
        {"role": "system", "content": "new"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"}]


def test_explicit_provider_skips_the_others(cli: Cli, stub: StubServer) -> None:
    stub.clear_requests()
    done = cli("chat", "-m", LLAMA, "--provider", "together", "hi")
    assert done.code == 0, done.err
    assert [r.path for r in posts(stub)] == ["/together/v1/chat/completions"]


def test_explicit_provider_order(cli: Cli, stub: StubServer) -> None:
    stub.clear_requests()
    done = cli("chat", "-m", LLAMA, "--provider", "together", "--provider", "novita", "hi")
    assert done.code == 0, done.err
    assert [r.path for r in posts(stub)] == ["/together/v1/chat/completions"]


def test_library_warning_is_one_line_in_the_clis_voice(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "-m", "Qwen/Qwen2.5-VL-7B-Instruct", "-p", "nebius", "hi")
    assert done.code == 0, done.err
    assert done.err.splitlines() == [
        "hf-textgen: warning: using provider nebius for Qwen/Qwen2.5-VL-7B-Instruct although its status is 'error' "
        "and task 'conversational'",
        "[provider: nebius]",
    ]


def test_show_reasoning(cli: Cli, stub: StubServer) -> None:
    hidden = cli("chat", "-m", "org/thinks", "hi")
    shown = cli("chat", "-m", "org/thinks", "--show-reasoning", "hi")
    assert hidden.out == shown.out == "42\n"
    assert "Let me think." not in hidden.err
    assert "Let me think.\n" in shown.err


def test_cut_at_the_token_limit_is_said(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "-m", "org/length", "hi")
    assert done.out == "cut short\n"
    assert done.err.splitlines()[-1] == "[the answer was cut at the token limit (--max-tokens)]"


def test_image_file_is_sent_as_a_data_url(cli: Cli, stub: StubServer, tmp_path: Any) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(PNG)
    done = cli("chat", "-m", "org/ok", "--image", str(image), "--image", "https://example.com/a.jpg", "What?")
    assert done.code == 0, done.err
    parts = last_post(stub).body["messages"][-1]["content"]
    urls = [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]
    assert urls[0].startswith("data:image/png;base64,") and urls[1] == "https://example.com/a.jpg"


def test_api_base_talks_to_any_openai_server(cli: Cli, stub: StubServer) -> None:
    provider_id = stub.provider("org/ok", "together").provider_id
    done = cli("chat", "--api-base", f"{stub.url}/together/v1", "-m", provider_id, "hi")
    assert done.code == 0, done.err
    assert done.out == "Hello there, friend!\n"
    assert last_post(stub).path == "/together/v1/chat/completions"


def test_verbose_logs_the_librarys_steps(cli: Cli, stub: StubServer) -> None:
    done = cli("-v", "chat", "-m", LLAMA, "hi")
    assert "hf-textgen: INFO: provider novita failed" in done.err
    quiet = cli("chat", "-m", LLAMA, "hi")  # the handler -v added is gone again
    assert "INFO" not in quiet.err


# ------------------------------------------------------------------------------ expected failures

FAILURES = [
    # id, arguments, exit code, a fragment of the one error line
    ("402-everywhere", ["-m", "org/all-402"], 4, "every provider failed for org/all-402 (2 tried: novita, together)"),
    ("402-then-500", ["-m", "org/402-then-500"], 1, "every provider failed"),
    ("401", ["-m", "org/401"], 3, "401"),
    ("429", ["-m", "org/429"], 7, "429"),
    ("unknown-model", ["-m", "org/does-not-exist"], 5, "not found"),
    ("unknown-model-routed", ["-m", "org/does-not-exist:fastest"], 5, "does not serve model 'org/does-not-exist:fastest'"),
    ("unknown-model-auto", ["-m", "org/does-not-exist", "-p", "auto"], 5, "does not serve"),
    ("no-live-provider", ["-m", "org/no-live"], 5, "no live conversational provider"),
    ("provider-not-serving", ["-m", "deepseek-r1", "-p", "together", "-p", "novita"], 5, "is not served by together, novita"),
    ("timeout", ["-m", "org/stalls", "--timeout", "0.5"], 6, "0.5 s"),
    ("bad-model-id", ["-m", "../x"], 2, "invalid model id"),
    ("bad-provider-name", ["-m", "org/ok", "-p", "a/b"], 2, "provider"),
    ("missing-image", ["-m", "org/ok", "--image", "/no/such/image.png"], 2, "image.png"),
    ("missing-conversation", ["-m", "org/ok", "--load", "/no/such/c.json"], 2, "cannot read the conversation /no/such/c.json"),
    ("server-error", ["-m", "org/500"], 1, "500"),
    ("stream-cut", ["-m", "org/cut"], 1, "cut"),
    ("server-echoes-token", ["-m", "org/echoes-token"], 1, "bad key"),
]


@pytest.mark.parametrize("args, code, fragment", [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_expected_failure(cli: Cli, stub: StubServer, args: List[str], code: int, fragment: str) -> None:
    done = cli("chat", *args, "hi")
    assert done.code == code, done.err
    assert fragment.lower() in done.error_line().lower()


def test_every_provider_failed_is_a_summary_and_one_short_line_each(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "-m", "org/all-402", "hi")
    lines = done.err.splitlines()
    assert lines[0].startswith("[novita failed: 402 ")
    assert lines[1] == ("hf-textgen: error: every provider failed for org/all-402 (2 tried: novita, together); "
                        "add credits, or pick other providers with --provider")
    assert lines[2].startswith("  novita: 402 You have exceeded your monthly included cre") and lines[2].endswith("…")
    assert lines[3].startswith("  together: 402 You have exceeded")
    assert len(lines) == 4 and all(len(line) <= 72 for line in lines[2:])
    assert done.err.count("Subscribe to PRO") == 1  # only in the failover line, cut there too


def test_every_provider_failed_in_full_with_verbose(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "-v", "-m", "org/all-402", "hi")
    full = [line for line in done.err.splitlines() if line.startswith("  ")]
    assert len(full) == 2
    assert full[0].startswith("  novita: HTTP 402 from provider 'novita', model 'org/all-402', http://127.0.0.1:")
    assert "Subscribe to PRO to get 20x more monthly included credits." in full[0]


def test_no_token(cli: Cli, stub: StubServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stub.clear_requests()
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    done = cli("chat", "-m", "org/ok", "hi")
    assert done.code == 3
    assert "token" in done.error_line()
    assert stub.requests == []  # nothing was sent


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_is_a_usage_error(cli: Cli, stub: StubServer, prompt: str) -> None:
    done = cli("chat", "-m", "org/ok", prompt)
    assert done.code == 2
    assert "prompt is empty" in done.error_line()


def test_failure_in_json_mode_is_also_a_json_object(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "--json", "-m", "org/does-not-exist", "hi")
    assert done.code == 5
    error = json.loads(done.out.splitlines()[-1])
    assert error["type"] == "error" and error["exit_code"] == 5
    assert "not found" in done.error_line()


def test_every_provider_failed_in_json_lists_the_attempts(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "--json", "-m", "org/all-402", "hi")
    error = json.loads(done.out.splitlines()[-1])
    assert [(a["provider"], a["status"]) for a in error["attempts"]] == [("novita", 402), ("together", 402)]
    assert error["exit_code"] == 4


def test_partial_answer_then_error_ends_the_line(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "-m", "org/cut", "hi")
    assert done.out.endswith("\n") and done.out.strip()
    assert done.code == 1


def test_the_token_never_shows(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "-v", "-m", "org/echoes-token", "hi")  # cli() asserts TOKEN is absent
    assert "bad key" in done.err and "***" in done.err
    assert TOKEN not in done.err
