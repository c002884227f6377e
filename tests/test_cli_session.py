"""``hf-textgen chat`` as a conversation: in-process with scripted stdin (``-i``), and through a real
pseudo-terminal against the stand-in over loopback (typing, Ctrl-C, Ctrl-D, history)."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from cli_support import TOKEN, WAIT, Cli, FakeStdin, Relay, Terminal, cli, posts, process_env, stub  # noqa: F401
from hf_textgen.cli import main
from hf_textgen.cli.lineinput import LineReader
from hf_textgen.testing import Provider, StubServer

CHAT = "org/chat"
FIRST = "First answer."
SECOND = "Second answer."


def bodies(stub: StubServer) -> List[List[Dict[str, Any]]]:
    return [request.body["messages"] for request in posts(stub)]


@pytest.fixture
def chat(stub: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StubServer:
    stub.set_model(CHAT, [Provider("together", chunks=["Hello", " again."])])
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    stub.clear_requests()
    return stub


# ------------------------------------------------------------------------------ in-process, scripted


def test_each_turn_sends_the_conversation_so_far(cli: Cli, chat: StubServer) -> None:
    done = cli("chat", "-i", "-m", CHAT, stdin="hi\nand again\n")
    assert done.code == 0, done.err
    assert done.out == "Hello again.\nHello again.\n"
    assert bodies(chat) == [
        [{"role": "user", "content": "hi"}],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello again."},
         {"role": "user", "content": "and again"}],
    ]
    assert done.err.splitlines()[0] == (f"[hf-textgen chat: model {CHAT} (providers: automatic); "
                                        "/help for help, Ctrl-D or /exit to leave]")


def test_no_prompt_on_a_terminal_opens_a_conversation(cli: Cli, chat: StubServer) -> None:
    done = cli("chat", "-m", CHAT, stdin="hi\n", tty=True)
    assert done.code == 0, done.err
    assert done.out == "> Hello again.\n> \n"  # the prompt, the answer, the prompt, Ctrl-D's new line
    assert len(posts(chat)) == 1


def test_a_prompt_with_i_is_the_first_message(cli: Cli, chat: StubServer) -> None:
    cli("chat", "-i", "-m", CHAT, "first", stdin="second\n")
    assert [body[-1]["content"] for body in bodies(chat)] == ["first", "second"]


def test_several_lines(cli: Cli, chat: StubServer) -> None:
    script = 'one\\\ntwo\n"""\nthree\n\nfour\n"""\n"""five"""\n"""six\nseven"""\n//slash\n'
    assert cli("chat", "-i", "-m", CHAT, stdin=script).code == 0
    assert [body[-1]["content"] for body in bodies(chat)] == ["one\ntwo", "three\n\nfour", "five", "six\nseven", "/slash"]


def test_system_model_provider_and_reset(cli: Cli, chat: StubServer) -> None:
    chat.set_model("org/other", [Provider("novita", text="Other."), Provider("together", text="Other too.")])
    script = "/system Be brief.\n/system\nhi\n/model org/other\n/provider together\nhey\n/reset\n/provider\nyo\n/system -\nlast\n"
    done = cli("chat", "-i", "-m", CHAT, stdin=script)
    assert done.code == 0, done.err
    sent = posts(chat)
    assert [r.path for r in sent] == ["/together/v1/chat/completions", "/together/v1/chat/completions",
                                      "/novita/v3/openai/chat/completions", "/novita/v3/openai/chat/completions"]
    system = {"role": "system", "content": "Be brief."}
    assert sent[0].body["messages"] == [system, {"role": "user", "content": "hi"}]
    assert sent[1].body["messages"][-3:] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello again."},
                                             {"role": "user", "content": "hey"}]
    assert sent[2].body["messages"] == [system, {"role": "user", "content": "yo"}]  # /reset kept the system message
    assert sent[3].body["messages"][0] == {"role": "user", "content": "yo"}  # /system - removed it
    notes = done.err.splitlines()
    assert "[system: Be brief.]" in notes and "[system message removed]" in notes
    assert "[model org/other (providers: together)]" in notes and "[model org/other (providers: automatic)]" in notes


BAD_COMMANDS = [
    ("/model ../x", "hf-textgen: error: invalid model id '../x'"),
    ("/provider a/b", "hf-textgen: error: invalid provider name 'a/b'"),
    ("/bogus", "hf-textgen: error: unknown command /bogus; /help lists the commands"),
    ("/save", "hf-textgen: error: /save needs a file name: /save FILE"),
    ("/load /no/such.json", "hf-textgen: error: cannot read the conversation /no/such.json: No such file or directory"),
    ("/save /no/such/dir/c.json", "hf-textgen: error: cannot write the conversation to /no/such/dir/c.json"),
]


@pytest.mark.parametrize("line, start", BAD_COMMANDS, ids=[line for line, _ in BAD_COMMANDS])
def test_bad_input_to_a_command_is_one_line_and_the_session_goes_on(cli: Cli, chat: StubServer, line: str, start: str) -> None:
    done = cli("chat", "-i", "-m", CHAT, stdin=f"{line}\nhi\n")
    assert done.code == 0
    errors = [text for text in done.err.splitlines() if text.startswith("hf-textgen: error: ")]
    assert len(errors) == 1 and errors[0].startswith(start), done.err
    assert done.out == "Hello again.\n"  # the next turn ran
    assert bodies(chat)[-1] == [{"role": "user", "content": "hi"}]


def test_a_failed_turn_prints_its_error_and_changes_nothing(cli: Cli, chat: StubServer) -> None:
    chat.set_model("org/broke", [Provider("novita", error_status=402), Provider("together", error_status=402)])
    done = cli("chat", "-i", "-m", CHAT, stdin="hi\n/model org/broke\nfails\n/model org/chat\nworks\n")
    assert done.code == 0
    assert "hf-textgen: error: every provider failed for org/broke (2 tried: novita, together)" in done.err
    assert "  novita: 402 You have exceeded" in done.err
    assert bodies(chat)[-1] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello again."},
                                {"role": "user", "content": "works"}]


def test_save_and_load(cli: Cli, chat: StubServer, tmp_path: Path) -> None:
    saved = tmp_path / "c.json"
    cli("chat", "-i", "-m", CHAT, "-s", "Be kind.", stdin=f"hi\n/save {saved}\n")
    conversation = json.loads(saved.read_text())
    assert conversation == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"},
                            {"role": "assistant", "content": "Hello again."}]
    done = cli("chat", "-i", "-m", CHAT, "--load", str(saved), stdin="more\n")
    assert f"[loaded 3 messages from {saved}]" in done.err
    assert bodies(chat)[-1] == conversation + [{"role": "user", "content": "more"}]
    cli("chat", "-i", "-m", CHAT, stdin=f"/load {saved}\nagain\n")
    assert bodies(chat)[-1] == conversation + [{"role": "user", "content": "again"}]


@pytest.mark.parametrize("content, fragment", [
    ('{"role": "user"}', "expected a JSON list of messages, found a JSON dict"),
    ('[{"role": "robot", "content": "x"}]', "message 1 has role 'robot'"),
    ("[1]", "message 1 is not a JSON object"),
    ("not json", "not JSON"),
])
def test_a_bad_conversation_file_is_a_usage_error(cli: Cli, chat: StubServer, tmp_path: Path, content: str, fragment: str) -> None:
    saved = tmp_path / "bad.json"
    saved.write_text(content)
    done = cli("chat", "-i", "-m", CHAT, "--load", str(saved), stdin="hi\n")
    assert done.code == 2
    assert fragment in done.error_line()
    assert posts(chat) == []


@pytest.mark.parametrize("option", [["--json"], ["--image", "cat.png"]])
def test_options_for_one_answer_only(cli: Cli, chat: StubServer, option: List[str]) -> None:
    done = cli("chat", "-i", "-m", CHAT, *option, stdin="hi\n")
    assert done.code == 2
    assert "one" in done.error_line().lower()


def test_help_and_exit(cli: Cli, chat: StubServer) -> None:
    done = cli("chat", "-i", "-m", CHAT, stdin="/help\n/exit\nnever sent\n")
    assert done.code == 0
    for command in ("/system TEXT", "/model NAME", "/provider NAME...", "/reset", "/save FILE", "/load FILE", "/exit"):
        assert command in done.err
    assert 'start with """' in done.err and "Ctrl-C stops an answer" in done.err
    assert posts(chat) == []


