"""``hf-textgen`` help, option errors, exit codes, ``models``, ``mapping`` and ``serve-stub``'s options,
in-process."""
from __future__ import annotations

import json
from typing import Any, List

import pytest

from cli_support import LLAMA, Cli, cli, posts, stub  # noqa: F401
from hf_textgen import clear_caches
from hf_textgen import HuggingFaceAPI
from hf_textgen.cli import EXIT_CODES, build_parser, exit_code_for
from hf_textgen.cli.stub import stub_argv
from hf_textgen.testing import StubServer

# The README's exit-code table, as documented: a change to either must change the other.
DOCUMENTED_EXIT_CODES = {
    0: "success",
    1: "any other error (403/404/5xx, connection failed, invalid or cut stream, ...)",
    2: "usage: bad arguments, bad model or provider id, unreadable image or file, empty prompt",
    3: "authentication: no token found, or the token was refused (401)",
    4: "payment required (402); after failover, the last provider's error decides",
    5: "model not supported: unknown model (also through :fastest routing), or no usable provider",
    6: "timeout",
    7: "rate limited (429)",
    130: "interrupted (Ctrl-C)",
    141: "nobody reads the output: the pipe's reader left (| head; quiet), or stdout is closed (>&-)",
}


def test_exit_codes_are_the_documented_ones() -> None:
    assert EXIT_CODES == DOCUMENTED_EXIT_CODES


def test_errors_map_to_their_exit_codes() -> None:
    from hf_textgen import errors

    assert exit_code_for(errors.PaymentRequiredError("x", status_code=402)) == 4
    assert exit_code_for(errors.StreamTimeoutError("x")) == 6
    assert exit_code_for(errors.ModelNotSupportedError("x")) == 5
    assert exit_code_for(errors.ConfigurationError("x")) == 2
    assert exit_code_for(BrokenPipeError()) == 141
    assert exit_code_for(KeyboardInterrupt()) == 130
    assert exit_code_for(RuntimeError("bug")) == 1


def test_help_documents_the_exit_codes(cli: Cli) -> None:
    done = cli("--help")
    assert done.code == 0
    for line in ("0    success", "3    authentication", "4    payment required", "6    timeout", "130  interrupted", "141  nobody reads"):
        assert line in done.out
    assert "chat" in done.out and "serve-stub" in done.out


def test_chat_help_names_the_new_options(cli: Cli) -> None:
    done = cli("chat", "--help")
    for option in ("--max-inputs-length", "--interactive", "--load", "--image"):
        assert option in done.out


def test_no_command_is_a_usage_error(cli: Cli) -> None:
    done = cli()
    assert done.code == 2
    assert "usage: hf-textgen" in done.err


def test_unknown_option_is_a_usage_error(cli: Cli) -> None:
    done = cli("chat", "--no-such-option", "hi")
    assert done.code == 2
    assert done.err == "hf-textgen: error: unrecognized arguments: --no-such-option (see 'hf-textgen --help')\n"


def test_version(cli: Cli) -> None:
    done = cli("--version")
    assert done.code == 0
    assert done.out.startswith("hf-textgen ")


BAD_VALUES = [
    (["chat", "--timeout", "abc", "hi"], "hf-textgen chat: error: --timeout: expected a positive number of seconds, got 'abc'"),
    (["chat", "--timeout", "0", "hi"], "hf-textgen chat: error: --timeout: expected a positive number of seconds, got '0'"),
    (["chat", "--timeout", "nan", "hi"], "hf-textgen chat: error: --timeout: expected a positive number of seconds, got 'nan'"),
    (["chat", "--max-tokens", "1.5", "hi"], "hf-textgen chat: error: --max-tokens: expected a positive whole number, got '1.5'"),
    (["chat", "--temperature", "warm", "hi"], "hf-textgen chat: error: --temperature: expected a number >= 0, got 'warm'"),
    (["chat", "--max-inputs-length", "-3", "hi"], "hf-textgen chat: error: --max-inputs-length: expected a number of characters >= 0"),
    (["chat", "--timeout"], "hf-textgen chat: error: --timeout: expected one argument"),
    (["serve-stub", "--port", "http"], "hf-textgen serve-stub: error: --port: expected a port number from 0 to 65535"),
    (["serve-stub", "--mapping-shape", "tree"], "hf-textgen serve-stub: error: --mapping-shape: invalid choice: 'tree'"),
]


