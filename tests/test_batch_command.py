"""``hf-textgen batch`` / ``python -m hf_textgen.batch``: options in plain words, exit codes, the
summary on stdout, notes and progress on stderr, and registration in a host CLI's parser."""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest

from hf_textgen.batch import command
from hf_textgen.batch.progress import Printer, progress_line
from hf_textgen.batch.stats import Snapshot
from hf_textgen.testing import StubServer

from batch_support import MODEL, ids_of, prompts, read_output, stub, write_rows

__all__ = ["stub"]


def main(capsys: pytest.CaptureFixture, *argv: str) -> "tuple[int, str, str]":
    code = command.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["in.jsonl"], "the following arguments are required: -o/--output"),
    (["in.jsonl", "-o", "o", "--concurrency", "0"], "-c/--concurrency: expected a whole number >= 1, got '0'"),
    (["in.jsonl", "-o", "o", "--retries", "two"], "-r/--retries: expected a whole number >= 0, got 'two'"),
    (["in.jsonl", "-o", "o", "--shard", "2/2"], "--shard: expected K/N with whole numbers 0 <= K < N, such as 0/4, got '2/2'"),
    (["in.jsonl", "-o", "o", "--shard", "1"], "--shard: expected K/N"),
    (["in.jsonl", "-o", "o", "--retry-backoff", "-1"], "--retry-backoff: expected a number of seconds >= 0, got '-1'"),
])
def test_bad_options_are_refused_in_one_plain_line(capsys: pytest.CaptureFixture, argv: List[str], message: str) -> None:
    code, out, err = main(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("hf-textgen batch: error: ") and message in err and err.count("\n") == 1
    assert "(see 'hf-textgen batch --help')" in err


def test_a_run_prints_its_summary_and_exits_0(tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture) -> None:
    source = write_rows(tmp_path / "in.jsonl", prompts(12))
    code, out, err = main(capsys, str(source), "-o", str(tmp_path / "out.jsonl"), "-m", MODEL, "-c", "3")
    assert code == 0, err
    assert "rows: 12 ok, 0 failed, 0 skipped (already in the output), 0 not run" in out
    assert "provider" in out and "together" in out and "429s" in out
    assert "12/12 rows (100%)" in err  # the final progress line (not a terminal: plain lines)
    code, out, err = main(capsys, str(source), "-o", str(tmp_path / "out.jsonl"), "-m", MODEL, "--quiet")
    assert code == 0 and "0 ok, 0 failed, 12 skipped" in out and err == ""


def test_failed_rows_exit_1_and_a_torn_line_is_repaired_with_a_note(tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture) -> None:
    source = write_rows(tmp_path / "in.jsonl", [*prompts(3), "oops"])
    output = tmp_path / "out.jsonl"
    code, out, err = main(capsys, str(source), "-o", str(output), "-m", MODEL, "-q")
    assert code == 1 and "1 failed (1 bad input row)," in out and "1 row failed: rerun the same command to retry it" in out
    with open(output, "ab") as torn:
        torn.write(b'{"id": "row-9", "text": "half a li')
    code, out, err = main(capsys, str(source), "-o", str(output), "-m", MODEL, "-q")
    assert code == 1
    assert "hf-textgen batch: note: " in err and "the last line was cut short (34 bytes" in err
    assert "removed 1 error row(s) of an earlier run" in err
    assert sorted(map(str, ids_of(read_output(output)))) == ["None", "row-0", "row-1", "row-2"]
    code, out, err = main(capsys, str(source), "-o", str(output), "-m", MODEL, "-q", "--keep-errors")
    assert code == 0 and "4 skipped" in out


def test_input_problems_exit_2_and_send_nothing(tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture) -> None:
    source = write_rows(tmp_path / "in.jsonl", [*prompts(2), {"id": "row-0", "prompt": "x"}])
    code, out, err = main(capsys, str(source), "-o", str(tmp_path / "out.jsonl"), "-m", MODEL)
    assert code == 2 and "id 'row-0' is on lines 1, 3" in err and err.startswith("hf-textgen batch: error: ")
    code, out, err = main(capsys, str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "out.jsonl"))
    assert code == 2 and "cannot read the input file" in err
    code, out, err = main(capsys, "-", "-o", str(tmp_path / "out.jsonl"))
    assert code == 2 and "the input must be a file" in err
    assert stub.requests == []