# ------------------------------------------------------------------------------ through a pseudo-terminal

LONG = " ".join(f"w{i}" for i in range(300))  # 300 events 0.1 s apart: still streaming when Ctrl-C comes


@pytest.fixture
def served() -> Iterator[StubServer]:
    with StubServer({CHAT: [Provider("together", text=FIRST)]}) as server:
        yield server


@pytest.fixture
def relay(served: StubServer) -> Iterator[Relay]:
    relay = Relay(served.port)
    yield relay
    relay.close()


def terminal(served: StubServer, relay: Relay, home: Path, *args: str) -> Terminal:
    env = process_env(served, HF_HOME=str(home), HF_TEXTGEN_ROUTER_URL=relay.url)
    return Terminal(["chat", "-m", CHAT, *args], env)


def test_a_conversation_on_a_terminal_with_ctrl_c(served: StubServer, relay: Relay, tmp_path: Path) -> None:
    together = served.provider(CHAT, "together")
    session = terminal(served, relay, tmp_path)
    try:
        session.expect("Ctrl-D or /exit to leave]")
        session.expect("> ")
        session.type("hello\r")
        assert "[provider: together]\n" + FIRST + "\n" in session.expect(FIRST + "\n")
        together.update(text=SECOND)
        session.expect("> ")
        session.type("and again\r")
        session.expect(SECOND + "\n")
        assert posts(served)[-1].body["messages"] == [
            {"role": "user", "content": "hello"}, {"role": "assistant", "content": FIRST},
            {"role": "user", "content": "and again"}]

        together.update(text=LONG, delay=0.1)
        session.expect("> ")
        session.type("tell me a long story\r")
        session.expect("w0 w1")
        (streaming,) = relay.carrying(b"tell me a long story")
        assert not streaming.client_closed.is_set()
        session.type("\x03")  # Ctrl-C, through the terminal's line discipline: a SIGINT
        session.expect("[stopped; the partial answer stays in the conversation]")
        assert streaming.client_closed.wait(WAIT), "the interrupted answer's connection was not closed"

        together.update(text="All good.", delay=0.0)
        session.expect("> ")
        session.type("still there?\r")
        session.expect("All good.\n")
        messages = posts(served)[-1].body["messages"]
        assert [m["content"] for m in messages[:4]] == ["hello", FIRST, "and again", SECOND]
        assert messages[4] == {"role": "user", "content": "tell me a long story"}
        partial = messages[5]["content"]
        assert messages[5]["role"] == "assistant" and partial.startswith("w0 w1") and LONG.startswith(partial)
        assert partial != LONG
        assert messages[6] == {"role": "user", "content": "still there?"}

        session.expect("> ")
        session.type("\x04")  # Ctrl-D
        assert session.wait() == 0
    finally:
        session.close()
    assert "Traceback" not in session.screen and TOKEN not in session.screen
    history = (tmp_path / "hf_textgen_history").read_text()
    assert "hello" in history and "tell me a long story" in history