@pytest.mark.parametrize("argv, start", BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_option_values_are_refused_in_plain_words(cli: Cli, argv: List[str], start: str) -> None:
    done = cli(*argv)
    assert done.code == 2
    assert done.err.startswith(start), done.err
    assert len(done.err.splitlines()) == 1
    assert "_" not in done.err.split(":", 3)[2]  # no internal names such as _positive_float
    assert "invalid" not in done.err or "invalid choice" in done.err


# ------------------------------------------------------------------------------ models and mapping


def test_models(cli: Cli, stub: StubServer) -> None:
    done = cli("models")
    assert done.code == 0, done.err
    listed = done.out.splitlines()
    assert LLAMA in listed and "org/ok" in listed
    assert "org/no-live" not in listed
    assert done.err == ""


def test_models_json(cli: Cli, stub: StubServer) -> None:
    done = cli("models", "--json", "--refresh")
    assert done.code == 0, done.err
    models = json.loads(done.out)
    assert isinstance(models, list) and LLAMA in models


def test_models_with_the_hub_unreachable_says_it_shows_the_fallback(cli: Cli, stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    done = cli("models")
    assert done.code == 0
    assert done.out.splitlines() == HuggingFaceAPI.fallback_models
    (line,) = done.err.splitlines()
    assert line.startswith("hf-textgen: warning: could not list the models from the Hub (")
    assert "127.0.0.1:9" in line
    assert line.endswith(f"showing the built-in list of {len(HuggingFaceAPI.fallback_models)} common chat models instead")
    assert "model listing failed" not in done.err  # the library's own log line is not printed as well


def test_mapping_table(cli: Cli, stub: StubServer) -> None:
    done = cli("mapping", LLAMA)
    assert done.code == 0, done.err
    header, novita, together = done.out.splitlines()
    assert header.split() == ["PROVIDER", "STATUS", "TASK", "PROVIDER", "ID", "CONTEXT", "IN", "$/M", "OUT", "$/M", "TOOLS", "JSON",
                              "FIRST", "TOKEN", "TOKENS/S"]
    catalog = stub.provider(LLAMA, "novita")
    assert novita.split() == ["novita", "live", "conversational", "meta-llama/llama-3.3-70b-instruct", str(catalog.context_length),
                              f"{catalog.pricing['input']:g}", f"{catalog.pricing['output']:g}", "yes", "no",
                              f"{catalog.first_token_latency_ms:g}", "ms", f"{catalog.throughput:g}"]
    assert together.split()[0] == "together"


def test_mapping_shows_unknown_as_a_question_mark_and_goes_on_without_the_catalogue(cli: Cli, stub: StubServer) -> None:
    stub.provider(LLAMA, "novita").update(supports_tools=None, context_length=None)
    novita = cli("mapping", LLAMA).out.splitlines()[1].split()
    assert novita[4] == "?" and novita[7] == "?"
    stub.catalog_status = 503
    clear_caches()  # the catalogue read above is cached for 10 minutes
    done = cli("mapping", LLAMA, "--json")
    assert done.code == 0 and json.loads(done.out)["novita"]["catalog"] is None
    assert done.err.startswith("hf-textgen: note: the router's catalogue is not available (")


def test_models_filtered_and_sorted_by_the_catalogue(cli: Cli, stub: StubServer) -> None:
    done = cli("models", "--tools", "--structured", "--sort", "price")
    assert done.code == 0, done.err
    rows = [line.split() for line in done.out.splitlines()]
    assert [LLAMA, "together"] in rows  # novita has no structured output: left out of the row
    listed = cli("models", "--provider", "novita", "--json")
    assert LLAMA in [entry["model"] for entry in json.loads(listed.out)]
    assert all(p["provider"] == "novita" for entry in json.loads(listed.out) for p in entry["providers"])
    assert cli("models", "--min-context", "999999999").err == "hf-textgen: no model of the router's catalogue meets those conditions\n"


def test_chat_prefers_and_shows_the_cost(cli: Cli, stub: StubServer) -> None:
    done = cli("chat", "-m", LLAMA, "--prefer", "fastest", "--show-cost", "Hi")
    assert done.code == 0, done.err
    notes = done.err.splitlines()
    assert notes[0] == "[provider: together]"  # the fastest first: novita is never asked
    assert notes[-1].startswith("[cost: $") and notes[-1].endswith(" out)]") and " at together (" in notes[-1]
    assert [request.path.split("/")[1] for request in posts(stub)] == ["together"]


def test_mapping_json(cli: Cli, stub: StubServer) -> None:
    done = cli("mapping", "--json", "org/no-live")
    assert done.code == 0, done.err
    assert {name: {k: v for k, v in entry.items() if k != "catalog"} for name, entry in json.loads(done.out).items()} == {
        "nebius": {"providerId": "nebius/no-live", "status": "error", "task": "conversational"}}


def test_mapping_of_an_unknown_model(cli: Cli, stub: StubServer) -> None:
    done = cli("mapping", "org/does-not-exist")
    assert done.code == 5
    assert "not found" in done.error_line()


def test_mapping_list_shape(cli: Cli, stub: StubServer) -> None:
    stub.mapping_shape = "list"
    done = cli("mapping", "--json", "org/no-live")
    assert {name: {k: v for k, v in entry.items() if k != "catalog"} for name, entry in json.loads(done.out).items()} == {
        "nebius": {"providerId": "nebius/no-live", "status": "error", "task": "conversational"}}


# ------------------------------------------------------------------------------ serve-stub's options


def parsed(*argv: str) -> Any:
    return build_parser().parse_args(["serve-stub", *argv])


@pytest.mark.parametrize("argv, expected", [
    ([], []),
    (["--mapping-shape", "list"], ["--mapping-shape", "list"]),
    (["--", "--mapping-shape", "list"], ["--mapping-shape", "list"]),
    (["--host", "0.0.0.0", "--port", "8080", "-v"], ["--host", "0.0.0.0", "--port", "8080", "-v"]),
    (["--port", "0", "--", "--host", "::1", "-v"], ["--host", "::1", "--port", "0", "-v"]),
])
def test_serve_stub_forwards_every_option(argv: List[str], expected: List[str]) -> None:
    assert stub_argv(parsed(*argv)) == expected


def test_serve_stub_refuses_unknown_options_after_the_dashes(cli: Cli) -> None:
    done = cli("serve-stub", "--", "--bogus")
    assert done.code == 2
    assert done.err.startswith("hf-textgen serve-stub: error: unrecognized arguments: --bogus")


def test_the_stand_in_accepts_what_serve_stub_forwards() -> None:
    from hf_textgen.testing import main as stub_main

    for argv in (["--mapping-shape", "list"], ["--host", "127.0.0.1", "--port", "0", "-v"]):
        forwarded = stub_argv(parsed(*argv))
        with pytest.raises(SystemExit) as help_exit:  # the stand-in's own parser takes the same options
            stub_main(forwarded + ["--help"])
        assert help_exit.value.code == 0  # a value it refused would exit 2 before --help is reached