def test_no_token_exits_3(tmp_path: Path, stub: StubServer, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    source = write_rows(tmp_path / "in.jsonl", prompts(1))
    code, out, err = main(capsys, str(source), "-o", str(tmp_path / "out.jsonl"))
    assert code == 3 and "no Hugging Face token" in err


def test_a_host_cli_registers_it_with_one_call() -> None:
    host = argparse.ArgumentParser(prog="hf-textgen")
    host.add_argument("-v", "--verbose", action="store_true", default=False)
    host.add_argument("--debug", action="store_true", default=False)
    commands = host.add_subparsers(dest="command")
    command.add_parser(commands)
    args = host.parse_args(["-v", "batch", "in.jsonl", "-o", "out.jsonl", "--shard", "1/3", "--strict"])
    assert args.run is command.run and args.verbose and not args.debug
    assert (args.input, args.output, args.shard, args.strict, args.concurrency, args.retries) == ("in.jsonl", "out.jsonl", (1, 3), True, 16, 2)
    assert host.parse_args(["batch", "i", "-o", "o", "--debug"]).debug


def test_python_m_hf_textgen_batch_help_lists_the_exit_codes() -> None:
    done = subprocess.run([sys.executable, "-m", "hf_textgen.batch", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: hf-textgen batch" in done.stdout
    for code in ("0 ", "1 ", "2 ", "3 ", "130", "143"):
        assert f"  {code}" in done.stdout


def snapshot(**fields: Any) -> Snapshot:
    values = dict(done=50, todo=200, ok=48, failed=2, skipped=0, in_flight=16, rate_limited=7, completion_tokens=500,
                  cost_usd=None, elapsed_s=10.0)
    values.update(fields)
    return Snapshot(**values)  # type: ignore[arg-type]


def test_the_progress_line_and_printer() -> None:
    assert progress_line(snapshot()) == "50/200 rows (25%)  ok 48  failed 2  5.0 rows/s  50 tok/s  in flight 16  429s 7  ETA 30s"
    assert "$0.0123" in progress_line(snapshot(cost_usd=0.0123, skipped=3)) and "skipped 3" in progress_line(snapshot(skipped=3))
    assert progress_line(snapshot(done=0, ok=0, failed=0)).endswith("ETA ?")
    assert progress_line(snapshot(final=True, elapsed_s=75)).endswith("took 1m15s")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    printer = Printer(screen, interval=0)
    printer(snapshot())
    printer(snapshot(done=60, ok=58))
    printer(snapshot(final=True))
    assert screen.getvalue().count("\r") == 3 and screen.getvalue().endswith("\n") and screen.getvalue().count("\n") == 1
    log = io.StringIO()
    plain = Printer(log, interval=3600)
    plain(snapshot())
    plain(snapshot(done=60))  # within the interval: not printed
    plain(snapshot(final=True))
    assert log.getvalue().count("\n") == 2 and "\r" not in log.getvalue()


def test_an_unreadable_input_exits_2_and_verbose_shows_the_librarys_log(tmp_path: Path, stub: StubServer,
                                                                        capsys: pytest.CaptureFixture) -> None:
    source = write_rows(tmp_path / "in.jsonl", prompts(2))
    source.chmod(0)
    try:
        readable = open(source).close() is None  # root reads anything
    except PermissionError:
        readable = False
    if not readable:
        code, out, err = main(capsys, str(source), "-o", str(tmp_path / "out.jsonl"))
        assert code == 2 and "cannot read the input file" in err
    source.chmod(0o644)
    code, out, err = main(capsys, str(source), "-o", str(tmp_path / "out.jsonl"), "-m", MODEL, "-q", "-v")
    assert code == 0 and ("hf-textgen batch: debug: " in err or "hf-textgen batch: info: " in err)
    code, out, err = main(capsys, str(tmp_path), "-o", str(tmp_path / "out.jsonl"))
    assert code == 2 and "is not a file" in err