def test_save_on_a_terminal_then_load(served: StubServer, relay: Relay, tmp_path: Path) -> None:
    saved = tmp_path / "conversation.json"
    session = terminal(served, relay, tmp_path, "--system", "Be kind.")
    try:
        session.expect("> ")
        session.type("hello\r")
        session.expect(FIRST + "\n")
        session.expect("> ")
        session.type("never sent")
        session.expect("never sent")  # shown: readline has it (a Ctrl-C typed ahead is the terminal's to drop)
        session.type("\x03")  # Ctrl-C at the prompt clears the line
        session.expect("> ")
        session.type(f"/save {saved}\r")
        session.expect(f"[saved 3 messages to {saved}]")
        session.expect("> ")
        session.type("/exit\r")
        assert session.wait() == 0
    finally:
        session.close()
    assert json.loads(saved.read_text()) == [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "hello"},
        {"role": "assistant", "content": FIRST}]
    assert len(posts(served)) == 1

    session = terminal(served, relay, tmp_path, "--load", str(saved))
    try:
        session.expect(f"[loaded 3 messages from {saved}]")
        session.expect("> ")
        session.type("one more\r")
        session.expect(FIRST + "\n")
        session.expect("> ")
        session.type("\x04")
        assert session.wait() == 0
    finally:
        session.close()
    assert posts(served)[-1].body["messages"] == json.loads(saved.read_text()) + [{"role": "user", "content": "one more"}]


def test_the_history_file_is_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("not a directory")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    with LineReader(Tty("")) as reader:  # reading and writing the history fail: nothing is raised
        assert reader.history == str(tmp_path / "a-file" / "hf_textgen_history")


class GoneReader(io.StringIO):
    """A stdout whose reader has left: every write is a broken pipe."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_session_whose_output_nobody_reads_ends_quietly_with_141(chat: StubServer, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin("hi\nagain\n"))
    monkeypatch.setattr(sys, "stdout", GoneReader())
    assert main(["chat", "-i", "-m", CHAT]) == 141
    assert len(posts(chat)) == 1  # the second message was never sent
    assert "error" not in capsys.readouterr().err
