"""hf_textgen.batch.output: the lock, torn-line repair, error rows retried or kept, whole-line writes."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hf_textgen.batch.output import Output
from hf_textgen.errors import ConfigurationError

OK = {"id": "a", "text": "fine"}
FAILED = {"id": "b", "error": {"type": "RateLimitError", "message": "429", "status": 429}}
BAD = {"id": None, "line": 9, "error": {"type": "ConfigurationError", "message": "line 9: not JSON", "status": None}}


def lines(*records: object, tail: bytes = b"") -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records) + tail


def test_a_new_file_is_created_and_written_one_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    output = Output.open(str(path))
    assert output.done_rows == 0 and path.exists()
    output.write({"id": 1, "text": "héllo ✓"})
    output.write({"id": 2, "text": "\ud800 lone surrogate"})
    output.close()
    output.close()  # idempotent
    raw = path.read_bytes()
    assert raw.count(b"\n") == 2 and "héllo ✓".encode() in raw
    assert [json.loads(line)["id"] for line in raw.splitlines()] == [1, 2]


def test_a_torn_last_line_is_cut_off_with_a_note(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(lines(OK, tail=b'{"id": "c", "te'))
    with caplog.at_level(logging.WARNING, logger="hf_textgen.batch"):
        output = Output.open(str(path))
    assert path.read_bytes() == lines(OK)
    assert output.done("a", 1) and not output.done("c", 2)
    assert len(output.notes) == 1 and "cut short (15 bytes" in output.notes[0]
    assert output.notes[0] in caplog.text
    output.write({"id": "c", "text": "again"})
    output.close()
    assert [json.loads(line)["id"] for line in path.read_bytes().splitlines()] == ["a", "c"]


def test_a_last_line_that_ends_but_is_not_json_is_torn_too(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(lines(OK, tail=b"\x00\x00\x00\n"))  # what a crash can leave on some file systems
    Output.open(str(path)).close()
    assert path.read_bytes() == lines(OK)


def test_a_broken_line_before_the_last_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    before = lines(OK) + b"garbage\n" + lines(FAILED)
    path.write_bytes(before)
    with pytest.raises(ConfigurationError, match="line 2 is not a row written by a batch run"):
        Output.open(str(path))
    assert path.read_bytes() == before  # untouched


def test_error_rows_are_removed_to_be_retried_unless_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(lines(OK, FAILED, BAD))
    kept = Output.open(str(path), keep_errors=True)
    assert kept.done("b", 5) and kept.done(None, 9) and not kept.done(None, 8) and kept.kept_errors == 2
    kept.close()
    assert path.read_bytes() == lines(OK, FAILED, BAD)
    output = Output.open(str(path))
    assert output.done("a", 1) and not output.done("b", 2) and not output.done(None, 9)
    assert "removed 2 error row(s)" in output.notes[0]
    output.write({"id": "b", "text": "now fine"})
    output.close()
    assert [json.loads(line)["id"] for line in path.read_bytes().splitlines()] == ["a", "b"]
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]  # no temporary file left


def test_a_second_writer_is_refused_while_the_first_holds_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    first = Output.open(str(path))
    with pytest.raises(ConfigurationError, match="being written by another batch run"):
        Output.open(str(path))
    code = f"from hf_textgen.batch.output import Output\nOutput.open({str(path)!r})"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert other.returncode == 1 and "being written by another batch run" in other.stderr
    first.close()
    Output.open(str(path)).close()


def test_the_lock_survives_removing_error_rows(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(lines(OK, FAILED))
    output = Output.open(str(path))
    with pytest.raises(ConfigurationError, match="being written by another batch run"):
        Output.open(str(path))
    output.close()


def test_an_output_that_cannot_be_opened_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot open the output file .*missing"):
        Output.open(str(tmp_path / "missing" / "out.jsonl"))
